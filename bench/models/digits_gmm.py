"""`digits-gmm`: the exact denoiser of a Gaussian mixture fitted to the digits.

Each class is a Gaussian mixture fitted to its training images (flattened 8x8 in
[-1, 1]). Under x_t = alpha x0 + sigma eps the posterior mean E[x0 | x_t] is
closed-form, so this model is a denoiser whose data distribution is known exactly.

The condition is an (N, 11) tensor of class weights: a one-hot row selects a
class, column 10 is the null condition (all classes, weighted by their training
frequency), and a soft row mixes classes with its (renormalised) weights, so
noise added to the condition (CADS) changes the target distribution smoothly.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch
from scipy.special import logsumexp

from bench.data.digits import IMAGE_SIZE, NUM_CLASSES, load_split
from bench.errors import BenchError
from bench.models.base import Prompt
from bench.models.digits import NULL_CLASS, DigitsClasses, make_digits_scheduler

COMPONENTS = 3
REG_COVAR = 1e-2
FIT_SEED = 0


@dataclass(frozen=True)
class GaussianMixture:
    """K Gaussians in D dims, covariances stored as eigendecompositions S = U diag(l) U^T."""

    log_weights: np.ndarray  # (K,)
    means: np.ndarray  # (K, D)
    eigvals: np.ndarray  # (K, D)
    eigvecs: np.ndarray  # (K, D, D), columns are eigenvectors

    @classmethod
    def from_covariances(cls, weights, means, covariances) -> GaussianMixture:
        """Weights are kept as given: only their ratios matter to the posterior mean."""
        weights = np.asarray(weights, dtype=np.float64)
        covariances = np.asarray(covariances, dtype=np.float64)
        eigvals, eigvecs = np.linalg.eigh(covariances)
        return cls(
            log_weights=np.log(weights),
            means=np.asarray(means, dtype=np.float64),
            eigvals=np.clip(eigvals, 0.0, None),
            eigvecs=eigvecs,
        )

    @property
    def num_components(self) -> int:
        return self.means.shape[0]


def posterior_mean(
    mixture: GaussianMixture,
    x_t: np.ndarray,
    alpha: np.ndarray,
    sigma: np.ndarray,
    log_weights: np.ndarray | None = None,
) -> np.ndarray:
    """E[x0 | x_t] for x0 ~ mixture, x_t = alpha x0 + sigma eps.

    x_t is (N, D); alpha, sigma are scalars or (N,); log_weights (N, K) overrides
    the mixture's own component weights per sample (-inf switches a component off).
    """
    x_t = np.asarray(x_t, dtype=np.float64)
    alpha = np.broadcast_to(np.asarray(alpha, dtype=np.float64), x_t.shape[:1])[:, None, None]
    sigma = np.broadcast_to(np.asarray(sigma, dtype=np.float64), x_t.shape[:1])[:, None, None]
    if log_weights is None:
        log_weights = np.broadcast_to(mixture.log_weights, (x_t.shape[0], mixture.num_components))
    # Residual of each sample to each component's scaled mean, in that component's eigenbasis.
    resid = x_t[:, None, :] - alpha * mixture.means[None]  # (N, K, D)
    v = np.einsum("nkd,kde->nke", resid, mixture.eigvecs)
    var = alpha**2 * mixture.eigvals[None] + sigma**2  # (N, K, D)
    log_lik = -0.5 * np.sum(v**2 / var + np.log(2.0 * np.pi * var), axis=-1)
    log_post = log_weights + log_lik
    resp = np.exp(log_post - logsumexp(log_post, axis=1, keepdims=True))  # (N, K)
    shift = np.einsum("kde,nke->nkd", mixture.eigvecs, alpha * mixture.eigvals[None] / var * v)
    means = mixture.means[None] + shift
    return np.einsum("nk,nkd->nd", resp, means)


@dataclass(frozen=True)
class ClassMixtures:
    """All classes' components in one mixture; `owner[k]` is component k's class."""

    mixture: GaussianMixture
    owner: np.ndarray  # (K_total,) int
    class_freq: np.ndarray  # (NUM_CLASSES,)

    def log_weights(self, class_weights: np.ndarray) -> np.ndarray:
        """(N, NUM_CLASSES) class weights -> (N, K_total) component log-weights."""
        with np.errstate(divide="ignore"):
            return np.log(class_weights[:, self.owner]) + self.mixture.log_weights[None]


@lru_cache(maxsize=1)
def fit_class_mixtures(
    components: int = COMPONENTS, reg_covar: float = REG_COVAR, seed: int = FIT_SEED
) -> ClassMixtures:
    """Fit one mixture per class on the training split (cached per process)."""
    from sklearn.mixture import GaussianMixture as SkGaussianMixture

    split = load_split("train")
    weights, means, covs, owner = [], [], [], []
    for c in range(NUM_CLASSES):
        x = split.of_class(c).reshape(-1, IMAGE_SIZE * IMAGE_SIZE).astype(np.float64)
        gm = SkGaussianMixture(
            components, covariance_type="full", reg_covar=reg_covar, random_state=seed
        ).fit(x)
        weights.append(gm.weights_)  # within-class weights; class weights come per call
        means.append(gm.means_)
        covs.append(gm.covariances_)
        owner.append(np.full(components, c))
    mixture = GaussianMixture.from_covariances(
        np.concatenate(weights), np.concatenate(means), np.concatenate(covs)
    )
    freq = np.bincount(split.labels, minlength=NUM_CLASSES) / len(split.labels)
    return ClassMixtures(mixture, np.concatenate(owner), freq)


def class_weights_from_condition(cond: np.ndarray, class_freq: np.ndarray) -> np.ndarray:
    """(N, C + 1) condition -> (N, C) class weights summing to 1, C = len(class_freq).

    Columns 0..C-1 weigh the classes, column C is the null condition (all classes by
    `class_freq`). Negative entries (e.g. from noise added to the condition) count as
    zero; a row with no positive weight falls back to the null condition.
    """
    c = len(class_freq)
    cond = np.asarray(cond, dtype=np.float64)
    if cond.ndim != 2 or cond.shape[1] != c + 1:
        raise ValueError(f"condition rows must have {c + 1} columns, got shape {cond.shape}")
    cond = np.clip(cond, 0.0, None)
    weights = cond[:, :c] + cond[:, c : c + 1] * class_freq[None]
    total = weights.sum(axis=1, keepdims=True)
    weights = np.where(total > 0, weights, class_freq[None])
    return weights / weights.sum(axis=1, keepdims=True)


class DigitsGMMAdapter(DigitsClasses):
    name = "digits-gmm"
    prediction_type = "sample"

    def __init__(self, device: str = "cpu") -> None:
        self.device = torch.device(device)
        self.mixtures = fit_class_mixtures()
        self.alphas_cumprod = make_digits_scheduler().alphas_cumprod.double().numpy()

    def condition(self, prompts: list[Prompt]) -> torch.Tensor:
        return self._one_hot(self.labels(prompts))

    def null_condition(self, n: int) -> torch.Tensor:
        return self._one_hot(torch.full((n,), NULL_CLASS, device=self.device))

    def _one_hot(self, labels: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.one_hot(labels, NUM_CLASSES + 1).to(self.dtype)

    def predict(self, x_t: torch.Tensor, timestep, cond: torch.Tensor) -> torch.Tensor:
        n = x_t.shape[0]
        if cond.shape != (n, NUM_CLASSES + 1):
            expected = (n, NUM_CLASSES + 1)
            raise BenchError(f"digits-gmm condition must be {expected}, got {tuple(cond.shape)}")
        t = torch.as_tensor(timestep).detach().cpu().long().reshape(-1).numpy()
        abar = np.broadcast_to(self.alphas_cumprod[t], (n,))
        class_weights = class_weights_from_condition(
            cond.detach().cpu().double().numpy(), self.mixtures.class_freq
        )
        x0 = posterior_mean(
            self.mixtures.mixture,
            x_t.detach().cpu().double().reshape(n, -1).numpy(),
            np.sqrt(abar),
            np.sqrt(1.0 - abar),
            self.mixtures.log_weights(class_weights),
        )
        return torch.from_numpy(x0).reshape(x_t.shape).to(device=x_t.device, dtype=x_t.dtype)


def load_digits_gmm(device: str = "cpu", **_: object) -> DigitsGMMAdapter:
    """The `digits-gmm` factory (`model_path`/`dtype` do not apply)."""
    return DigitsGMMAdapter(device=device)
