"""Percentile bootstrap interval of a mean over prompts."""

from __future__ import annotations

import numpy as np

from metrics.values import Undefined

DEFAULT_RESAMPLES = 1000
DEFAULT_LEVEL = 0.95
DEFAULT_SEED = 0


def bootstrap_mean_ci(
    values: np.ndarray,
    resamples: int = DEFAULT_RESAMPLES,
    level: float = DEFAULT_LEVEL,
    seed: int = DEFAULT_SEED,
) -> tuple[float, float] | Undefined:
    """(lo, hi) of the mean of `values` resampled with replacement; deterministic for a seed."""
    v = np.asarray(values, dtype=np.float64)
    if len(v) < 2:
        return Undefined(f"{len(v)} prompt(s) with a value: a bootstrap interval needs 2")
    idx = np.random.default_rng(seed).integers(0, len(v), size=(resamples, len(v)))
    means = v[idx].mean(axis=1)
    alpha = (1.0 - level) / 2.0
    lo, hi = np.quantile(means, [alpha, 1.0 - alpha])
    return float(lo), float(hi)
