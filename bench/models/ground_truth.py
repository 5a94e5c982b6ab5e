"""True distributions of the ground-truth models (toy2d, digits-gmm) for exact metrics.

`Mixture` is one normalised Gaussian mixture in D dims (one class's true
distribution): exact log density, component responsibilities, the assignment of a
sample to a component (for mode histograms), exact i.i.d. sampling, and the closed-form
posterior mean under x_t = alpha x0 + sigma eps. It wraps digits_gmm's
`GaussianMixture` (covariances as eigendecompositions) and reuses its `posterior_mean`.

`GroundTruth` holds every class of a class-conditional model (digits_gmm's
`ClassMixtures`: all components in one mixture, `owner[k]` the class of component k,
and the class frequencies that define the null/marginal distribution). Its
`of_class(label)` is that class's `Mixture`; `of_class(None)` is the marginal.

Assigning a sample to a component (reference/metrics.md, "Exact metrics"): the
component of largest responsibility, counted only if the sample lies inside that
component's 99% ellipse, (x - mu)^T S^-1 (x - mu) <= chi2_D(0.99); otherwise the
sample is an outlier (-1) and hits nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
from scipy.special import logsumexp
from scipy.stats import chi2

from bench.models.digits_gmm import (
    ClassMixtures,
    GaussianMixture,
    class_weights_from_condition,
    posterior_mean,
)

OUTLIER = -1
INSIDE_MASS = 0.99


@dataclass(frozen=True)
class Mixture:
    """A normalised Gaussian mixture: sum_k pi_k N(x; mu_k, S_k), K components, D dims."""

    gmm: GaussianMixture
    inside_mass: float = INSIDE_MASS
    _cache: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        lw = np.asarray(self.gmm.log_weights, dtype=np.float64)
        if lw.ndim != 1 or len(lw) == 0:
            raise ValueError("a mixture needs at least one component")
        if not np.isclose(logsumexp(lw), 0.0, atol=1e-9):
            normalised = GaussianMixture(
                lw - logsumexp(lw), self.gmm.means, self.gmm.eigvals, self.gmm.eigvecs
            )
            object.__setattr__(self, "gmm", normalised)
        if np.any(self.gmm.eigvals <= 0):
            raise ValueError("every component covariance must be positive definite")

    @classmethod
    def from_parameters(cls, weights, means, covariances, **kw) -> Mixture:
        """Weights are normalised to sum to 1."""
        return cls(GaussianMixture.from_covariances(weights, means, covariances), **kw)

    # --- parameters -------------------------------------------------------------
    @property
    def num_components(self) -> int:
        return self.gmm.num_components

    @property
    def dim(self) -> int:
        return self.gmm.means.shape[1]

    @property
    def weights(self) -> np.ndarray:
        """Component masses pi_k (sum to 1)."""
        return np.exp(self.gmm.log_weights)

    @property
    def means(self) -> np.ndarray:
        return self.gmm.means

    @property
    def covariances(self) -> np.ndarray:
        u, lam = self.gmm.eigvecs, self.gmm.eigvals
        return np.einsum("kde,ke,kfe->kdf", u, lam, u)

    @property
    def chi2_threshold(self) -> float:
        """Squared Mahalanobis radius of each component's `inside_mass` ellipse."""
        return float(chi2.ppf(self.inside_mass, self.dim))

    def weights_entropy(self) -> float:
        """Entropy of pi in nats."""
        p = self.weights
        p = p[p > 0]
        return float(-(p * np.log(p)).sum())

    # --- densities --------------------------------------------------------------
    def _points(self, x) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64).reshape(len(x), -1)
        if x.shape[1] != self.dim:
            raise ValueError(f"points have {x.shape[1]} dims, the mixture {self.dim}")
        return x

    def mahalanobis_sq(self, x) -> np.ndarray:
        """(N, K) squared Mahalanobis distance of each point to each component."""
        v = self._whitened(self._points(x))
        return np.sum(v**2, axis=-1)

    def _whitened(self, x: np.ndarray) -> np.ndarray:
        resid = x[:, None, :] - self.gmm.means[None]
        return np.einsum("nkd,kde->nke", resid, self.gmm.eigvecs) / np.sqrt(self.gmm.eigvals)

    def component_log_likelihoods(self, x) -> np.ndarray:
        """(N, K): log N(x; mu_k, S_k)."""
        x = self._points(x)
        d2 = np.sum(self._whitened(x) ** 2, axis=-1)
        log_det = np.sum(np.log(self.gmm.eigvals), axis=-1)
        return -0.5 * (d2 + log_det[None] + self.dim * np.log(2.0 * np.pi))

    def _joint(self, x) -> np.ndarray:
        return self.gmm.log_weights[None] + self.component_log_likelihoods(x)

    def log_prob(self, x) -> np.ndarray:
        """(N,) exact log density, float64."""
        return logsumexp(self._joint(x), axis=1)

    def component_posteriors(self, x) -> np.ndarray:
        """(N, K) responsibilities p(k | x)."""
        joint = self._joint(x)
        return np.exp(joint - logsumexp(joint, axis=1, keepdims=True))

    def assign(self, x) -> np.ndarray:
        """(N,) the most likely component of each point, or OUTLIER (-1) where the point
        lies outside that component's `inside_mass` ellipse."""
        x = self._points(x)
        best = np.argmax(self._joint(x), axis=1)
        d2 = self.mahalanobis_sq(x)[np.arange(len(x)), best]
        return np.where(d2 <= self.chi2_threshold, best, OUTLIER)

    def hit_probabilities(self, n_mc: int | None = None, seed: int = 0) -> np.ndarray:
        """q_k, the probability that one i.i.d. sample is assigned to component k.

        With `n_mc=None` the approximation of reference/metrics.md, pi_k times the
        ellipse mass (overlap ignored); with `n_mc` a Monte-Carlo estimate from that
        many exact samples, which includes overlap (cached per (n_mc, seed))."""
        if n_mc is None:
            return self.weights * self.inside_mass
        key = ("hits", n_mc, seed)
        if key not in self._cache:
            hits = self.assign(self.sample(n_mc, np.random.default_rng(seed)))
            counts = np.bincount(hits[hits >= 0], minlength=self.num_components)
            self._cache[key] = counts / n_mc
        return self._cache[key]

    # --- sampling and denoising ---------------------------------------------------
    def sample(self, n: int, rng: np.random.Generator, return_components: bool = False):
        """n exact i.i.d. samples (N, D) float64 (and their components if asked)."""
        comp = rng.choice(self.num_components, size=n, p=self.weights)
        z = rng.standard_normal((n, self.dim))
        scaled = np.sqrt(self.gmm.eigvals[comp]) * z
        x = self.gmm.means[comp] + np.einsum("nde,ne->nd", self.gmm.eigvecs[comp], scaled)
        return (x, comp) if return_components else x

    def posterior_mean(self, x_t, alpha, sigma) -> np.ndarray:
        """E[x0 | x_t] under x_t = alpha x0 + sigma eps (digits_gmm.posterior_mean)."""
        return posterior_mean(self.gmm, self._points(x_t), alpha, sigma)


@dataclass(frozen=True)
class GroundTruth:
    """The true class-conditional distribution of a ground-truth model."""

    name: str
    classes: ClassMixtures
    class_names: tuple[str, ...] = ()

    @property
    def num_classes(self) -> int:
        return len(self.classes.class_freq)

    @property
    def dim(self) -> int:
        return self.classes.mixture.means.shape[1]

    @cached_property
    def _per_class(self) -> tuple[Mixture, ...]:
        mix, owner = self.classes.mixture, self.classes.owner
        out = []
        for c in range(self.num_classes):
            sel = owner == c
            out.append(
                Mixture(
                    GaussianMixture(
                        mix.log_weights[sel], mix.means[sel], mix.eigvals[sel], mix.eigvecs[sel]
                    )
                )
            )
        return tuple(out)

    @cached_property
    def _marginal(self) -> Mixture:
        mix = self.classes.mixture
        log_w = self.classes.log_weights(self.classes.class_freq[None])[0]
        return Mixture(GaussianMixture(log_w, mix.means, mix.eigvals, mix.eigvecs))

    def of_class(self, label: int | None) -> Mixture:
        """Class `label`'s mixture; None is the marginal (classes by their frequency)."""
        if label is None:
            return self._marginal
        if not 0 <= int(label) < self.num_classes:
            raise ValueError(f"label {label} out of range 0..{self.num_classes - 1}")
        return self._per_class[int(label)]

    # Per-label shorthands for the Mixture methods.
    def log_prob(self, x, label: int | None) -> np.ndarray:
        return self.of_class(label).log_prob(x)

    def component_posteriors(self, x, label: int | None) -> np.ndarray:
        return self.of_class(label).component_posteriors(x)

    def assign(self, x, label: int | None) -> np.ndarray:
        return self.of_class(label).assign(x)

    def weights(self, label: int | None) -> np.ndarray:
        return self.of_class(label).weights

    def sample(self, n: int, rng: np.random.Generator, label: int | None) -> np.ndarray:
        return self.of_class(label).sample(n, rng)

    # --- the conditioning form of the exact adapters --------------------------------
    def class_weights(self, cond: np.ndarray) -> np.ndarray:
        """(N, C + 1) condition rows -> (N, C) class weights summing to 1 (see
        `digits_gmm.class_weights_from_condition`)."""
        return class_weights_from_condition(cond, self.classes.class_freq)

    def posterior_mean(self, x_t, alpha, sigma, cond: np.ndarray) -> np.ndarray:
        """E[x0 | x_t, cond], cond the (N, C + 1) soft class-weight rows."""
        x_t = np.asarray(x_t, dtype=np.float64).reshape(len(x_t), -1)
        log_w = self.classes.log_weights(self.class_weights(cond))
        return posterior_mean(self.classes.mixture, x_t, alpha, sigma, log_w)


def digits_gmm_ground_truth() -> GroundTruth:
    """The digits-gmm model's true distribution (points: flattened 8x8 latents)."""
    from bench.models.digits_gmm import fit_class_mixtures

    classes = fit_class_mixtures()
    return GroundTruth(
        "digits-gmm", classes, tuple(f"digit {c}" for c in range(len(classes.class_freq)))
    )
