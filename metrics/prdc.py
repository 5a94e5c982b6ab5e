"""Precision, recall, density and coverage (Kynkaanniemi 2019; Naeem 2020).

Convention of the `prdc` package: Euclidean distances, k nearest neighbours with
the point itself excluded, strict `<` comparisons.
"""

from __future__ import annotations

import numpy as np
import torch
from torchmetrics import Metric
from torchmetrics.utilities.data import dim_zero_cat

from metrics.distances import as_rows, kth_neighbour_radii, pairwise_distances
from metrics.values import Undefined

PRDC_KEYS = ("precision", "recall", "density", "coverage")
DEFAULT_K = 5


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


class PRDC(Metric):
    """torchmetrics wrapper: `update(features, real=True|False)`, then `compute()`."""

    is_differentiable = False
    higher_is_better = True
    full_state_update = False

    def __init__(self, k: int = DEFAULT_K, **kwargs) -> None:
        super().__init__(**kwargs)
        self.k = k
        self.add_state("real_features", default=[], dist_reduce_fx="cat")
        self.add_state("fake_features", default=[], dist_reduce_fx="cat")

    def update(self, features: torch.Tensor, real: bool) -> None:
        feats = torch.as_tensor(features, dtype=torch.float64).flatten(1)
        (self.real_features if real else self.fake_features).append(feats)

    def compute(self) -> dict[str, float] | Undefined:
        return compute_prdc(_cat(self.real_features), _cat(self.fake_features), self.k)


def _cat(state: list[torch.Tensor] | torch.Tensor) -> np.ndarray:
    if isinstance(state, list) and not state:
        return np.zeros((0, 0))
    return dim_zero_cat(state).cpu().numpy()
