"""Approximate shield search with faiss IndexIVFFlat (backend `faiss-ivf`), as the paper.

nlist ~ sqrt(N) Voronoi cells, `nprobe` of them searched per query. faiss answers
in squared L2 and with float32 expanded-form distances, so every hit is rechecked
against its stored vector: returned distances are exact, plain L2. On a GPU build
of faiss (`faiss-gpu`, optional) the index can live on the GPU; GPU IVF indexes
have no range search, so a k-NN search is widened until it covers the radius.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from bench.errors import BenchError
from bench.shields.base import IndexedShieldSet, Neighbours, check_radius
from bench.shields.exact import ExactShieldSet, exact_queries, expansion_tolerance, recheck

TRAIN_POINTS_PER_CELL = 40
KMEANS_ITERATIONS = 10
GPU_MAX_K = 2048


def import_faiss():
    try:
        import faiss
    except ImportError as err:
        raise BenchError("the faiss-ivf backend needs faiss: pip install faiss-cpu") from err
    return faiss


def gpu_count() -> int:
    faiss = import_faiss()
    return faiss.get_num_gpus() if hasattr(faiss, "get_num_gpus") else 0


def default_nlist(n: int) -> int:
    """sqrt(N) cells as in the paper, but never fewer than ~40 training points per cell."""
    return max(1, min(round(math.sqrt(n)), n // TRAIN_POINTS_PER_CELL))


def _float32_rows(data: torch.Tensor, start: int, stop: int) -> np.ndarray:
    return np.ascontiguousarray(data[start:stop].float().cpu().numpy())


def train_ivf(data: torch.Tensor, nlist: int, seed: int = 0):
    """A trained, empty IndexIVFFlat from a random subsample of the rows."""
    faiss = import_faiss()
    n, d = data.shape
    index = faiss.IndexIVFFlat(faiss.IndexFlatL2(d), d, nlist, faiss.METRIC_L2)
    index.cp.niter = KMEANS_ITERATIONS
    index.cp.seed = seed
    index.cp.min_points_per_centroid = 1  # sizes are chosen by default_nlist; no warnings
    gen = torch.Generator().manual_seed(seed)
    count = min(n, TRAIN_POINTS_PER_CELL * nlist)
    pick = torch.randperm(n, generator=gen)[:count].sort().values
    index.train(np.ascontiguousarray(data[pick.to(data.device)].float().cpu().numpy()))
    return index


def assign_lists(index, data: torch.Tensor, chunk: int) -> np.ndarray:
    """The Voronoi cell of every row (stored with the index: reloading skips this)."""
    out = np.empty(data.shape[0], np.int64)
    for start in range(0, data.shape[0], chunk):
        x = _float32_rows(data, start, start + chunk)
        out[start : start + len(x)] = index.quantizer.search(x, 1)[1][:, 0]
    return out


def fill_lists(index, data: torch.Tensor, assign: np.ndarray, chunk: int) -> None:
    faiss = import_faiss()
    for start in range(0, data.shape[0], chunk):
        x = _float32_rows(data, start, start + chunk)
        lists = np.ascontiguousarray(assign[start : start + len(x)])
        index.add_core(len(x), faiss.swig_ptr(x), None, faiss.swig_ptr(lists))


class FaissIVFShieldSet(IndexedShieldSet):
    """IVFFlat over the rows of `store`, which also answers `vectors()` and rechecks."""

    backend = "faiss-ivf"

    def __init__(
        self,
        store: ExactShieldSet | torch.Tensor,
        nlist: int | None = None,
        nprobe: int = 1,
        index=None,
        assign: np.ndarray | None = None,
        gpu: bool = False,
        seed: int = 0,
    ) -> None:
        self.store = store if isinstance(store, ExactShieldSet) else ExactShieldSet(store)
        data = self.store.data
        if index is None:
            index = train_ivf(data, nlist or default_nlist(len(self.store)), seed)
        if index.ntotal == 0:
            assign = assign if assign is not None else assign_lists(index, data, self.store.chunk)
            fill_lists(index, data, assign, self.store.chunk)
        self.assign = assign
        self.cpu_index = index
        self.gpu = gpu
        self._gpu_resources, self.index = _to_gpu(index) if gpu else (None, index)
        self.nprobe = nprobe

    @property
    def nlist(self) -> int:
        return self.cpu_index.nlist

    @property
    def nprobe(self) -> int:
        return self._nprobe

    @nprobe.setter
    def nprobe(self, value: int) -> None:
        if value < 1:
            raise BenchError(f"nprobe must be at least 1, got {value}")
        self._nprobe = min(value, self.nlist)
        self.index.nprobe = self._nprobe

    def describe(self) -> str:
        where = "gpu" if self.gpu else ""
        return f"faiss-ivf{where}(nlist={self.nlist},nprobe={self.nprobe})"

    def within(self, queries: torch.Tensor, radius: float) -> Neighbours:
        check_radius(radius)
        q = np.ascontiguousarray(queries.reshape(queries.shape[0], -1).float().cpu().numpy())
        # faiss thresholds on float32 squared distances: widen, then recheck exactly.
        tol = expansion_tolerance(torch.float32, self.dim)
        norm_sq = float((q**2).sum(1).max()) + self.store.max_norm**2
        thresh = self.store.candidate_radius(radius) ** 2 + tol * norm_sq
        rows, cols = self._gpu_range(q, thresh) if self.gpu else self._cpu_range(q, thresh)
        if rows.size == 0:
            return Neighbours.empty(self.store.device)
        return self._recheck(queries, rows, cols, radius)

    def _cpu_range(self, q: np.ndarray, thresh: float) -> tuple[np.ndarray, np.ndarray]:
        lims, _, ids = self.index.range_search(q, thresh)
        rows = np.repeat(np.arange(len(q)), np.diff(lims.astype(np.int64)))
        return rows, ids

    def _gpu_range(self, q: np.ndarray, thresh: float) -> tuple[np.ndarray, np.ndarray]:
        k = min(32, len(self))
        while True:
            dist, ids = self.index.search(q, k)
            full = (dist[:, -1] < thresh) & (ids[:, -1] >= 0)
            if not full.any() or k >= min(GPU_MAX_K, len(self)):
                break
            k = min(4 * k, GPU_MAX_K, len(self))
        keep = (dist < thresh) & (ids >= 0)
        rows = np.nonzero(keep)[0]
        return rows, ids[keep]

    def _recheck(self, queries, rows: np.ndarray, cols: np.ndarray, radius: float) -> Neighbours:
        device = self.store.device
        q = exact_queries(queries, device)
        rows_t = torch.as_tensor(rows, dtype=torch.long, device=device)
        cols_t = torch.as_tensor(cols, dtype=torch.long, device=device)
        return recheck(q, self.store.vectors, rows_t, cols_t, radius)


def _to_gpu(index) -> tuple:
    """The GPU copy and the resources object that must outlive it."""
    faiss = import_faiss()
    if gpu_count() == 0:
        raise BenchError("faiss on GPU needs faiss-gpu and a CUDA device: use the CPU index")
    resources = faiss.StandardGpuResources()
    return resources, faiss.index_cpu_to_gpu(resources, 0, index)
