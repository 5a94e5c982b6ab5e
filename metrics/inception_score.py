"""Inception Score (Salimans et al. 2016), computed by torch-fidelity from class probabilities."""

from __future__ import annotations

import numpy as np
import torch

from metrics.spec import SpacedMetric
from metrics.values import Undefined

DEFINITION = (
    "exp of the mean KL(p(y|x) || p(y)) over generated images, mean over splits "
    "of the shuffled set (torch-fidelity)"
)
ROW_SUM_TOLERANCE = 1e-4
# "inception_score" of the Inception classifier, "inception_score_<extractor>" of another
IS = SpacedMetric(
    "inception_score", "IS", "effective no. of classes", True, DEFINITION, space_word="classifier"
)
IS_PREFIX = IS.prefix
is_key, is_spec = IS.key, IS.spec


def probability_problem(probs: np.ndarray) -> str | None:
    """Why `probs` is not an (N, classes) matrix of probability rows, or None."""
    if probs.ndim != 2:
        return f"class probabilities must be (N, classes), got shape {probs.shape}"
    if not np.isfinite(probs).all() or (probs < 0).any():
        return "class probabilities must be finite and non-negative"
    worst = float(np.abs(probs.sum(axis=1) - 1.0).max(initial=0.0))
    if worst > ROW_SUM_TOLERANCE:
        return f"class probability rows must sum to 1 (off by up to {worst:.3g})"
    return None


def inception_score(
    probs: np.ndarray, splits: int = 10, seed: int = 2020
) -> tuple[float, float] | Undefined:
    """(mean, std) over `splits` parts of the set shuffled with seed `seed`."""
    from torch_fidelity.metric_isc import (
        KEY_METRIC_ISC_MEAN,
        KEY_METRIC_ISC_STD,
        isc_features_to_metric,
    )

    if splits < 1:
        raise ValueError(f"splits must be at least 1, got {splits}")
    p = np.asarray(probs, dtype=np.float64)
    if len(p) < splits:
        return Undefined(f"{len(p)} samples for {splits} splits: IS needs one per split")
    problem = probability_problem(p)
    if problem is not None:
        return Undefined(problem)
    # torch-fidelity takes logits; softmax(log p) is p again (rows renormalised).
    # Zeros are clamped to the smallest normal float, so their terms are ~0, not NaN.
    logits = torch.from_numpy(np.log(np.maximum(p, np.finfo(np.float64).tiny)))
    out = isc_features_to_metric(logits, splits=splits, shuffle=True, rng_seed=seed)
    return float(out[KEY_METRIC_ISC_MEAN]), float(out[KEY_METRIC_ISC_STD])
