"""The one sampling loop (DESIGN.md, "The sampling core").

Per network evaluation, for a batch: method.condition -> method.guidance (both once
per step, kept for a multi-stage step's later evaluations) -> CFG in x0 space
(clipped as the scheduler would) -> method.correct -> convert x0' back to the
network's output type -> the scheduler's own step() with per-sample noise.
A second-order scheduler (Heun) makes two evaluations per step, each corrected.
"""

from __future__ import annotations

import inspect
import time
from dataclasses import dataclass, replace

import numpy as np
import torch
from diffusers.utils.torch_utils import randn_tensor

from bench.finite import check_finite
from bench.models.base import ModelAdapter, Prompt, output_to_x0, x0_to_output
from bench.schedules import (
    call_stage,
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


@dataclass(frozen=True)
class PromptConditions:
    """A prompt's condition and its guide's condition, computed once per prompt (one row
    each) and repeated per batch, as the pipelines repeat one prompt's embeddings."""

    cond: torch.Tensor
    guide: torch.Tensor

    @classmethod
    def of(cls, model: ModelAdapter, prompt: Prompt) -> PromptConditions:
        with torch.inference_mode():
            return cls(model.condition([prompt]), model.guide_condition([prompt]))

    def rows(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        def repeat(t: torch.Tensor) -> torch.Tensor:
            return t.repeat(n, *([1] * (t.dim() - 1)))

        return repeat(self.cond), repeat(self.guide)


@dataclass(frozen=True)
class Evaluation:
    """Where the network is evaluated: what every prediction of one evaluation shares."""

    x_t: torch.Tensor
    timestep: torch.Tensor
    stepper: object
    index: int
    alpha: float
    sigma: float


def guided_x0(model, method, step, at: Evaluation, cond, guide, w, ctx) -> tuple:
    """The method's guided x0 (CFG by default, before any clipping), and the network
    evaluations it took per sample. Only the predictions the method asks for are made:
    none beside the conditional one when w == 1."""
    names = method.predictions(step, w)
    x, t, where = at.x_t, at.timestep, (at.stepper, at.index)
    preds = {}
    if "uncond" in names:
        preds["uncond"], preds["cond"] = model.x0_pair(x, t, guide, cond, *where)
    else:
        preds["cond"] = model.x0(x, t, cond, *where)
    if "weak" in names:
        preds["weak"] = model.weak_x0(x, t, cond, guide, *where)
    if "perturbed" in names:
        preds["perturbed"] = model.perturbed_x0(method, x, t, cond, *where)
    if method.combine_space == "x0":
        return method.combine(step, preds, w, ctx), len(preds)
    kind = model.prediction_type
    out = {k: x0_to_output(v, x, at.alpha, at.sigma, kind) for k, v in preds.items()}
    combined = method.combine(step, out, w, ctx)
    return output_to_x0(combined, x, at.alpha, at.sigma, kind), len(preds)


def step_noise_kwargs(scheduler, gens: list[torch.Generator]) -> dict:
    """Per-sample generators for step(), where it takes any (PNDM's step does not)."""
    if "generator" in inspect.signature(scheduler.step).parameters:
        return {"generator": gens}
    return {}


def keeps_epsilon(scheduler, stepper) -> bool:
    """Whether the step also uses the model output itself, not only its x0, while the
    scheduler clips: DDIM-style steps with `use_clipped_model_output` off (the
    pipelines' default) keep the epsilon of the unclipped prediction."""
    uses_output = "use_clipped_model_output" in inspect.signature(stepper.step).parameters
    return stepper is not scheduler and uses_output


def step_inputs(stepper, keep_epsilon: bool, x_t, x0_raw, x0_clipped, x0_new, alpha, sigma):
    """(model output, sample) to hand the unclipped `stepper` so that it steps towards
    x0_new, the clipped and corrected prediction. Where the step keeps the unclipped
    epsilon, the loop hands it the sample a x0_new + s eps_dir, which makes the step's
    own x0 equal x0_new and its epsilon eps_dir, the epsilon of x0_raw moved by the
    method's correction x0_new - x0_clipped."""
    kind = output_type(stepper)
    if not keep_epsilon:
        return x0_to_output(x0_new, x_t, alpha, sigma, kind), x_t
    eps_dir = (x_t - alpha * (x0_raw + (x0_new - x0_clipped))) / sigma
    sample = alpha * x0_new + sigma * eps_dir
    return x0_to_output(x0_new, sample, alpha, sigma, kind), sample


@dataclass
class Traces:
    """Per-sample, per-evaluation traces of one batch."""

    t: np.ndarray
    active: np.ndarray
    delta: np.ndarray
    ratio: np.ndarray

    @classmethod
    def empty(cls, n: int, calls: int) -> Traces:
        zeros = np.zeros((n, calls), np.float32)
        return cls(np.zeros(calls, np.float32), zeros.astype(bool), zeros, zeros.copy())


def sample_batch(
    model: ModelAdapter,
    method: DiversityMethod,
    prompt: Prompt,
    ctx: BatchContext,
    settings: SamplingSettings,
    conditions: PromptConditions | None = None,
) -> BatchResult:
    """One batch of one prompt, every network call and method hook under inference mode."""
    start = time.perf_counter()
    with torch.inference_mode():
        conditions = conditions or PromptConditions.of(model, prompt)
        if not ctx.condition_parts:
            ctx = replace(ctx, condition_parts=model.condition_parts(conditions.cond))
        if method.uses_features and ctx.feature_map is None:
            from bench.feature_maps import feature_map_for

            ctx = replace(ctx, feature_map=feature_map_for(model))
        x, traces, nfe = _denoise(model, method, prompt, ctx, settings, conditions)
        images = model.decode(x)
        method.end_batch(x, ctx)
    return BatchResult(
        x0=x,
        images=images,
        trace_t=traces.t,
        trace_active=traces.active,
        trace_delta_norm=traces.delta,
        trace_ratio=traces.ratio,
        nfe=nfe,
        seconds=time.perf_counter() - start,
    )


def _denoise(model, method, prompt, ctx, settings, conditions) -> tuple:
    """The loop over the scheduler's calls; returns (x0, traces, network calls per sample)."""
    n = len(ctx.seeds)
    gens = generators(ctx.seeds, "cpu")
    # `scheduler` only says how to clip; `stepper` (its unclipped copy) does all the
    # stateful work, scale_model_input included, so both see the same step index
    scheduler = model.make_scheduler(settings.scheduler)
    stepper = without_clipping(scheduler)
    model.set_timesteps(stepper, settings.steps)
    noise_kwargs = step_noise_kwargs(stepper, gens)
    keep_epsilon = keeps_epsilon(scheduler, stepper)
    x = randn_tensor(
        (n, *model.latent_shape), generator=gens, device=model.device, dtype=model.dtype
    )
    x = x * initial_sigma(stepper)
    cond0, uncond0 = conditions.rows(n)
    traces = Traces.empty(n, len(stepper.timesteps))
    nfe = np.zeros(n, np.int64)
    index = -1
    for i, timestep in enumerate(stepper.timesteps):
        stage = call_stage(stepper)
        index += stage == 0
        alpha, sigma = noise_level(stepper, i, timestep)
        t = time_fraction(stepper, i, timestep)
        step = Step(index, settings.steps, timestep, t, alpha, sigma, stage)
        traces.t[i] = t
        if stage == 0:
            cond = method.condition(step, cond0, ctx)
            uncond = method.uncondition(step, uncond0, ctx)
            w = method.guidance(step, settings.guidance, ctx)
            w = model.guidance_weight(w, timestep, index, settings.steps)
        at = Evaluation(x, timestep, stepper, i, alpha, sigma)
        x0_raw, calls = guided_x0(model, method, step, at, cond, uncond, w, ctx)
        nfe += calls
        x0_clipped = x0_hat = clip_x0(scheduler, x0_raw)
        delta = method.correct(step, x, x0_hat, ctx)
        if delta is not None:
            _record(traces, i, delta, x0_hat, x, alpha)
            x0_hat = x0_hat + delta
        out, sample = step_inputs(
            stepper, keep_epsilon, x, x0_raw, x0_clipped, x0_hat, alpha, sigma
        )
        x = stepper.step(out, timestep, sample, **noise_kwargs).prev_sample
        check_finite(x, method.id, prompt.id, index, settings.steps)
    return x, traces, nfe


def _record(traces: Traces, i, delta, x0_hat, x_t, alpha) -> None:
    """||delta||, and the correction/score ratio ||alpha delta|| / ||alpha x0_hat - x_t||."""
    d = delta.flatten(1).float().norm(dim=1)
    score = (alpha * x0_hat - x_t).flatten(1).float().norm(dim=1)
    traces.delta[:, i] = d.cpu().numpy()
    traces.ratio[:, i] = (alpha * d / score.clamp_min(1e-12)).cpu().numpy()
    traces.active[:, i] = (d > 0).cpu().numpy()


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
    conditions = PromptConditions.of(model, prompt)
    parts: list[tuple[list[int], list[int], BatchResult]] = []
    for b, start in enumerate(range(0, num_samples, batch_size)):
        indices = list(range(start, min(start + batch_size, num_samples)))
        seeds = [sample_seed(run_seed, prompt.id, i) for i in indices]
        ctx = BatchContext(prompt.id, b, indices, seeds, model.device)
        result = sample_batch(model, method, prompt, ctx, settings, conditions)
        parts.append((indices, seeds, result))
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
