"""The `bench` command line. Flags override bench.toml. A failure is one line on stderr:
exit 2 for bad input, 1 for a failure of the environment, 130 for Ctrl-C."""

from __future__ import annotations

import errno
import functools
import logging
import os
import sys
import time
import traceback
import warnings
from pathlib import Path
from typing import Annotated

import typer

from bench.cli_common import RunDirArg, _opt
from bench.cli_parse import (
    parse_methods,
    parse_names,
    parse_prompts,
    parse_samples,
    parse_thresholds,
)
from bench.cli_tools import data_app, protect_app, train_app
from bench.errors import BenchError, Interrupted

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Benchmark training-free diversity methods for diffusion models.",
)
app.add_typer(train_app, name="train")
app.add_typer(protect_app, name="protect")
app.add_typer(data_app, name="data")


def _options(
    config: Annotated[Path | None, _opt("--config", help="bench.toml to read")] = None,
    model: Annotated[
        str | None, _opt("--model", help="digits, ldm, sd3 ... or module:factory")
    ] = None,
    model_path: Annotated[str | None, _opt("--model-path", help="local weights folder")] = None,
    dtype: Annotated[str | None, _opt("--dtype", help="float32, float16, bfloat16")] = None,
    preset: Annotated[
        str | None, _opt("--preset", help="paper: the SPELL paper's settings")
    ] = None,
    methods: Annotated[str | None, _opt("--methods", help="comma-separated, e.g. spell,pg")] = None,
    prompts: Annotated[
        str | None, _opt("--prompts", help="a count, ids (0,7 or 7,), imagenet, file:P, cc12m:D")
    ] = None,
    references: Annotated[Path | None, _opt("--references", help="reference images")] = None,
    samples: Annotated[
        str | None, _opt("--samples", help="samples per prompt, or 'references'")
    ] = None,
    batch_size: Annotated[int | None, _opt("--batch-size", help="samples per batch")] = None,
    steps: Annotated[int | None, _opt("--steps", help="sampling steps")] = None,
    seed: Annotated[int | None, _opt("--seed", help="run seed")] = None,
    guidance: Annotated[float | None, _opt("--guidance", help="CFG weight (1 = off)")] = None,
    scheduler: Annotated[str | None, _opt("--scheduler", help="native, ddpm, ddim ...")] = None,
    protect: Annotated[Path | None, _opt("--protect", help="protected set for SPELL")] = None,
    radius: Annotated[float | None, _opt("--radius", help="SPELL radius (with --protect)")] = None,
    out: Annotated[Path | None, _opt("--out", help="parent folder of run directories")] = None,
    name: Annotated[str | None, _opt("--name", help="run directory name")] = None,
    threads: Annotated[int | None, _opt("--threads", help="torch threads per process")] = None,
    device: Annotated[str | None, _opt("--device", help="cpu, cuda, cuda:1 ...")] = None,
    channels_last: Annotated[
        bool | None, _opt("--channels-last", help="the denoiser in channels-last format")
    ] = None,
    compile: Annotated[
        str | None, _opt("--compile", help="torch.compile the denoiser: inductor ...")
    ] = None,
    force: Annotated[bool, _opt("--force", help="replace a run made by another config")] = False,
    accelerator: Annotated[str, _opt("--accelerator", help="Lightning: cpu, gpu, auto")] = "auto",
    devices: Annotated[str, _opt("--devices", help="Lightning: count, list or auto")] = "1",
    num_nodes: Annotated[int, _opt("--num-nodes", help="Lightning: nodes")] = 1,
    strategy: Annotated[str, _opt("--strategy", help="Lightning: auto, ddp ...")] = "auto",
    precision: Annotated[str | None, _opt("--precision", help="Lightning: 16-mixed ...")] = None,
    logger: Annotated[str, _opt("--logger", help="csv, tensorboard, wandb or none")] = "csv",
    extractors: Annotated[
        str | None, _opt("--extractors", help="scoring: digits,pixels ...")
    ] = None,
    weights_dir: Annotated[Path | None, _opt("--weights-dir", help="feature weights")] = None,
):
    """The options of `bench run` and `bench generate` (a signature template)."""


def _config(opts: dict):
    from bench.config import load_config

    run_keys = (
        "model",
        "model_path",
        "dtype",
        "samples",
        "batch_size",
        "steps",
        "seed",
        "out",
        "name",
        "guidance",
        "scheduler",
        "threads",
        "device",
        "channels_last",
        "compile",
    )
    overrides = {k: opts[k] for k in run_keys}
    overrides["samples"] = parse_samples(opts["samples"])
    overrides["methods"] = parse_methods(opts["methods"])
    overrides["prompts"] = parse_prompts(opts["prompts"])
    # --protect and --radius are SPELL's: the one method that shields a protected set.
    shields = {"protect": opts["protect"], "radius": opts["radius"]}
    method_flags = {"spell": shields}
    cfg = load_config(opts["config"], overrides, preset=opts["preset"], method_flags=method_flags)
    if any(v is not None for v in shields.values()) and "spell" not in cfg.run.methods:
        raise BenchError("--protect and --radius set SPELL's shields, but spell is not run: add it")
    return cfg


def _launch(opts: dict):
    from bench.launch import Launch

    devices = opts["devices"]
    devices = int(devices) if devices.isdigit() else devices
    return Launch(
        opts["accelerator"],
        devices,
        opts["num_nodes"],
        opts["strategy"],
        opts["precision"],
        opts["logger"],
    )


def _generate(plan, force: bool, launch):
    from bench.generate import execute

    start = time.perf_counter()
    run = execute(plan, force=force, launch=launch)
    if launch is None or _is_zero():
        images = (run.manifest() or {}).get("images_generated", 0)
        seconds = time.perf_counter() - start
        rate = images / seconds if seconds > 0 else 0.0
        typer.echo(
            f"generated {images} images in {seconds:.1f} s ({rate:.2f} images/s) -> {run.path}"
        )
    return run


def _is_zero() -> bool:
    from bench.loop import is_global_zero

    return is_global_zero()


def _echo_plugins(shown: list[str]) -> list[str]:
    """Say which plugin code (module:attr names, entry points) this command imported."""
    from bench.registry import imported_plugins

    new = [p for p in imported_plugins() if p not in shown]
    for line in new:
        typer.echo(f"imported plugin code: {line}")
    return shown + new


def _score(
    run_path: Path,
    extractors: str | None,
    weights_dir: Path | None,
    device: str,
    partial: bool = False,
    copy_threshold: str | None = None,
):
    from bench.run_dir import RunDir
    from bench.stages import score_stage

    start = time.perf_counter()
    names = parse_names(extractors)
    thresholds = parse_thresholds(copy_threshold)
    result = score_stage(
        run_path, names, weights_dir, device, partial=partial, copy_thresholds=thresholds
    )
    from metrics.outputs import format_table

    typer.echo(format_table(result))
    if result.get("partial"):
        prompts = result["prompts"]
        typer.echo(f"partial: scored the {len(prompts)} prompts every method finished: {prompts}")
    where = RunDir(run_path).metrics_file
    typer.echo(f"scored in {time.perf_counter() - start:.1f} s: {where}")


def _report(run_path: Path) -> None:
    from bench.stages import report_stage

    start = time.perf_counter()
    index = report_stage(run_path)
    typer.echo(f"report in {time.perf_counter() - start:.1f} s: {index}")


def _stages_command(stages: tuple[str, ...], doc: str):
    @functools.wraps(_options)
    def command(**opts):
        cfg = _config(opts)
        from bench.generate import plan_generation

        plan = plan_generation(cfg)  # every check; nothing written yet
        launch = _launch(opts)
        shown = _echo_plugins([]) if _is_zero() else []
        with plan.run.lock(create=True):  # rank 0 holds it for the whole command
            run = _generate(plan, opts["force"], launch)
            if "score" in stages and launch.parallel:
                from metrics.extraction import extract_features

                extract_features(
                    run.path, launch, parse_names(opts["extractors"]), opts["weights_dir"]
                )
            if not _is_zero():
                return
            if "score" in stages:
                _score(run.path, opts["extractors"], opts["weights_dir"], cfg.run.device)
                _echo_plugins(shown)
            if "report" in stages:
                _report(run.path)

    command.__doc__ = doc
    return command


app.command("run")(
    _stages_command(
        ("generate", "score", "report"),
        "Generate, score and report in one go (the default: digits, none vs SPELL).",
    )
)
app.command("generate")(
    _stages_command(
        ("generate",), "Generate samples for every method-config and prompt (resumes a run)."
    )
)


@app.command()
def score(
    run_dir: RunDirArg,
    extractors: Annotated[str | None, _opt("--extractors", help="digits,pixels ...")] = None,
    weights_dir: Annotated[Path | None, _opt("--weights-dir", help="feature weights")] = None,
    device: Annotated[str, _opt("--device", help="cpu, cuda ...")] = "cpu",
    partial: Annotated[
        bool, _opt("--partial", help="unfinished run: score the prompts every method finished")
    ] = False,
    copy_threshold: Annotated[
        str | None,
        _opt("--copy-threshold", help="cosine above which a sample copies: 0.5 or sscd=0.5,..."),
    ] = None,
    accelerator: Annotated[str, _opt("--accelerator", help="Lightning: cpu, gpu, auto")] = "auto",
    devices: Annotated[
        str, _opt("--devices", help="Lightning: extract features on this many devices")
    ] = "1",
    strategy: Annotated[str, _opt("--strategy", help="Lightning: auto, ddp ...")] = "auto",
):
    """Extract features and compute every metric: RUN_DIR/metrics.json and metrics.csv."""
    launch = _launch(
        {"accelerator": accelerator, "devices": devices, "num_nodes": 1, "strategy": strategy}
        | {"precision": None, "logger": "none"}
    )
    if launch.parallel:  # every rank extracts its share; rank 0 scores from the caches
        from bench.stages import check_scorable

        check_scorable(run_dir, partial)  # before Lightning and the extractors load
        from metrics.extraction import extract_features

        extract_features(run_dir, launch, parse_names(extractors), weights_dir)
        if not _is_zero():
            return
    _score(run_dir, extractors, weights_dir, device, partial, copy_threshold)


@app.command()
def report(run_dir: RunDirArg):
    """Draw the report of a scored run: Pareto fronts, sparsity, grids, tables, HTML."""
    _report(run_dir)


@app.command()
def calibrate(
    model: Annotated[str, _opt("--model", help="model name")] = "digits",
    prompt: Annotated[str | None, _opt("--prompt", help="prompt id (default: the first)")] = None,
    batch_size: Annotated[int, _opt("--batch-size", help="samples in the batch")] = 8,
    steps: Annotated[int | None, _opt("--steps", help="sampling steps")] = None,
    guidance: Annotated[float | None, _opt("--guidance", help="CFG weight")] = None,
    seed: Annotated[int, _opt("--seed", help="seed")] = 0,
    model_path: Annotated[str | None, _opt("--model-path", help="local weights")] = None,
    device: Annotated[str, _opt("--device", help="cpu, cuda ...")] = "cpu",
    out: Annotated[Path | None, _opt("--out", help="write the bench.toml snippet here")] = None,
):
    """The paper's radius calibration: 16 radii up to twice the median pairwise distance."""
    from bench.atomic import atomic_write_text
    from bench.calibrate import calibrate as run_calibration
    from bench.calibrate import calibration_toml
    from bench.generate import select_prompts
    from bench.models.registry import load_model

    kwargs = {"device": device} | ({"model_path": model_path} if model_path else {})
    adapter = load_model(model, **kwargs)
    chosen = select_prompts(adapter, [prompt] if prompt else 1)[0]
    result = run_calibration(
        adapter,
        chosen,
        batch_size,
        steps or adapter.default_steps,
        adapter.default_guidance if guidance is None else guidance,
        seed,
    )
    snippet = calibration_toml(result)
    typer.echo(snippet)
    if out is not None:
        atomic_write_text(out, snippet)


@app.command()
def regress(
    run_dir: RunDirArg,
    baseline: Annotated[Path, _opt("--baseline", help="baseline JSON with tolerances")],
    update: Annotated[bool, _opt("--update", help="write a new baseline from this run")] = False,
    show_all: Annotated[bool, _opt("--all", help="list unchanged metrics too")] = False,
):
    """Compare a scored run with a baseline; exit 1 when a metric regressed."""
    from bench import regress as rg

    metrics = rg.read_metrics(run_dir)
    if update:
        rg.update_baseline(metrics, baseline)
        typer.echo(f"baseline written: {baseline}")
        return
    rows = rg.compare(metrics, rg.read_baseline(baseline))
    typer.echo(rg.format_rows(rows, show_all=show_all))
    if rg.has_regression(rows):
        raise typer.Exit(1)


@app.command()
def perf(
    suites: Annotated[
        str, _opt("--suites", "--suite", help="overhead,lookup,harness,metrics or gpu")
    ] = "overhead,lookup,harness,metrics",
    quick: Annotated[bool, _opt("--quick", help="small sizes, digits only")] = False,
    threads: Annotated[int | None, _opt("--threads", help="torch/faiss threads")] = None,
    device: Annotated[str, _opt("--device", help="cpu, cuda ...")] = "cpu",
    dtype: Annotated[
        str | None, _opt("--dtype", help="float32, float16, bfloat16 (GPU: float16)")
    ] = None,
    out: Annotated[Path | None, _opt("--out", help="write perf.json and perf.md here")] = None,
):
    """The performance suite: SPELL overhead, shield lookup, harness overhead, metric cost;
    `--suite gpu --device cuda`: the generation path on a GPU, model by model."""
    from bench.perf import run_perf

    result = run_perf(
        suites=tuple(filter(None, (name.strip() for name in suites.split(",")))),
        quick=quick,
        threads=threads,
        out=out,
        device=device,
        dtype=dtype,
    )
    typer.echo(result.to_markdown())


@app.command()
def experiment(
    path: Annotated[
        Path, typer.Argument(help="an experiment file, e.g. experiments/paper-digits.toml")
    ],
    out: Annotated[Path | None, _opt("--out", help="folder of the runs")] = None,
    force: Annotated[bool, _opt("--force", help="replace runs made by another config")] = False,
):
    """Run an experiment over several seeds and write its results document."""
    from bench.experiment import run_experiment

    typer.echo(f"results: {run_experiment(path, out, force=force)}")


@app.command("list")
def list_(what: Annotated[str, typer.Argument(help="models or methods")] = "methods"):
    """List models or methods (with their parameters and defaults)."""
    if what == "models":
        from bench.models.registry import describe_models

        for line in describe_models():
            typer.echo(line)
    elif what == "methods":
        from methods.registry import cached_descriptions

        for line in cached_descriptions():
            typer.echo(line)
    else:
        raise BenchError(f"cannot list {what!r}: use `bench list models` or `bench list methods`")


_DEBUG = {"on": False}
_LIBRARY_LOGGERS = ("lightning", "lightning.pytorch", "lightning.fabric", "torch", "accelerate")


@app.callback()
def _global_options(
    debug: Annotated[
        bool, _opt("--debug", help="show library warnings and logs, and tracebacks")
    ] = False,
) -> None:
    _DEBUG["on"] = debug
    if not debug:
        _quiet_libraries()


def _quiet_libraries() -> None:
    """Library warnings and notices stay out of the way of the one line that matters."""
    warnings.simplefilter("ignore")
    for name in ("DIFFUSERS_VERBOSITY", "TRANSFORMERS_VERBOSITY"):  # read at their import
        os.environ.setdefault(name, "error")
    for name in _LIBRARY_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)


def _interruptible(command):
    """Ctrl-C outside generation (which counts what is done) still gets its one line."""

    @functools.wraps(command)
    def run(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except KeyboardInterrupt:
            raise Interrupted("interrupted; rerun the same command to resume") from None

    return run


for _group in (app, train_app, protect_app, data_app):
    for _info in _group.registered_commands:
        _info.callback = _interruptible(_info.callback)

_OS_HINTS = {
    errno.ENOSPC: "free some space, then rerun the same command to resume",
    errno.EDQUOT: "free some space, then rerun the same command to resume",
    errno.EFBIG: "free some space, then rerun the same command to resume",
    errno.EROFS: "write somewhere writable (--out)",
    errno.EACCES: "write somewhere writable (--out), or fix the permissions",
    errno.EPERM: "write somewhere writable (--out), or fix the permissions",
    errno.ENOTDIR: "a file stands where a folder should be: choose another --out or --name",
    errno.EEXIST: "a file stands where a folder should be: choose another --out or --name",
}


def _failure(err: BaseException) -> tuple[str, int]:
    """The one line and the exit code: 2 bad input, 1 the environment, 130 Ctrl-C."""
    if isinstance(err, Interrupted):
        return str(err), err.exit_code
    if isinstance(err, BenchError):
        return f"error: {err}", err.exit_code
    if isinstance(err, OSError):
        hint = _OS_HINTS.get(err.errno, "fix that, then rerun the same command")
        where = f"{err.filename}: " if err.filename else ""
        return f"error: {where}{err.strerror or err}; {hint}", 1
    return f"error: internal error ({type(err).__name__}: {err}); rerun with --debug", 1


def main() -> None:
    try:
        app()
    except Exception as err:  # every failure becomes one line (--debug: and its traceback)
        line, code = _failure(err)
        if _DEBUG["on"]:
            traceback.print_exception(err)
        typer.echo(line, err=True)
        sys.exit(code)
