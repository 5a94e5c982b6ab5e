"""Frechet distance between Gaussians fitted to two feature sets (FID, FD_DINOv2, ...)."""

from __future__ import annotations

import numpy as np

from metrics.distances import as_rows
from metrics.spec import MetricSpec, pretty_space
from metrics.values import Undefined

DEFINITION = "||mu_g - mu_r||^2 + tr(S_g + S_r - 2 (S_g S_r)^(1/2)) of Gaussians fitted to features"


def fd_key(extractor: str) -> str:
    """The metrics.json key of the Frechet distance in an extractor's space."""
    return "fid" if extractor == "inception" else f"fd_{extractor}"


def fd_spec(key: str) -> MetricSpec:
    """`fid` is FID (Inception); `fd_<extractor>` a Frechet distance in that space."""
    if key == "fid":
        return MetricSpec("fid", "FID", "Fréchet distance, Inception", False, DEFINITION)
    extractor = key.removeprefix("fd_")
    pretty = pretty_space(extractor)
    return MetricSpec(
        key, f"FD {pretty}", f"Fréchet distance, {pretty} features", False, DEFINITION
    )


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


class GaussianAccumulator:
    """Running float64 sums of x and x x^T, as torchmetrics' FID keeps them: a set's
    Gaussian without holding its features. Sums are taken about the first batch's
    mean, which keeps the covariance exact to rounding for features far from 0."""

    def __init__(self, dim: int | None = None) -> None:
        self.count = 0
        self.dim = dim
        self._shift: np.ndarray | None = None
        self._sum: np.ndarray | None = None
        self._outer: np.ndarray | None = None

    def update(self, features: np.ndarray) -> None:
        x = as_rows(features)
        if len(x) == 0:
            return
        if self._shift is None:
            self.dim = x.shape[1]
            self._shift = x.mean(axis=0)
            self._sum = np.zeros(self.dim)
            self._outer = np.zeros((self.dim, self.dim))
        centred = x - self._shift
        self.count += len(x)
        self._sum += centred.sum(axis=0)
        self._outer += centred.T @ centred

    def state(self) -> dict[str, np.ndarray]:
        """The sums as arrays (for the feature cache); `from_state` rebuilds them."""
        if self._shift is None:
            return {"count": np.array(0)}
        return {"count": np.array(self.count), "shift": self._shift, "sum": self._sum,
                "outer": self._outer}  # fmt: skip

    @classmethod
    def from_state(cls, state: dict[str, np.ndarray]) -> GaussianAccumulator:
        acc = cls()
        if int(state["count"]):
            acc.count, acc.dim = int(state["count"]), int(state["shift"].shape[0])
            acc._shift, acc._sum, acc._outer = state["shift"], state["sum"], state["outer"]
        return acc

    def mean(self) -> np.ndarray:
        return self._shift + self._sum / self.count

    def covariance(self) -> np.ndarray:
        offset = self._sum / self.count
        return (self._outer - self.count * np.outer(offset, offset)) / (self.count - 1)

    def frechet(self, reference: GaussianAccumulator) -> float | Undefined:
        """FD of this (generated) set against `reference`, with FD's sample-size guard."""
        dim = self.dim if self.dim is not None else reference.dim
        for name, acc in (("generated", self), ("reference", reference)):
            if acc.count <= (dim or 0):
                return Undefined(
                    f"{acc.count} {name} samples for {dim}-d features: "
                    "FD needs more samples than dimensions"
                )
        return frechet_distance(
            self.mean(), self.covariance(), reference.mean(), reference.covariance()
        )
