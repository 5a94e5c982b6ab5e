"""Suite 1: the cost of a SPELL step relative to a plain step, against K static shields.

Two measurements. `decomposed`: the extra work of a SPELL step (the correction with
its shield search, adding it, the per-step trace) timed alone over many repetitions,
over the time of a plain sampler step; this is what a noisy, shared machine can
resolve at the 1% level. `direct`: whole batches with and without SPELL, timed in
turn (only where a step is cheap enough to repeat many times).
"""

from __future__ import annotations

import math

import torch

from bench.models.base import ModelAdapter
from bench.perf.report import Record
from bench.perf.timing import interleaved_medians, median_seconds
from bench.sampler import SamplingSettings, sample_batch
from bench.shields import ShieldSet, make_shield_set
from methods.base import BatchContext, DiversityMethod, PromptContext, Step
from methods.none import NoMethod
from methods.spell import Spell, SpellConfig

SHIELD_COUNTS = (0, 64, 1024, 16384)
PLANTED_HITS = 4


def uniform_latents(n: int, shape: tuple[int, ...], pixel: bool, seed: int) -> torch.Tensor:
    """Stand-ins for x0_hat: uniform in [-1, 1] for pixel models, N(0, 1) for latents."""
    gen = torch.Generator().manual_seed(seed)
    if pixel:
        return torch.rand(n, *shape, generator=gen) * 2 - 1
    return torch.randn(n, *shape, generator=gen)


def typical_radius(x0: torch.Tensor) -> float:
    """A quarter of the typical distance between two such latents: shields are sparse."""
    return 0.25 * torch.pdist(x0.flatten(1)).median().item()


def shields_with_hits(k: int, x0: torch.Tensor, radius: float, pixel: bool) -> torch.Tensor:
    """K random shields, the first few planted at r/2 from some of the queries."""
    shields = uniform_latents(k, tuple(x0.shape[1:]), pixel, seed=k + 1)
    hits = min(k, PLANTED_HITS, len(x0))
    direction = torch.nn.functional.normalize(torch.randn(hits, x0[0].numel()), dim=1)
    shields[:hits] = x0[:hits] + (radius / 2) * direction.view(hits, *x0.shape[1:])
    return shields


def spell_with(shields: ShieldSet | None, radius: float) -> Spell:
    return Spell(SpellConfig(radius=radius), static=shields)


def extra_step_seconds(method: Spell, x0: torch.Tensor, reps: int) -> float:
    """One SPELL step's extra work: correction, the corrected x0 and the trace."""
    step = Step(index=10, num_steps=50, timestep=500, t=0.5, alpha=0.7, sigma=0.7)
    ctx = BatchContext("0", 0, list(range(len(x0))), list(range(len(x0))), x0.device)
    x_t = x0 * step.alpha + step.sigma * torch.randn_like(x0)
    method.begin_prompt(PromptContext("0", x0.device))

    def run() -> None:
        delta = method.correct(step, x_t, x0, ctx)
        _ = x0 + delta
        norm = delta.flatten(1).norm(dim=1)
        score = (step.alpha * x0 - x_t).flatten(1).norm(dim=1)
        (step.alpha * norm / score).cpu().numpy()
        (norm > 0).cpu().numpy()

    return median_seconds(run, reps, warmup=2, device=x0.device)


def plain_step_seconds(model: ModelAdapter, batch: int, steps: int, reps: int) -> float:
    """One plain sampler step: a batch over `steps` steps less the same batch over one,
    over steps - 1, so that conditioning and decoding (not steps) are left out."""
    method = NoMethod()
    if steps == 1:
        return median_seconds(lambda: _batch(model, method, batch, 1), reps, device=model.device)
    times = interleaved_medians(
        {
            "all": lambda: _batch(model, method, batch, steps),
            "one": lambda: _batch(model, method, batch, 1),
        },
        reps,
        device=model.device,
    )
    step = (times["all"] - times["one"]) / (steps - 1)
    return step if step > 0 else times["all"] / steps  # a noisy machine can invert them


def _batch(model: ModelAdapter, method: DiversityMethod, batch: int, steps: int) -> float:
    prompt = model.prompts()[0]
    ctx = BatchContext(prompt.id, 0, list(range(batch)), list(range(batch)), model.device)
    method.begin_prompt(PromptContext(prompt.id, model.device))
    settings = SamplingSettings(model.default_guidance, steps)
    return sample_batch(model, method, prompt, ctx, settings).seconds


def spell_overhead(
    model: ModelAdapter,
    label: str,
    shield_counts: tuple[int, ...] = SHIELD_COUNTS,
    batch: int = 8,
    steps: int = 50,
    reps: int = 5,
    extra_reps: int = 30,
    direct: bool = True,
    backend: str = "auto",
    pixel: bool = True,
) -> tuple[list[Record], float]:
    """Rows per K, and the plain step time (seconds) that the ratios divide by."""
    plain = plain_step_seconds(model, batch, steps, reps)
    x0 = uniform_latents(batch, tuple(model.latent_shape), pixel, seed=0).to(model.device)
    radius = typical_radius(x0)
    rows = []
    for k in shield_counts:
        static = None
        if k:
            shields = shields_with_hits(k, x0.cpu(), radius, pixel)
            static = make_shield_set(shields, backend, device=model.device)
        extra = extra_step_seconds(spell_with(static, radius), x0, extra_reps)
        row: Record = {
            "model": label,
            "K": k,
            "backend": static.describe() if static is not None else "-",
            "plain_step_s": plain,
            "spell_extra_ms": 1e3 * extra,
            "ratio_decomposed": (plain + extra) / plain,
        }
        if direct:
            method = spell_with(static, radius)
            row["ratio_direct"] = direct_ratio(model, method, batch, steps, reps)
        rows.append(row)
    return rows, plain


def direct_ratio(model: ModelAdapter, method: Spell, batch: int, steps: int, reps: int) -> float:
    plain = NoMethod()
    times = interleaved_medians(
        {
            "plain": lambda: _batch(model, plain, batch, steps),
            "spell": lambda: _batch(model, method, batch, steps),
        },
        reps,
        device=model.device,
    )
    ratio = times["spell"] / times["plain"]
    return ratio if math.isfinite(ratio) else float("nan")
