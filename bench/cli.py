"""The `bench` command line. Flags override bench.toml; bad input is one line, exit 2."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Annotated

import typer

from bench.errors import BenchError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Benchmark training-free diversity methods for diffusion models.",
)
train_app = typer.Typer(no_args_is_help=True, help="Train the embedded models.")
app.add_typer(train_app, name="train")

ConfigOpt = Annotated[Path | None, typer.Option("--config", help="bench.toml to read")]
ModelOpt = Annotated[
    str | None, typer.Option("--model", help="digits, digits-gmm or module:factory")
]
MethodsOpt = Annotated[str | None, typer.Option("--methods", help="comma-separated, e.g. spell,pg")]
PromptsOpt = Annotated[
    str | None, typer.Option("--prompts", help="a count (3) or comma-separated ids (0,7 or 7,)")
]
SamplesOpt = Annotated[int | None, typer.Option("--samples", help="samples per prompt")]
BatchOpt = Annotated[int | None, typer.Option("--batch-size", help="samples per batch")]
StepsOpt = Annotated[int | None, typer.Option("--steps", help="sampling steps")]
SeedOpt = Annotated[int | None, typer.Option("--seed", help="run seed")]
OutOpt = Annotated[Path | None, typer.Option("--out", help="parent folder of run directories")]
NameOpt = Annotated[str | None, typer.Option("--name", help="run directory name")]
GuidanceOpt = Annotated[float | None, typer.Option("--guidance", help="CFG weight (1 = off)")]
SchedulerOpt = Annotated[str | None, typer.Option("--scheduler", help="native, ddpm or ddim")]
ThreadsOpt = Annotated[int | None, typer.Option("--threads", help="torch threads per process")]
DeviceOpt = Annotated[str | None, typer.Option("--device", help="cpu, cuda, cuda:1 ...")]
ForceOpt = Annotated[bool, typer.Option("--force", help="replace a run made by another config")]
AcceleratorOpt = Annotated[str, typer.Option("--accelerator", help="Lightning: cpu, gpu, auto")]
DevicesOpt = Annotated[str, typer.Option("--devices", help="Lightning: count, list or auto")]
NodesOpt = Annotated[int, typer.Option("--num-nodes", help="Lightning: number of nodes")]
StrategyOpt = Annotated[str, typer.Option("--strategy", help="Lightning: auto, ddp, ...")]
PrecisionOpt = Annotated[
    str | None, typer.Option("--precision", help="Lightning, GPU runs: 16-mixed ...")
]
LoggerOpt = Annotated[str, typer.Option("--logger", help="csv, tensorboard, wandb or none")]


def _prompts(spec: str | None):
    if spec is None:
        return None
    spec = spec.strip()
    if spec.isdigit():
        return int(spec)
    if spec == "all":
        return spec
    return [p for p in spec.split(",") if p]


def _config(
    config,
    model,
    methods,
    prompts,
    samples,
    batch_size,
    steps,
    seed,
    out,
    name,
    guidance,
    scheduler,
    threads,
    device,
):
    from bench.config import load_config

    overrides = {
        "model": model,
        "methods": methods.split(",") if methods else None,
        "prompts": _prompts(prompts),
        "samples": samples,
        "batch_size": batch_size,
        "steps": steps,
        "seed": seed,
        "out": out,
        "name": name,
        "guidance": guidance,
        "scheduler": scheduler,
        "threads": threads,
        "device": device,
    }
    return load_config(config, overrides)


def _launch(accelerator, devices, num_nodes, strategy, precision, logger):
    from bench.loop import Launch

    devices = int(devices) if devices.isdigit() else devices
    return Launch(accelerator, devices, num_nodes, strategy, precision, logger)


def _generate(cfg, force: bool, launch):
    from bench.generate import generate
    from bench.loop import is_global_zero

    start = time.perf_counter()
    run = generate(cfg, force=force, launch=launch)
    if is_global_zero():
        images = (run.manifest() or {}).get("images_generated", 0)
        seconds = time.perf_counter() - start
        rate = images / seconds if seconds > 0 else 0.0
        typer.echo(
            f"generated {images} images in {seconds:.1f} s ({rate:.2f} images/s) -> {run.path}"
        )
    return run


def _report(run_path: Path) -> None:
    from reports.build import build_report

    start = time.perf_counter()
    index = build_report(run_path)
    typer.echo(f"report in {time.perf_counter() - start:.1f} s: {index}")


@app.command()
def generate(
    config: ConfigOpt = None,
    model: ModelOpt = None,
    methods: MethodsOpt = None,
    prompts: PromptsOpt = None,
    samples: SamplesOpt = None,
    batch_size: BatchOpt = None,
    steps: StepsOpt = None,
    seed: SeedOpt = None,
    out: OutOpt = None,
    name: NameOpt = None,
    guidance: GuidanceOpt = None,
    scheduler: SchedulerOpt = None,
    threads: ThreadsOpt = None,
    device: DeviceOpt = None,
    force: ForceOpt = False,
    accelerator: AcceleratorOpt = "auto",
    devices: DevicesOpt = "1",
    num_nodes: NodesOpt = 1,
    strategy: StrategyOpt = "auto",
    precision: PrecisionOpt = None,
    logger: LoggerOpt = "csv",
):
    """Generate samples for every method-config and prompt (resumes an existing run)."""
    cfg = _config(
        config,
        model,
        methods,
        prompts,
        samples,
        batch_size,
        steps,
        seed,
        out,
        name,
        guidance,
        scheduler,
        threads,
        device,
    )
    _generate(cfg, force, _launch(accelerator, devices, num_nodes, strategy, precision, logger))


@app.command()
def run(
    config: ConfigOpt = None,
    model: ModelOpt = None,
    methods: MethodsOpt = None,
    prompts: PromptsOpt = None,
    samples: SamplesOpt = None,
    batch_size: BatchOpt = None,
    steps: StepsOpt = None,
    seed: SeedOpt = None,
    out: OutOpt = None,
    name: NameOpt = None,
    guidance: GuidanceOpt = None,
    scheduler: SchedulerOpt = None,
    threads: ThreadsOpt = None,
    device: DeviceOpt = None,
    force: ForceOpt = False,
    accelerator: AcceleratorOpt = "auto",
    devices: DevicesOpt = "1",
    num_nodes: NodesOpt = 1,
    strategy: StrategyOpt = "auto",
    precision: PrecisionOpt = None,
    logger: LoggerOpt = "csv",
):
    """Generate, score and report in one go (the default: digits, none vs SPELL)."""
    from bench.loop import is_global_zero

    cfg = _config(
        config,
        model,
        methods,
        prompts,
        samples,
        batch_size,
        steps,
        seed,
        out,
        name,
        guidance,
        scheduler,
        threads,
        device,
    )
    run_dir = _generate(
        cfg, force, _launch(accelerator, devices, num_nodes, strategy, precision, logger)
    )
    if is_global_zero():
        _report(run_dir.path)


@app.command()
def report(run_dir: Annotated[Path, typer.Argument(help="a run directory")]):
    """Draw the report of a scored run: Pareto fronts, sparsity, grids, tables, HTML."""
    _report(run_dir)


@app.command("list")
def list_(what: Annotated[str, typer.Argument(help="models or methods")] = "methods"):
    """List models or methods (with their parameters and defaults)."""
    if what == "models":
        from bench.models.registry import MODELS

        for name, (_, description) in MODELS.items():
            typer.echo(f"{name:12s} {description}")
    elif what == "methods":
        from methods.registry import describe_methods

        for line in describe_methods():
            typer.echo(line)
    else:
        raise BenchError(f"cannot list {what!r}: use `bench list models` or `bench list methods`")


@train_app.command("digits")
def train_digits(
    out: Annotated[Path | None, typer.Option(help="weights file")] = None,
    seed: Annotated[int, typer.Option(help="training seed")] = 0,
):
    """Retrain the embedded digits UNet (the committed weights come from this)."""
    from bench.models.digits import WEIGHTS
    from bench.train_digits import train_digits_unet

    summary = train_digits_unet(out or WEIGHTS, seed=seed)
    typer.echo(f"trained digits UNet: {summary}")


def main() -> None:
    try:
        app()
    except BenchError as err:
        typer.echo(f"error: {err}", err=True)
        sys.exit(2)
