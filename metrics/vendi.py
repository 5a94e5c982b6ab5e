"""Vendi score (Friedman & Dieng 2023): exp of the entropy of the eigenvalues of K / n."""

from __future__ import annotations

import numpy as np

from metrics.distances import as_rows
from metrics.spec import MetricSpec
from metrics.values import Undefined

SPEC = MetricSpec(
    "vendi",
    "Vendi score",
    "effective no. of samples",
    True,
    "exp of the entropy of the eigenvalues of K/n, K the linear kernel of L2-normalised features",
)


def vendi_from_kernel(kernel: np.ndarray) -> float:
    """VS of a PSD similarity matrix with unit diagonal."""
    k = np.asarray(kernel, dtype=np.float64)
    return _exp_entropy(np.linalg.eigvalsh(k / len(k)))


def vendi_score(features: np.ndarray) -> float | Undefined:
    """VS with the linear kernel on L2-normalised rows; the d x d form when n > d."""
    x = as_rows(features)
    if len(x) == 0:
        return Undefined("no images")
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    x = x / np.where(norms > 0, norms, 1.0)
    n, d = x.shape
    # X X^T / n and X^T X / n share their non-zero eigenvalues.
    gram = x.T @ x if n > d else x @ x.T
    return _exp_entropy(np.linalg.eigvalsh(gram / n))


def _exp_entropy(eigenvalues: np.ndarray) -> float:
    p = eigenvalues[eigenvalues > 0]
    return float(np.exp(-(p * np.log(p)).sum()))
