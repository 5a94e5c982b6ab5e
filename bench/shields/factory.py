"""`make_shield_set`: one entry point that picks a search backend by name or by size."""

from __future__ import annotations

import numpy as np
import torch

from bench.errors import BenchError
from bench.shields.base import ShieldSet
from bench.shields.exact import ExactShieldSet
from bench.shields.projected import DEFAULT_RANK, ProjectedShieldSet

BACKENDS = ("auto", "exact", "projected", "faiss-ivf")
DEFAULT_NPROBE = 2  # the paper's setting
# Below this many shield values (N * d) one exact pass is cheaper than building a filter.
AUTO_EXACT_MAX_VALUES = 2**26


def choose_backend(count: int, dim: int) -> str:
    """`auto`: exact for small sets; above that the projected filter, which gives the
    same (exact) answers for a fraction of the memory traffic (see `bench perf`)."""
    return "exact" if count * dim <= AUTO_EXACT_MAX_VALUES else "projected"


def make_shield_set(
    vectors: torch.Tensor | ExactShieldSet,
    backend: str = "auto",
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
    nprobe: int = DEFAULT_NPROBE,
    nlist: int | None = None,
    rank: int = DEFAULT_RANK,
    ivf_index=None,
    ivf_assign: np.ndarray | None = None,
    resident: bool | None = None,
) -> ShieldSet:
    """A ShieldSet over `vectors` (N, ...) flattened to (N, d).

    backend: `exact` (chunked matmul), `projected` (exact, with a low-rank lower-bound
    pre-filter), `faiss-ivf` (approximate IVFFlat, `nprobe` of `nlist` cells; on the
    GPU when `device` is CUDA and faiss-gpu is installed) or `auto`. A pre-trained
    faiss index and its list assignments (from a stored index) skip the training.
    `resident` False keeps the vectors in host memory and streams them to `device`
    (None: when they fit, see `exact.fits_on`).
    """
    if backend not in BACKENDS:
        raise BenchError(f"unknown shield backend {backend!r}: use one of {', '.join(BACKENDS)}")
    store = vectors if isinstance(vectors, ExactShieldSet) else None
    if store is None:
        store = ExactShieldSet(vectors, dtype=dtype, device=device, resident=resident)
    if backend == "auto":
        backend = choose_backend(len(store), store.dim)
    if backend == "exact":
        return store
    if backend == "projected":
        return ProjectedShieldSet(store, rank=rank, device=device)
    from bench.shields.ivf import FaissIVFShieldSet, gpu_count

    gpu = torch.device(device).type == "cuda" and gpu_count() > 0
    return FaissIVFShieldSet(store, nlist, nprobe, index=ivf_index, assign=ivf_assign, gpu=gpu)
