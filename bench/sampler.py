"""The one sampling loop (DESIGN.md, "The sampling core").

Per step, for a batch: method.condition -> method.guidance -> CFG in x0 space
(clipped as the scheduler would) -> method.correct -> convert x0' back to the
network's output type -> the scheduler's own step() with per-sample noise.
"""

from __future__ import annotations

import inspect
import time
from dataclasses import dataclass

import numpy as np
import torch
from diffusers.utils.torch_utils import randn_tensor

from bench.models.base import ModelAdapter, Prompt, x0_to_output
from bench.schedules import (
    clip_x0,
    initial_sigma,
    noise_level,
    output_type,
    time_fraction,
    without_clipping,
)
from bench.seeding import generators, sample_seed
from methods.base import BatchContext, DiversityMethod, PromptContext, Step


@dataclass
class BatchResult:
    """One batch's outputs; traces are (B, S) per-sample, per-step arrays."""

    x0: torch.Tensor
    images: torch.Tensor
    trace_t: np.ndarray
    trace_active: np.ndarray
    trace_delta_norm: np.ndarray
    trace_ratio: np.ndarray
    nfe: np.ndarray
    seconds: float


@dataclass
class SamplingSettings:
    guidance: float
    steps: int
    scheduler: str = "native"


def guided_x0(model, scheduler, step_index, timestep, x_t, cond, uncond, w) -> tuple:
    """CFG in x0 space, and the network evaluations it took per sample.

    The unconditional call is skipped when w == 1."""
    if w == 1.0:
        return model.x0(x_t, timestep, cond, scheduler, step_index), 1
    both = model.x0(
        torch.cat([x_t, x_t]), timestep, torch.cat([uncond, cond]), scheduler, step_index
    )
    x0_u, x0_c = both.chunk(2)
    return x0_u + w * (x0_c - x0_u), 2


def step_noise_kwargs(scheduler, gens: list[torch.Generator]) -> dict:
    """Per-sample generators for step(), where it takes any (PNDM's step does not)."""
    if "generator" in inspect.signature(scheduler.step).parameters:
        return {"generator": gens}
    return {}


def sample_batch(
    model: ModelAdapter,
    method: DiversityMethod,
    prompt: Prompt,
    ctx: BatchContext,
    settings: SamplingSettings,
) -> BatchResult:
    start = time.perf_counter()
    n = len(ctx.seeds)
    gens = generators(ctx.seeds, "cpu")
    # `scheduler` only says how to clip; `stepper` (its unclipped copy) does all the
    # stateful work, scale_model_input included, so both see the same step index
    scheduler = model.make_scheduler(settings.scheduler)
    stepper = without_clipping(scheduler)
    model.set_timesteps(stepper, settings.steps)

    noise_kwargs = step_noise_kwargs(stepper, gens)
    shape = (n, *model.latent_shape)
    x = randn_tensor(shape, generator=gens, device=model.device, dtype=model.dtype)
    x = x * initial_sigma(stepper)
    cond0 = model.condition([prompt] * n)
    uncond0 = model.null_condition(n)

    num = len(stepper.timesteps)
    trace = {k: np.zeros((n, num), np.float32) for k in ("delta", "ratio")}
    active = np.zeros((n, num), bool)
    trace_t = np.zeros(num, np.float32)
    nfe = np.zeros(n, np.int64)
    with torch.no_grad():
        for i, timestep in enumerate(stepper.timesteps):
            alpha, sigma = noise_level(stepper, i, timestep)
            step = Step(i, num, timestep, time_fraction(stepper, i, timestep), alpha, sigma)
            trace_t[i] = step.t
            cond = method.condition(step, cond0, ctx)
            uncond = method.uncondition(step, uncond0, ctx)
            w = method.guidance(step, settings.guidance, ctx)
            x0_hat, calls = guided_x0(model, stepper, i, timestep, x, cond, uncond, w)
            nfe += calls
            x0_hat = clip_x0(scheduler, x0_hat)
            delta = method.correct(step, x, x0_hat, ctx)
            if delta is not None:
                _record(trace, active, i, delta, x0_hat, x, alpha)
                x0_hat = x0_hat + delta
            out = x0_to_output(x0_hat, x, alpha, sigma, output_type(stepper))
            x = stepper.step(out, timestep, x, **noise_kwargs).prev_sample
        images = model.decode(x)
    method.end_batch(x, ctx)
    return BatchResult(
        x0=x,
        images=images,
        trace_t=trace_t,
        trace_active=active,
        trace_delta_norm=trace["delta"],
        trace_ratio=trace["ratio"],
        nfe=nfe,
        seconds=time.perf_counter() - start,
    )


def _record(trace, active, i, delta, x0_hat, x_t, alpha) -> None:
    """||delta||, and the correction/score ratio ||alpha delta|| / ||alpha x0_hat - x_t||."""
    d = delta.flatten(1).float().norm(dim=1)
    score = (alpha * x0_hat - x_t).flatten(1).float().norm(dim=1)
    trace["delta"][:, i] = d.cpu().numpy()
    trace["ratio"][:, i] = (alpha * d / score.clamp_min(1e-12)).cpu().numpy()
    active[:, i] = (d > 0).cpu().numpy()


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """[0, 1] (N, C, H, W) -> uint8 (N, H, W, C), rounded (not truncated)."""
    return (images.clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()


def generate_prompt(
    model: ModelAdapter,
    method: DiversityMethod,
    prompt: Prompt,
    num_samples: int,
    batch_size: int,
    run_seed: int,
    settings: SamplingSettings,
) -> dict[str, np.ndarray]:
    """All samples of one prompt, batch after batch in a fixed order (batch b holds
    samples b*B .. b*B+B-1, whatever the method), as arrays ready to save."""
    method.begin_prompt(PromptContext(prompt.id, model.device))
    parts: list[tuple[list[int], list[int], BatchResult]] = []
    for b, start in enumerate(range(0, num_samples, batch_size)):
        indices = list(range(start, min(start + batch_size, num_samples)))
        seeds = [sample_seed(run_seed, prompt.id, i) for i in indices]
        ctx = BatchContext(prompt.id, b, indices, seeds, model.device)
        parts.append((indices, seeds, sample_batch(model, method, prompt, ctx, settings)))
    return {
        "images": np.concatenate([to_uint8(r.images) for _, _, r in parts]),
        "latents": np.concatenate([r.x0.float().cpu().numpy() for _, _, r in parts]),
        "sample_index": np.concatenate([np.asarray(i, np.int64) for i, _, _ in parts]),
        "seeds": np.concatenate([np.asarray(s, np.int64) for _, s, _ in parts]),
        "batch": np.concatenate(
            [np.full(len(i), b, np.int64) for b, (i, _, _) in enumerate(parts)]
        ),
        "nfe": np.concatenate([r.nfe for _, _, r in parts]),
        "seconds": np.concatenate([np.full(len(i), r.seconds / len(i)) for i, _, r in parts]),
        "trace_t": parts[0][2].trace_t,
        "trace_active": np.concatenate([r.trace_active for _, _, r in parts]),
        "trace_delta_norm": np.concatenate([r.trace_delta_norm for _, _, r in parts]),
        "trace_ratio": np.concatenate([r.trace_ratio for _, _, r in parts]),
    }
