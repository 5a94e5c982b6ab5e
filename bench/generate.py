"""The generate stage: config -> prompts and method-configs -> samples on disk."""

from __future__ import annotations

import time
from pathlib import Path

import torch

from bench.config import BenchConfig
from bench.data.sets import dataset_spec, load_prompt_set
from bench.errors import BenchError
from bench.loop import Launch, is_global_zero, run_generation
from bench.models.base import ModelAdapter, Prompt
from bench.models.registry import load_model
from bench.run_dir import RunDir
from bench.sampler import SamplingSettings
from methods.base import DiversityMethod
from methods.registry import expand


def select_prompts(model: ModelAdapter, spec: int | list[str] | str) -> list[Prompt]:
    dataset = dataset_spec(spec)
    if dataset is not None:
        return load_prompt_set(dataset, model)
    offered = model.prompts()
    if spec == "all":
        chosen = offered
    elif isinstance(spec, int):
        if spec <= 0:
            raise BenchError(f"--prompts must be positive, got {spec}")
        chosen = offered[:spec]
    else:
        ids = spec.split(",") if isinstance(spec, str) else [str(s) for s in spec]
        by_id = {p.id: p for p in offered}
        unknown = [i for i in ids if i not in by_id]
        if unknown:
            raise BenchError(f"unknown prompt ids {unknown} for model {model.name}")
        chosen = [by_id[i] for i in ids]
    if not chosen:
        raise BenchError("the prompt set is empty: nothing to generate")
    return chosen


def select_methods(config: BenchConfig) -> list[DiversityMethod]:
    """`none` first, then every sweep point of every named method; ids must be unique."""
    names = ["none"] + [m for m in config.run.methods if m != "none"]
    methods = [m for name in names for m in expand(name, config.method.get(name, {}))]
    ids = [m.id for m in methods]
    duplicates = {i for i in ids if ids.count(i) > 1}
    if duplicates:
        raise BenchError(f"method-configs with the same id: {sorted(duplicates)}")
    return methods


def model_kwargs(config: BenchConfig) -> dict:
    """Factory arguments: the device always, path and dtype only when given."""
    kwargs = {"device": config.run.device}
    if config.run.model_path is not None:
        kwargs["model_path"] = config.run.model_path
    if config.run.dtype is not None:
        kwargs["dtype"] = config.run.dtype
    return kwargs


def run_path(config: BenchConfig) -> Path:
    return Path(config.run.out) / config.run.name


def generate(
    config: BenchConfig, force: bool = False, progress: bool = True, launch: Launch | None = None
) -> RunDir:
    """Generate what the run directory lacks. Under multi-process launchers every rank
    runs this; only rank 0 prepares the directory and writes the manifest."""
    torch.set_num_threads(config.run.threads)
    zero = is_global_zero()
    methods = select_methods(config)
    model = load_model(config.run.model, **model_kwargs(config))
    prompts = select_prompts(model, config.run.prompts)
    settings = SamplingSettings(
        guidance=model.default_guidance if config.run.guidance is None else config.run.guidance,
        steps=config.run.steps or model.default_steps,
        scheduler=config.run.scheduler,
    )
    model.make_scheduler(settings.scheduler)  # fail early on an unknown scheduler
    run = RunDir(run_path(config))
    details = {
        "guidance": settings.guidance,
        "steps": settings.steps,
        "method_ids": [m.id for m in methods],
        "prompt_ids": [p.id for p in prompts],
    }
    if zero:
        run.prepare(config, force=force)
        run.write_manifest(config, "generating", **details)
        for method in methods:
            run.write_method_info(method.id, method.info())
    start = time.perf_counter()
    ran = run_generation(
        run,
        model,
        methods,
        prompts,
        settings,
        config.run.samples,
        config.run.batch_size,
        config.run.seed,
        launch,
        progress,
    )
    seconds = time.perf_counter() - start
    if zero:
        run.write_manifest(
            config,
            "generated",
            **details,
            generation_seconds=round(seconds, 3),
            images_generated=ran * config.run.samples,
        )
    return run
