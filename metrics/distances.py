"""Exact Euclidean distances between feature sets (float64)."""

from __future__ import annotations

import numpy as np

# Below this relative squared distance the Gram formula is dominated by rounding,
# so such pairs are recomputed from the differences (identical points get exactly 0).
_NEAR_TIE = 1e-9


def as_rows(x: np.ndarray) -> np.ndarray:
    """(N, ...) -> float64 (N, D), one flattened item per row (also for N = 0)."""
    x = np.asarray(x, dtype=np.float64)
    return x.reshape(len(x), int(np.prod(x.shape[1:])))


def pairwise_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(N, M) Euclidean distances, float64; exact for (near-)coincident pairs."""
    x = np.asarray(a, dtype=np.float64)
    y = np.asarray(b, dtype=np.float64)
    xx = (x * x).sum(1)[:, None]
    yy = (y * y).sum(1)[None, :]
    d2 = xx + yy - 2.0 * (x @ y.T)
    np.maximum(d2, 0.0, out=d2)
    rows, cols = np.nonzero(d2 <= _NEAR_TIE * (xx + yy))
    if len(rows):
        d2[rows, cols] = ((x[rows] - y[cols]) ** 2).sum(1)
    return np.sqrt(d2, out=d2)


def kth_neighbour_radii(x: np.ndarray, k: int) -> np.ndarray:
    """Distance from each point to its k-th nearest neighbour in `x`, itself excluded."""
    d = pairwise_distances(x, x)
    np.fill_diagonal(d, 0.0)
    # Index 0 of each sorted row is the point itself (distance 0).
    return np.partition(d, k, axis=1)[:, k]
