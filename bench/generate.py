"""The generate stage: config -> prompts and method-configs -> samples on disk.

`plan_generation` checks everything a run needs (methods, model, prompts, scheduler)
and writes nothing; `execute` writes, under the run directory's lock.
"""

from __future__ import annotations

import difflib
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from bench.config import BenchConfig
from bench.data.sets import dataset_spec, load_prompt_set, open_prompt_set
from bench.environment import default_threads, is_global_zero
from bench.errors import BenchError, Interrupted
from bench.run_dir import RunDir
from methods import registry as method_registry
from methods.registry import expand

if TYPE_CHECKING:  # diffusers loads with the model, after the cheap checks
    from bench.models.base import ModelAdapter, Prompt
    from bench.sampler import SamplingSettings
    from methods.base import DiversityMethod

REFERENCE_SAMPLES_CAP = 128  # the paper's most images per prompt
_LATER = ("scored", "reported")  # what a rerun that generated nothing keeps


def select_prompts(model: ModelAdapter, spec: int | list[str] | str) -> list[Prompt]:
    dataset = dataset_spec(spec)
    if dataset is not None:
        return load_prompt_set(dataset, model)
    offered = model.prompts()
    if spec == "all":
        chosen = offered
    elif isinstance(spec, int):
        chosen = _first_prompts(model, offered, spec)
    else:
        ids = spec.split(",") if isinstance(spec, str) else [str(s) for s in spec]
        chosen = _prompts_by_id(model, offered, ids)
    if not chosen:
        raise BenchError("the prompt set is empty: nothing to generate")
    return chosen


def with_reference_counts(
    prompts: list[Prompt], spec: object, references: Path | None
) -> list[Prompt]:
    """`samples = "references"`: each prompt gets as many samples as it has reference
    images, at most REFERENCE_SAMPLES_CAP (the paper's CC12M protocol: 4 to 128)."""
    dataset = dataset_spec(spec)
    refs = open_prompt_set(dataset, references).references if dataset else None
    if not refs:
        raise BenchError("--samples references needs a prompt set with reference images")
    missing = [p.id for p in prompts if not refs.get(p.id)]
    if missing:
        raise BenchError(f"--samples references: no reference images for prompts {missing[:5]}")
    return [replace(p, samples=min(len(refs[p.id]), REFERENCE_SAMPLES_CAP)) for p in prompts]


def _first_prompts(model: ModelAdapter, offered: list[Prompt], count: int) -> list[Prompt]:
    if count <= 0:
        raise BenchError(f"--prompts must be positive, got {count}")
    if count > len(offered):
        raise BenchError(
            f"--prompts {count}: model {model.name} has {len(offered)} prompts; "
            f"ask for at most {len(offered)}, or 'all'"
        )
    return offered[:count]


def _prompts_by_id(model: ModelAdapter, offered: list[Prompt], ids: list[str]) -> list[Prompt]:
    by_id = {p.id: p for p in offered}
    unknown = [i for i in ids if i not in by_id]
    if unknown:
        raise BenchError(f"unknown prompt ids {unknown} for model {model.name}")
    return [by_id[i] for i in ids]


def select_methods(config: BenchConfig) -> list[DiversityMethod]:
    """`none` first, then every sweep point of every named method; ids must be unique."""
    names = ["none"] + [m for m in config.run.methods if m != "none"]
    check_method_sections(config, names)
    methods = [m for name in names for m in expand(name, config.method.get(name, {}))]
    ids = [m.id for m in methods]
    duplicates = {i for i in ids if ids.count(i) > 1}
    if duplicates:
        raise BenchError(f"method-configs with the same id: {sorted(duplicates)}")
    return methods


def check_names(config: BenchConfig) -> None:
    """The model and every run method are registered (or `module:attr` names), checked
    without importing them."""
    from bench.models.registry import MODELS

    for registry, names in (
        (MODELS, [config.run.model]),
        (method_registry.METHODS, config.run.methods),
    ):
        for name in names:
            if ":" not in name and name not in registry:
                registry.get(name)  # the registry's own "unknown ..." line


def check_method_sections(config: BenchConfig, run_names: list[str]) -> None:
    """Every [method.<name>] names a method that is run or registered (a sweep kept for
    later, as bench.toml's baselines); the registered ones not run are checked too."""
    known = method_registry.METHODS.names()
    for name, params in config.method.items():
        if name in run_names:
            continue
        if name not in known:
            close = difflib.get_close_matches(name, [*run_names, *known], n=1)
            hint = f"; did you mean [method.{close[0]}]?" if close else ""
            raise BenchError(
                f"[method.{name}] configures a method that is neither run nor registered"
                f"{hint} (run: {', '.join(run_names)})"
            )
        expand(name, params)  # a bad key or value is an error even when not run


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


@dataclass
class GenerationPlan:
    """A checked run: what to generate and where. Making one writes nothing."""

    config: BenchConfig
    run: RunDir
    model: ModelAdapter
    methods: list[DiversityMethod]
    prompts: list[Prompt]
    settings: SamplingSettings

    def details(self) -> dict:
        return {
            "guidance": self.settings.guidance,
            "steps": self.settings.steps,
            "method_ids": [m.id for m in self.methods],
            "prompt_ids": [p.id for p in self.prompts],
        }


def check_methods_fit(model, methods) -> None:
    """Refuse, before anything is generated, a method the model cannot serve."""
    abilities = model.abilities()
    for method in methods:
        reason = method.unsupported(tuple(model.latent_shape), abilities)
        if reason is None and "attention" in method.requires:
            reason = _layers_missing(method, model)
        if reason is None and method.uses_features:
            reason = _features_missing(model)
        if reason:
            raise BenchError(f"method {method.name!r} cannot run on model {model.name!r}: {reason}")


def _features_missing(model) -> str | None:
    """Build the feature map once (DINOv2 for image models: its weights must be local)."""
    from bench.feature_maps import feature_map_for

    try:
        feature_map_for(model)
    except BenchError as err:
        return str(err)
    return None


def _layers_missing(method, model) -> str | None:
    """Place and remove the method's hooks once: a layer spec that names no layer of the
    network is refused here, not at the first perturbed step."""
    try:
        with method.perturb(model.perturbable()):
            pass
    except ValueError as err:
        return str(err)
    return None


def plan_generation(config: BenchConfig) -> GenerationPlan:
    """Every check of the input, before anything is written (the run directory's first:
    a folder that cannot be written, or is held, fails before the model loads)."""
    run = RunDir(run_path(config))
    run.preflight()
    if config.run.threads is None:  # resolved once, recorded in config.toml and the manifest
        threads = default_threads()
        config = config.model_copy(
            update={"run": config.run.model_copy(update={"threads": threads})}
        )
    check_names(config)  # before torch: a typo is one line, at once
    import torch

    torch.set_num_threads(config.run.threads)
    methods = select_methods(config)
    # Imported here: diffusers takes seconds, and the checks above need none of it.
    from bench.models.network_options import prepare_network
    from bench.models.registry import load_model
    from bench.sampler import SamplingSettings

    model = load_model(config.run.model, **model_kwargs(config))
    prepare_network(model, config.run.channels_last, config.run.compile)
    prompts = select_prompts(model, config.run.prompts)
    if config.run.samples == "references":
        prompts = with_reference_counts(prompts, config.run.prompts, config.run.references)
    settings = SamplingSettings(
        guidance=model.default_guidance if config.run.guidance is None else config.run.guidance,
        steps=config.run.steps or model.default_steps,
        scheduler=config.run.scheduler,
    )
    model.make_scheduler(settings.scheduler)  # fail early on an unknown scheduler
    check_methods_fit(model, methods)
    return GenerationPlan(config, run, model, methods, prompts, settings)


def execute(
    plan: GenerationPlan, force: bool = False, progress: bool = True, launch=None
) -> RunDir:
    """Generate what the run directory lacks. Under multi-process launchers every rank
    runs this; only rank 0 prepares the directory and writes the manifest."""
    from bench.loop import run_generation

    config, run, zero = plan.config, plan.run, is_global_zero()
    before = run.status() if zero else None
    if zero:
        run.prepare(config, force=force)
        run.write_manifest(config, "generating", **plan.details())
        for method in plan.methods:
            run.write_method_info(method.id, method.info())
    start = time.perf_counter()
    try:
        ran = run_generation(
            run,
            plan.model,
            plan.methods,
            plan.prompts,
            plan.settings,
            config.run.samples if isinstance(config.run.samples, int) else 0,
            config.run.batch_size,
            config.run.seed,
            launch,
            progress,
        )
    except KeyboardInterrupt:
        done, planned = run.progress()
        raise Interrupted(
            f"interrupted: {done} of {planned} prompt items complete; "
            "rerun the same command to resume"
        ) from None
    if zero:
        status = before if before in _LATER and not ran else "generated"
        run.write_manifest(
            config,
            status,
            **plan.details(),
            generation_seconds=round(time.perf_counter() - start, 3),
            images_generated=ran * config.run.samples
            if isinstance(config.run.samples, int)
            else None,
        )
    return run


def generate(
    config: BenchConfig, force: bool = False, progress: bool = True, launch=None
) -> RunDir:
    """Check, then generate under the run directory's lock."""
    plan = plan_generation(config)
    with plan.run.lock(create=True):
        return execute(plan, force=force, progress=progress, launch=launch)
