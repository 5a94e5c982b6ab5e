"""Per-step statistics of the correction traces, streamed one prompt file at a time.

Memory does not grow with the number of images: the correction/score ratios
are kept as a per-step histogram over log-spaced bins (40 per decade, so a
quantile read from it is within about 6% of the exact one), the rest as counts.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

RATIO_EDGES = np.logspace(-6, 3, 9 * 40 + 1)


@dataclass
class TraceStats:
    t: np.ndarray  # (S,) scheduler t per step, 1 = noise
    trajectories: int
    active: np.ndarray  # (S,) trajectories with a non-zero correction at the step
    ratio_counts: np.ndarray  # (S, bins) ratios of the active ones, binned by RATIO_EDGES
    ratio_max: np.ndarray  # (S,) largest ratio (0 where none active)
    finish: np.ndarray  # (S + 1,) trajectories whose correction is zero from step k on
    never: int  # trajectories never corrected

    @property
    def corrects(self) -> bool:
        return bool(self.active.any())

    def active_share(self) -> np.ndarray:
        return self.active / max(self.trajectories, 1)

    def finish_t(self) -> np.ndarray:
        """t at which the correction has ended for good; 0 for "ran to the end"."""
        return np.append(self.t, 0.0)

    def ratio_quantile(self, q: float) -> np.ndarray:
        """Per-step q-quantile of the ratio over active trajectories (NaN where none)."""
        return np.array([_quantile(row, q) for row in self.ratio_counts])

    def pooled_ratio_quantile(self, q: float) -> float:
        """The q-quantile of the ratio over every (trajectory, step) pair with a
        correction, all steps pooled (NaN where none)."""
        return _quantile(self.ratio_counts.sum(axis=0), q)


def _quantile(counts: np.ndarray, q: float) -> float:
    total = counts.sum()
    if total == 0:
        return float("nan")
    cum = np.cumsum(counts)
    i = int(np.searchsorted(cum, q * total))
    if i == 0:
        return float(RATIO_EDGES[0])
    if i >= len(RATIO_EDGES):
        return float(RATIO_EDGES[-1])
    frac = (q * total - cum[i - 1]) / counts[i]
    lo, hi = np.log(RATIO_EDGES[i - 1]), np.log(RATIO_EDGES[i])
    return float(np.exp(lo + frac * (hi - lo)))


def _empty(t: np.ndarray) -> TraceStats:
    steps = len(t)
    return TraceStats(
        t=t.astype(float),
        trajectories=0,
        active=np.zeros(steps, np.int64),
        ratio_counts=np.zeros((steps, len(RATIO_EDGES) + 1), np.int64),
        ratio_max=np.zeros(steps),
        finish=np.zeros(steps + 1, np.int64),
        never=0,
    )


def accumulate(stats: TraceStats, active: np.ndarray, ratio: np.ndarray) -> None:
    """Add one prompt's trajectories: active (N, S) bool, ratio (N, S)."""
    n, steps = active.shape
    if steps != len(stats.t):
        raise ValueError(f"trace has {steps} steps, earlier prompts had {len(stats.t)}")
    stats.trajectories += n
    stats.active += active.sum(axis=0)
    ok = active & np.isfinite(ratio)
    step_index = np.broadcast_to(np.arange(steps), (n, steps))[ok]
    bins = np.searchsorted(RATIO_EDGES, ratio[ok], side="right")
    flat = np.bincount(
        step_index * stats.ratio_counts.shape[1] + bins, minlength=stats.ratio_counts.size
    )
    stats.ratio_counts += flat.reshape(stats.ratio_counts.shape)
    stats.ratio_max = np.maximum(stats.ratio_max, np.where(ok, ratio, 0.0).max(axis=0))
    ever = active.any(axis=1)
    last = steps - 1 - np.argmax(active[:, ::-1], axis=1)
    stats.finish += np.bincount(last[ever] + 1, minlength=steps + 1)
    stats.never += int((~ever).sum())


def trace_stats(files: Iterable[Path]) -> TraceStats | None:
    """Statistics over every trajectory in `files`; None when there are none."""
    stats = None
    for path in files:
        with np.load(path) as data:
            if "trace_active" not in data.files:  # a sample file without traces
                continue
            active = np.asarray(data["trace_active"], dtype=bool)
            ratio = np.asarray(data["trace_ratio"], dtype=float)
            if stats is None:
                stats = _empty(np.asarray(data["trace_t"]))
        if active.ndim == 2 and active.shape[1] > 0:
            accumulate(stats, active, ratio)
    return stats
