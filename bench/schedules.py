"""Noise levels of diffusers schedulers in the x_t = alpha_t x0 + sigma_t eps convention."""

from __future__ import annotations

import torch
from diffusers import SchedulerMixin


def is_flow(scheduler: SchedulerMixin) -> bool:
    return not hasattr(scheduler, "alphas_cumprod") and hasattr(scheduler, "sigmas")


def noise_level(scheduler: SchedulerMixin, step_index: int, timestep) -> tuple[float, float]:
    """(alpha_t, sigma_t) at this step's starting point."""
    if hasattr(scheduler, "alphas_cumprod"):
        abar = scheduler.alphas_cumprod[int(timestep)].item()
        return abar**0.5, (1.0 - abar) ** 0.5
    if is_flow(scheduler):
        s = float(scheduler.sigmas[step_index])
        return 1.0 - s, s
    raise TypeError(f"unsupported scheduler {type(scheduler).__name__}")


def time_fraction(scheduler: SchedulerMixin, step_index: int, timestep) -> float:
    """The scheduler's own t in [0, 1] (1 = pure noise)."""
    if is_flow(scheduler):
        return float(scheduler.sigmas[step_index])
    return float(timestep) / scheduler.config.num_train_timesteps


def clip_x0(scheduler: SchedulerMixin, x0: torch.Tensor) -> torch.Tensor:
    """Apply the x0 clipping/thresholding the scheduler would apply itself."""
    config = scheduler.config
    if getattr(config, "thresholding", False):
        return scheduler._threshold_sample(x0)
    if getattr(config, "clip_sample", False):
        r = getattr(config, "clip_sample_range", 1.0)
        return x0.clamp(-r, r)
    return x0


def without_clipping(scheduler: SchedulerMixin) -> SchedulerMixin:
    """A copy that steps exactly towards the x0 it is given (we clip before correcting)."""
    overrides = {k: False for k in ("clip_sample", "thresholding") if k in scheduler.config}
    if not overrides:
        return scheduler
    return type(scheduler).from_config({**scheduler.config, **overrides})


def output_type(scheduler: SchedulerMixin) -> str:
    """What the scheduler's step() expects as model output."""
    if is_flow(scheduler):
        return "flow"
    return scheduler.config.prediction_type
