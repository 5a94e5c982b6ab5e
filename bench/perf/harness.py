"""Suite 3: spellbench's sampling loop against a raw diffusers loop on the same parts.

The raw loop is what a diffusers pipeline does for the digits model: one batched
network call for CFG on epsilon, then DDPMScheduler.step with one generator. The
harness adds x0-space CFG and correction hooks, per-sample noise streams and
per-step traces; the ratio is what those cost.
"""

from __future__ import annotations

import torch
from diffusers import DDPMScheduler

from bench.models.digits import DigitsAdapter, DigitsDenoiser, digits_scheduler_config
from bench.perf.overhead import _batch
from bench.perf.report import Record
from bench.perf.timing import interleaved_medians


def digits_model() -> tuple[DigitsAdapter, str]:
    """The trained digits model, or its architecture with random weights (same cost)."""
    from bench.errors import BenchError

    try:
        return DigitsAdapter(), "digits"
    except BenchError:
        torch.manual_seed(0)
        return DigitsAdapter(net=DigitsDenoiser().eval().requires_grad_(False)), "digits (random)"


@torch.no_grad()
def raw_loop(model: DigitsAdapter, batch: int, steps: int, seed: int = 0) -> torch.Tensor:
    scheduler = DDPMScheduler(**digits_scheduler_config())
    scheduler.set_timesteps(steps)
    gen = torch.Generator().manual_seed(seed)
    prompt = model.prompts()[0]
    cond = torch.cat([model.null_condition(batch), model.condition([prompt] * batch)])
    x = torch.randn((batch, *model.latent_shape), generator=gen) * scheduler.init_noise_sigma
    w = model.default_guidance
    for t in scheduler.timesteps:
        eps_u, eps_c = model.net(torch.cat([x, x]), t.expand(2 * batch), cond).chunk(2)
        x = scheduler.step(eps_u + w * (eps_c - eps_u), t, x, generator=gen).prev_sample
    return x


def harness_overhead(batch: int = 8, steps: int = 50, reps: int = 7) -> list[Record]:
    from methods.none import NoMethod

    model, label = digits_model()
    method = NoMethod()
    times = interleaved_medians(
        {
            "raw": lambda: raw_loop(model, batch, steps),
            "harness": lambda: _batch(model, method, batch, steps),
        },
        reps,
    )
    return [
        {
            "model": label,
            "batch": batch,
            "steps": steps,
            "raw_diffusers_loop_s": times["raw"],
            "spellbench_none_s": times["harness"],
            "ratio": times["harness"] / times["raw"],
        }
    ]
