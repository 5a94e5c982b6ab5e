"""FD-infinity (Chong & Forsyth 2020): the Frechet distance extrapolated to infinitely
many generated samples, by the protocol of dgm-eval's `compute_FD_infinity`.

FD_N is biased upwards by a term ~ 1/N, so FD_N is evaluated on random subsets of
several sizes N and a line FD_N = a + b / N fitted by least squares; FD-infinity is a.
"""

from __future__ import annotations

import numpy as np

from metrics.frechet import GaussianAccumulator, frechet_distance
from metrics.spec import SpacedMetric
from metrics.values import Undefined

DEFINITION = (
    "intercept a of a least-squares line FD_N = a + b/N through the Frechet distances of "
    "random generated subsets of sizes N (15 by default) against the full reference"
)
# "fd_inf" in the Inception space, "fd_inf_<extractor>" in another
FD_INF = SpacedMetric("fd_inf", "FD∞", "Fréchet distance", False, DEFINITION, "FID∞")
FD_INF_PREFIX = FD_INF.prefix
fd_inf_key, fd_inf_spec = FD_INF.key, FD_INF.spec


def subset_sizes(n: int, points: int = 15) -> np.ndarray:
    """dgm-eval's N: `points` sizes evenly spaced from min(5000, max(n // 10, 2)) to n,
    truncated to integers."""
    return np.linspace(min(5000, max(n // 10, 2)), n, points).astype(np.int64)


def subset_indices(n: int, sizes: np.ndarray, seed: int = 0) -> list[np.ndarray]:
    """For each size, that many distinct rows of `n`, sorted (one seeded generator)."""
    rng = np.random.default_rng(seed)
    return [np.sort(rng.choice(n, int(size), replace=False)) for size in sizes]


def subset_gaussian(x: np.ndarray, rows: np.ndarray, chunk: int = 4096) -> GaussianAccumulator:
    """The Gaussian of `x[rows]`, reading `chunk` rows at a time (a memmap is never read whole)."""
    acc = GaussianAccumulator(x.shape[1])
    for start in range(0, len(rows), chunk):
        acc.update(x[rows[start : start + chunk]])
    return acc


def fd_infinity(
    gen: np.ndarray,
    reference: GaussianAccumulator,
    points: int = 15,
    seed: int = 0,
    chunk: int = 4096,
) -> float | Undefined:
    """FD-infinity of the generated features against the reference's Gaussian."""
    if points < 2:
        raise ValueError(f"a line needs at least 2 points, got {points}")
    x = np.asarray(gen)
    x = x.reshape(len(x), -1)
    n, dim = x.shape
    if reference.count > 0 and reference.dim != dim:
        raise ValueError(f"feature dimensions differ: {dim} and {reference.dim}")
    if reference.count <= dim:
        return Undefined(
            f"{reference.count} reference samples for {dim}-d features: "
            "FD needs more samples than dimensions"
        )
    sizes = subset_sizes(n, points)
    if sizes[0] <= dim:
        return Undefined(
            f"smallest FD-infinity subset has {sizes[0]} of {n} generated samples for "
            f"{dim}-d features: FD needs more samples than dimensions"
        )
    if sizes[0] == sizes[-1]:
        return Undefined(f"{n} generated samples give one subset size: no line to fit")
    mu_r, sigma_r = reference.mean(), reference.covariance()
    fds = []
    for rows in subset_indices(n, sizes, seed):
        acc = subset_gaussian(x, rows, chunk)
        fds.append(frechet_distance(acc.mean(), acc.covariance(), mu_r, sigma_r))
    design = np.column_stack([np.ones(len(sizes)), 1.0 / sizes])
    (intercept, _slope), *_ = np.linalg.lstsq(design, np.array(fds), rcond=None)
    return float(intercept)
