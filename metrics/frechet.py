"""Frechet distance between Gaussians fitted to two feature sets (FID, FD_DINOv2, ...)."""

from __future__ import annotations

import numpy as np
import torch
from torchmetrics import Metric
from torchmetrics.utilities.data import dim_zero_cat

from metrics.distances import as_rows
from metrics.values import Undefined


def gaussian_stats(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and unbiased covariance (ddof=1), float64."""
    x = as_rows(features)
    return x.mean(axis=0), np.cov(x, rowvar=False, ddof=1).reshape(x.shape[1], x.shape[1])


def frechet_distance(
    mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray
) -> float:
    """||mu1 - mu2||^2 + tr(S1 + S2 - 2 (S1 S2)^{1/2})."""
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    s1, s2 = np.asarray(sigma1, np.float64), np.asarray(sigma2, np.float64)
    # tr (S1 S2)^{1/2} is the sum of the square roots of the eigenvalues of S1 S2,
    # which are real and >= 0 for PSD S1, S2 up to rounding.
    eig = np.linalg.eigvals(s1 @ s2)
    tr_sqrt = np.sqrt(np.clip(eig.real, 0.0, None)).sum()
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(s1) + np.trace(s2) - 2.0 * tr_sqrt)


def frechet_distance_features(a: np.ndarray, b: np.ndarray) -> float | Undefined:
    """FD of two feature sets; Undefined unless each has more samples than dimensions."""
    a, b = np.asarray(a), np.asarray(b)
    dim = int(np.prod(a.shape[1:]))
    for name, x in (("generated", a), ("reference", b)):
        if len(x) <= dim:
            return Undefined(
                f"{len(x)} {name} samples for {dim}-d features: "
                "FD needs more samples than dimensions"
            )
    return frechet_distance(*gaussian_stats(a), *gaussian_stats(b))


class FrechetDistance(Metric):
    """torchmetrics wrapper: `update(features, real=True|False)`, then `compute()`."""

    is_differentiable = False
    higher_is_better = False
    full_state_update = False

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.add_state("real_features", default=[], dist_reduce_fx="cat")
        self.add_state("fake_features", default=[], dist_reduce_fx="cat")

    def update(self, features: torch.Tensor, real: bool) -> None:
        feats = torch.as_tensor(features, dtype=torch.float64).flatten(1)
        (self.real_features if real else self.fake_features).append(feats)

    def compute(self) -> float | Undefined:
        if not len(self.real_features) or not len(self.fake_features):
            return Undefined("no features for one of the two sets")
        fake = dim_zero_cat(self.fake_features).cpu().numpy()
        return frechet_distance_features(fake, dim_zero_cat(self.real_features).cpu().numpy())
