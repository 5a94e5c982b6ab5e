"""Pareto fronts: which points no other point beats on every axis at once."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def pareto_mask(points: np.ndarray, maximize: Sequence[bool]) -> np.ndarray:
    """True for the non-dominated rows of `points` (n, d).

    Row a dominates row b when a is at least as good on every axis and strictly
    better on one; equal rows therefore do not dominate each other and are both
    on the front. Rows with a NaN are never on the front and dominate nothing.
    """
    pts = np.asarray(points, dtype=float)
    if pts.ndim != 2 or pts.shape[1] != len(maximize):
        raise ValueError(f"points must be (n, {len(maximize)}), got {pts.shape}")
    signs = np.where(np.asarray(maximize, dtype=bool), 1.0, -1.0)
    scores = pts * signs
    valid = ~np.isnan(scores).any(axis=1)
    mask = valid.copy()
    for i in np.flatnonzero(valid):
        others = scores[valid]
        geq = (others >= scores[i]).all(axis=1)
        gt = (others > scores[i]).any(axis=1)
        mask[i] = not (geq & gt).any()
    return mask


def dominates(a: Sequence[float], b: Sequence[float], maximize: Sequence[bool]) -> bool:
    """Point a dominates point b by the rule of `pareto_mask`: at least as good on every
    axis and strictly better on one. A point with a NaN dominates nothing and is
    dominated by nothing."""
    if len(a) != len(maximize) or len(b) != len(maximize):
        raise ValueError(f"points must have {len(maximize)} coordinates")
    signs = np.where(np.asarray(maximize, dtype=bool), 1.0, -1.0)
    sa, sb = np.asarray(a, dtype=float) * signs, np.asarray(b, dtype=float) * signs
    if np.isnan(sa).any() or np.isnan(sb).any():
        return False
    return bool((sa >= sb).all() and (sa > sb).any())
