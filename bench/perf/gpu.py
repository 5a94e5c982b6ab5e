"""Suite `gpu`: the generation path on the device, one row per model.

Each pipeline model (sd15, ldm, dit, sd3) runs with its real weights when they are in
the Hugging Face cache (or its SPELLBENCH_*_PATH), else on tiny random components;
unless `quick`, an SD1.5-sized random pipeline is added, so that a machine without
any weights still times a real-sized UNet. Per model:

- `harness_over_pipeline`: one batch through spellbench with no method (conditioning,
  sampling loop, decode) over the pipeline's own `__call__` with the same seeds,
  steps and guidance (goal <= 1.02). `max_abs_diff` between their images says that
  both did the same work;
- `images_per_s` through spellbench;
- `spell_over_plain_K<k>`: a SPELL step with k static shields over a plain step, as
  the `overhead` suite decomposes it (goal <= 1.01 for k <= 1024).
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from bench.errors import BenchError
from bench.models.base import ModelAdapter, Prompt
from bench.models.pipelines import PipelineAdapter, torch_dtype
from bench.perf.overhead import spell_overhead
from bench.perf.report import Record
from bench.perf.timing import interleaved_medians
from bench.sampler import SamplingSettings, sample_batch
from bench.seeding import generators
from methods.base import BatchContext
from methods.none import NoMethod

PIPELINE_MODELS = ("sd15", "ldm", "dit", "sd3")
SPELL_SHIELDS = (64, 1024)


@dataclass(frozen=True)
class Case:
    """How to build a model's tiny stand-in and its adapter, and how to call its pipeline."""

    tiny: Callable[[Path], object]
    adapter: type[PipelineAdapter]
    call: Callable[[ModelAdapter, Prompt, int], dict]


def _text(model: ModelAdapter, prompt: Prompt, n: int) -> dict:
    return {"prompt": [prompt.text] * n}


def _ldm(model: ModelAdapter, prompt: Prompt, n: int) -> dict:
    side = 8 * model.latent_shape[-1]  # the pipeline divides the size by 8
    return {"prompt": [prompt.text] * n, "height": side, "width": side}


def _classes(model: ModelAdapter, prompt: Prompt, n: int) -> dict:
    return {"class_labels": [prompt.label] * n}


def _cases() -> dict[str, Case]:
    from bench.models.dit import DiTAdapter
    from bench.models.ldm import LDMAdapter
    from bench.models.sd3 import SD3Adapter
    from bench.models.sd15 import SD15Adapter
    from bench.perf import tiny_pipelines as tiny

    return {
        "sd15": Case(tiny.tiny_sd15, SD15Adapter, _text),
        "ldm": Case(tiny.tiny_ldm, LDMAdapter, _ldm),
        "dit": Case(lambda _: tiny.tiny_dit(), DiTAdapter, _classes),
        "sd3": Case(tiny.tiny_sd3, SD3Adapter, _text),
    }


def model_under_test(
    name: str, device: str, dtype: str, folder: Path, real: bool = True
) -> tuple[PipelineAdapter, str]:
    """The real model when its weights are here (and `real`), else its tiny stand-in."""
    if real:
        from bench.models.registry import load_model

        try:
            return load_model(name, dtype=dtype, device=device), name
        except BenchError:
            pass
    case = _cases()[name]
    pipe = on_device(case.tiny(folder / name), device, dtype)
    return case.adapter(pipe), f"{name} (tiny random)"


def sd15_size_model(device: str, dtype: str, folder: Path) -> tuple[PipelineAdapter, str]:
    from bench.models.sd15 import SD15Adapter
    from bench.perf.sd_unet import sd15_size_pipeline

    pipe = on_device(sd15_size_pipeline(folder / "sd15-size"), device, dtype)
    return SD15Adapter(pipe), "sd15-size (random)"


def on_device(pipe, device: str, dtype: str):
    """A pipeline built in float32 on the CPU, moved (and cast only when asked)."""
    pipe = pipe.to(torch.device(device))
    return pipe if torch_dtype(dtype) == torch.float32 else pipe.to(torch_dtype(dtype))


def pipeline_call(model: PipelineAdapter, call: dict, seeds: list[int], settings) -> torch.Tensor:
    """The pipeline's own `__call__`: images in [0, 1], (n, 3, H, W)."""
    return model.pipe(
        **call,
        guidance_scale=settings.guidance,
        num_inference_steps=settings.steps,
        generator=generators(seeds),
        output_type="pt",
    ).images


def harness_call(model: PipelineAdapter, prompt: Prompt, seeds: list[int], settings):
    ctx = BatchContext(prompt.id, 0, list(range(len(seeds))), seeds, model.device)
    return sample_batch(model, NoMethod(), prompt, ctx, settings).images


def harness_row(
    model: PipelineAdapter, label: str, call, batch: int, steps: int, reps: int
) -> Record:
    """The harness against the pipeline on one batch, and SPELL's step cost."""
    prompt = model.prompts()[0]
    seeds = list(range(batch))
    settings = SamplingSettings(model.default_guidance, steps)
    kwargs = call(model, prompt, batch)
    ours = harness_call(model, prompt, seeds, settings)  # these two calls are the warm-up
    theirs = pipeline_call(model, kwargs, seeds, settings)
    times = interleaved_medians(
        {
            "pipeline": lambda: pipeline_call(model, kwargs, seeds, settings),
            "harness": lambda: harness_call(model, prompt, seeds, settings),
        },
        reps,
        warmup=0,
        device=model.device,
    )
    spell, plain = spell_overhead(
        model, label, (0, *SPELL_SHIELDS), batch, steps, reps, direct=False, pixel=False
    )
    return {
        "model": label,
        "dtype": str(model.dtype).removeprefix("torch."),
        "batch": batch,
        "steps": steps,
        "guidance": settings.guidance,
        "pipeline_s": times["pipeline"],
        "harness_s": times["harness"],
        "harness_over_pipeline": times["harness"] / times["pipeline"],
        "max_abs_diff": (ours.float().cpu() - theirs.float().cpu()).abs().max().item(),
        "images_per_s": batch / times["harness"],
        "plain_step_ms": 1e3 * plain,
        **{f"spell_over_plain_K{row['K']}": row["ratio_decomposed"] for row in spell[1:]},
    }


def gpu_suite(
    device: str = "cuda",
    dtype: str = "float16",
    quick: bool = False,
    models: tuple[str, ...] = PIPELINE_MODELS,
    real: bool = True,
) -> list[Record]:
    """One row per model: harness/pipeline time, images/s and SPELL's step cost.
    `quick`: 4 steps at batch 2, one repetition, no SD1.5-sized pipeline."""
    batch, steps, reps = (2, 4, 1) if quick else (8, 50, 3)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for name in models:
            model, label = model_under_test(name, device, dtype, folder, real)
            rows.append(harness_row(model, label, _cases()[name].call, batch, steps, reps))
            del model
        if not quick:
            model, label = sd15_size_model(device, dtype, folder)
            rows.append(harness_row(model, label, _text, batch, steps, reps))
    return rows
