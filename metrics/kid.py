"""Kernel Inception Distance (Binkowski et al. 2018), computed by torch-fidelity."""

from __future__ import annotations

import warnings

import numpy as np
import torch

from metrics.spec import SpacedMetric
from metrics.values import Undefined

DEFINITION = (
    "unbiased MMD^2 of generated and reference features with kernel (x.y/d + 1)^3, "
    "mean over random subsets (torch-fidelity)"
)
# "kid" in the Inception space, "kid_<extractor>" in another
KID = SpacedMetric("kid", "KID", "squared MMD", False, DEFINITION)
KID_PREFIX = KID.prefix
kid_key, kid_spec = KID.key, KID.spec


def as_feature_tensor(x: np.ndarray) -> torch.Tensor:
    """(N, ...) -> (N, D) float tensor sharing memory with `x` where it can (memmaps
    included: rows are then read from disk only when indexed)."""
    a = np.asarray(x)
    if a.dtype not in (np.float32, np.float64):
        a = a.astype(np.float64)
    a = np.ascontiguousarray(a.reshape(len(a), -1))  # a no-op for a C-ordered memmap
    with warnings.catch_warnings():
        # A read-only memmap is fine: torch-fidelity only reads it.
        warnings.filterwarnings("ignore", message=".*not writable.*")
        return torch.from_numpy(a)


def kernel_inception_distance(
    gen: np.ndarray,
    ref: np.ndarray,
    subsets: int = 100,
    subset_size: int = 1000,
    degree: int = 3,
    coef0: float = 1.0,
    seed: int = 2020,
) -> tuple[float, float] | Undefined:
    """(mean, std) of the unbiased MMD^2 over `subsets` random subsets of each set,
    of min(subset_size, len(gen), len(ref)) samples; gamma = 1 / feature dimension."""
    from torch_fidelity.metric_kid import (
        KEY_METRIC_KID_MEAN,
        KEY_METRIC_KID_STD,
        kid_features_to_metric,
    )

    for name, x in (("generated", gen), ("reference", ref)):
        if len(x) < 2:
            return Undefined(f"{len(x)} {name} samples: KID needs at least 2")
    g, r = as_feature_tensor(gen), as_feature_tensor(ref)
    if g.shape[1] != r.shape[1]:
        raise ValueError(f"feature dimensions differ: {g.shape[1]} and {r.shape[1]}")
    out = kid_features_to_metric(
        g,
        r,
        kid_subsets=subsets,
        kid_subset_size=min(subset_size, len(g), len(r)),
        kid_kernel="poly",
        kid_kernel_poly_degree=degree,
        kid_kernel_poly_gamma=1.0 / g.shape[1],
        kid_kernel_poly_coef0=coef0,
        rng_seed=seed,
        verbose=False,
    )
    return float(out[KEY_METRIC_KID_MEAN]), float(out[KEY_METRIC_KID_STD])
