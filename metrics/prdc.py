"""Precision, recall, density and coverage (Kynkaanniemi 2019; Naeem 2020).

Convention of the `prdc` package: Euclidean distances, k nearest neighbours with
the point itself excluded, strict `<` comparisons.
"""

from __future__ import annotations

import numpy as np

from metrics.distances import as_rows, kth_neighbour_radii, pairwise_distances
from metrics.spec import MetricSpec
from metrics.values import Undefined

PRDC_KEYS = ("precision", "recall", "density", "coverage")
DEFAULT_K = 5
SPECS = (
    MetricSpec(
        "recall",
        "Recall",
        "share of reference",
        True,
        "share of reference features inside some generated feature's k-NN ball",
    ),
    MetricSpec(
        "coverage",
        "Coverage",
        "share of reference",
        True,
        "share of reference features whose k-NN ball holds a generated feature",
    ),
    MetricSpec(
        "precision",
        "Precision",
        "share of generated",
        True,
        "share of generated features inside some reference feature's k-NN ball",
    ),
    MetricSpec(
        "density",
        "Density",
        "mean neighbourhood count",
        True,
        "mean number of reference k-NN balls holding a generated feature, divided by k",
    ),
)


def compute_prdc(
    real: np.ndarray, fake: np.ndarray, k: int = DEFAULT_K
) -> dict[str, float] | Undefined:
    """The four metrics of `fake` against `real`; Undefined with fewer than k+1 points in a set."""
    real, fake = as_rows(real), as_rows(fake)
    for name, x in (("reference", real), ("generated", fake)):
        if len(x) < k + 1:
            return Undefined(f"{len(x)} {name} images, k={k} needs at least {k + 1}")
    if real.shape[1] != fake.shape[1]:
        raise ValueError(f"feature dims differ: real {real.shape[1]}, fake {fake.shape[1]}")
    real_radii = kth_neighbour_radii(real, k)
    fake_radii = kth_neighbour_radii(fake, k)
    d = pairwise_distances(real, fake)  # (real, fake)
    in_real_ball = d < real_radii[:, None]
    return {
        "precision": float(in_real_ball.any(axis=0).mean()),
        "recall": float((d < fake_radii[None, :]).any(axis=1).mean()),
        "density": float(in_real_ball.sum(axis=0).mean() / k),
        "coverage": float((d.min(axis=1) < real_radii).mean()),
    }
