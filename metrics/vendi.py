"""Vendi score (Friedman & Dieng 2023): exp of the entropy of the eigenvalues of K / n."""

from __future__ import annotations

import numpy as np
import torch
from torchmetrics import Metric
from torchmetrics.utilities.data import dim_zero_cat

from metrics.distances import as_rows
from metrics.values import Undefined


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


class Vendi(Metric):
    """torchmetrics wrapper over the features of one image set."""

    is_differentiable = False
    higher_is_better = True
    full_state_update = False

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.add_state("features", default=[], dist_reduce_fx="cat")

    def update(self, features: torch.Tensor) -> None:
        self.features.append(torch.as_tensor(features, dtype=torch.float64).flatten(1))

    def compute(self) -> float | Undefined:
        if isinstance(self.features, list) and not self.features:
            return Undefined("no images")
        return vendi_score(dim_zero_cat(self.features).cpu().numpy())
