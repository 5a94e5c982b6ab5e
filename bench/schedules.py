"""Noise levels of diffusers schedulers in the x_t = alpha_t x0 + sigma_t eps convention.

Three families:
- "vp": DDPM-style schedulers (DDPM, DDIM, PNDM, DPM-Solver): alpha_t^2 = alphas_cumprod[t].
- "flow": flow matching (x_t = (1 - s) x0 + s eps): alpha = 1 - s, sigma = s.
- "ve": k-diffusion / EDM-style schedulers (Euler, Heun, LMS, ... with an initial
  noise sigma above 1): x_t = x0 + sigma eps, alpha = 1; the network sees
  `scale_model_input(x_t)`.
The time t in [0, 1]: sigma for flow; timestep / T for vp; for ve the position on
the rho = 7 Karras ramp of the schedule's sigmas (Karras schedules and schedules
with no VP training schedule, e.g. EDM's sigma_max = 80), else timestep / T.
"""

from __future__ import annotations

import torch
from diffusers import SchedulerMixin

KARRAS_RHO = 7.0


def initial_sigma(scheduler: SchedulerMixin) -> float:
    """The scale of the initial noise (flow-matching schedulers have no attribute: 1)."""
    return float(getattr(scheduler, "init_noise_sigma", 1.0))


def scale_input(scheduler: SchedulerMixin, x_t: torch.Tensor, timestep) -> torch.Tensor:
    """What the network is fed at x_t (flow-matching schedulers have no scale_model_input)."""
    if hasattr(scheduler, "scale_model_input"):
        return scheduler.scale_model_input(x_t, timestep)
    return x_t


def family(scheduler: SchedulerMixin) -> str:
    """ "vp", "flow" or "ve" (see the module docstring)."""
    has_sigmas = hasattr(scheduler, "sigmas")
    has_abar = hasattr(scheduler, "alphas_cumprod")
    if scheduler.config.get("use_flow_sigmas", False):
        return "flow"
    if has_sigmas and not has_abar and initial_sigma(scheduler) == 1.0:
        return "flow"
    if has_sigmas and initial_sigma(scheduler) > 1.0:
        return "ve"
    if has_abar:
        return "vp"
    raise TypeError(f"unsupported scheduler {type(scheduler).__name__}")


def is_flow(scheduler: SchedulerMixin) -> bool:
    return family(scheduler) == "flow"


def noise_level(scheduler: SchedulerMixin, step_index: int, timestep) -> tuple[float, float]:
    """(alpha_t, sigma_t) where the network is evaluated at this call.

    A VP scheduler that keeps its own sigmas (DPM-Solver, UniPC, DEIS, ...: sigma is
    sigma_t / alpha_t there) steps with those, which differ from alphas_cumprod at the
    rounded timestep on Karras or exponential schedules: they are used whenever present."""
    kind = family(scheduler)
    if kind == "vp" and hasattr(scheduler, "sigmas"):
        s = float(scheduler.sigmas[step_index])
        alpha = (1.0 + s * s) ** -0.5
        return alpha, s * alpha
    if kind == "vp":
        abar = scheduler.alphas_cumprod[int(timestep)].item()
        return abar**0.5, (1.0 - abar) ** 0.5
    s = float(scheduler.sigmas[step_index])
    return (1.0 - s, s) if kind == "flow" else (1.0, s)


def call_stage(scheduler: SchedulerMixin) -> int:
    """Which evaluation of its step the scheduler's next call is: 0 starts a new step;
    1, 2, ... are the extra evaluations of a multi-stage step (Heun's correction, PNDM's
    Runge-Kutta warm-up, PLMS's repeated first step). Read before calling step()."""
    if hasattr(scheduler, "state_in_first_order"):
        return 0 if scheduler.state_in_first_order else 1
    if hasattr(scheduler, "prk_timesteps"):
        counter = scheduler.counter
        if not scheduler.config.skip_prk_steps and counter < len(scheduler.prk_timesteps):
            return counter % 4
        return 1 if scheduler.config.skip_prk_steps and counter == 1 else 0
    return 0


def time_fraction(scheduler: SchedulerMixin, step_index: int, timestep) -> float:
    """The scheduler's own t in [0, 1] (1 = pure noise)."""
    kind, karras = family(scheduler), scheduler.config.get("use_karras_sigmas", False)
    if kind == "flow":
        return float(scheduler.sigmas[step_index])
    if kind == "ve" and (karras or not hasattr(scheduler, "alphas_cumprod")):
        return _karras_ramp(scheduler, step_index)
    return float(timestep) / scheduler.config.num_train_timesteps


def _karras_ramp(scheduler: SchedulerMixin, step_index: int) -> float:
    """Position of sigma on the rho = 7 ramp between the schedule's extremes: linear in
    steps for a Karras schedule, 1 at sigma_max and 0 at the smallest nonzero sigma."""
    sigmas = scheduler.sigmas.double()
    lo, hi = sigmas[sigmas > 0].min().item(), sigmas.max().item()
    s = max(float(sigmas[step_index]), lo)
    inv = 1.0 / KARRAS_RHO
    return (s**inv - lo**inv) / (hi**inv - lo**inv) if hi > lo else 1.0


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
    overrides = {k: False for k in ("clip_sample", "thresholding") if scheduler.config.get(k)}
    if not overrides:
        return scheduler
    return type(scheduler).from_config({**scheduler.config, **overrides})


def output_type(scheduler: SchedulerMixin) -> str:
    """What the scheduler's step() expects as model output."""
    kind = family(scheduler)
    if kind == "flow":
        return "flow"
    prediction = scheduler.config.prediction_type
    preconditioned = "sigma_data" in scheduler.config
    if kind == "ve" and (prediction not in ("epsilon", "sample") or preconditioned):
        # v-prediction and EDM output preconditioning are not x_t = x0 + sigma eps formulas
        raise TypeError(f"unsupported VE scheduler {type(scheduler).__name__} ({prediction})")
    return "sample" if prediction == "original_sample" else prediction
