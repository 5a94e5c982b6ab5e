"""Figure 5's numbers per seed: how often, how strongly and how early the method under
test corrects, from the correction traces (reports.traces)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from reports.traces import TraceStats, trace_stats

from .seeds import SeedRun

MARKERS_T = (0.8, 0.6, 0.4, 0.2)


@dataclass
class SparsityStats:
    seed: int
    trajectories: int
    steps: int
    corrected_share: float  # share of (trajectory, step) pairs with a correction
    early_share: float  # share of corrections at t >= early_t
    active_at: dict[float, float]  # t marker -> share of trajectories corrected there
    median_ratio: float
    p95_ratio: float
    max_ratio: float
    never: float
    ended_by_early: float  # share never corrected or ended for good at t >= early_t
    to_the_end: float


def _active_at(stats: TraceStats) -> dict[float, float]:
    active = stats.active.astype(float)
    return {
        t: float(active[int(np.argmin(np.abs(stats.t - t)))] / stats.trajectories)
        for t in MARKERS_T
    }


def sparsity_stats(seed: SeedRun, method_id: str, early_t: float) -> SparsityStats | None:
    stats = trace_stats(seed.run.sample_files(method_id))
    if stats is None or stats.trajectories == 0:
        return None
    active = stats.active.astype(float)
    total = active.sum()
    n = stats.trajectories
    # finish[k]: zero from step k on; its last entry (t = 0) is "corrected to the end".
    ended = stats.never + stats.finish[stats.finish_t() >= early_t].sum()
    return SparsityStats(
        seed=seed.seed,
        trajectories=n,
        steps=len(stats.t),
        corrected_share=float(total / (n * len(stats.t))),
        early_share=float(active[stats.t >= early_t].sum() / total) if total else 0.0,
        active_at=_active_at(stats),
        median_ratio=stats.pooled_ratio_quantile(0.5) if total else 0.0,
        p95_ratio=stats.pooled_ratio_quantile(0.95) if total else 0.0,
        max_ratio=float(stats.ratio_max.max()),
        never=stats.never / n,
        ended_by_early=float(ended / n),
        to_the_end=float(stats.finish[-1] / n),
    )


def seed_sparsity(seeds, method_id: str | None, early_t: float) -> list[SparsityStats]:
    """The stats of every seed whose run has traces of `method_id`."""
    if method_id is None:
        return []
    found = (sparsity_stats(s, method_id, early_t) for s in seeds)
    return [s for s in found if s is not None]
