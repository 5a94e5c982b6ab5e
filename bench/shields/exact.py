"""Exact shield search: chunked matmul distances on the shields' device."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from bench.shields.base import Neighbours, ShieldSet, check_radius
from bench.shields.repel import row_norms

CHUNK_BYTES = 256 * 2**20
STORAGE_DTYPES = (torch.float32, torch.float16, torch.bfloat16)


def default_chunk(dim: int) -> int:
    """Rows per chunk so one float32 chunk takes about CHUNK_BYTES."""
    return max(1024, CHUNK_BYTES // (4 * dim))


def squared_norms(data: torch.Tensor, chunk: int) -> torch.Tensor:
    """Row-wise float32 ||z||^2 without materialising a float32 copy of all rows."""
    out = torch.empty(data.shape[0], device=data.device)
    for start in range(0, data.shape[0], chunk):
        out[start : start + chunk] = data[start : start + chunk].float().pow(2).sum(1)
    return out


def exact_queries(queries: torch.Tensor, device: torch.device | str) -> torch.Tensor:
    """Queries flattened to (B, d) for the exact recheck, in at least float32 (a
    float64 query is compared in float64)."""
    dtype = torch.promote_types(queries.dtype, torch.float32)
    return queries.reshape(queries.shape[0], -1).to(device, dtype)


def expansion_tolerance(dtype: torch.dtype, dim: int) -> float:
    """Relative slack on |q|^2 + |z|^2 - 2 q.z that covers its rounding error.

    In a low-precision dtype the query is rounded to it and the dot product comes
    back in it (eps together, relative to |q|^2 + |z|^2); twice that leaves room for
    GPU split-K partial sums kept in that dtype. Float32 accumulation adds about
    sqrt(dim) float32 epsilons. Candidates inside the slack are rechecked exactly, so
    a generous slack costs time, never correctness.
    """
    eps32 = torch.finfo(torch.float32).eps
    rounding = eps32 if dtype == torch.float32 else 2.0 * torch.finfo(dtype).eps
    return rounding + 4.0 * math.sqrt(dim) * eps32


def fits_on(device: torch.device, rows: int, dim: int, dtype: torch.dtype) -> bool:
    """Whether a set of this size can live on `device`: always on the CPU (a memory-
    mapped set stays mapped, not copied); on a GPU, if it takes at most half its free
    memory, the rest being left to the model."""
    if device.type != "cuda":
        return True
    free, _ = torch.cuda.mem_get_info(device)
    return rows * dim * torch.empty((), dtype=dtype).element_size() <= free // 2


class ExactShieldSet(ShieldSet):
    """Brute-force search over `chunk` shields at a time, on the shields' device.

    `dtype` is the storage type: float16 / bfloat16 halve memory and memory traffic
    for large protected sets and the matmul runs in that type; every candidate is
    then rechecked from its explicit difference with its stored vector, in float32
    (float64 for float64 queries), so the answer is exact for the stored vectors.
    A set that does not fit on the device (`resident` False; None decides by
    `fits_on`) stays in host memory, usually the memory map of a stored set, and is
    streamed to the device a chunk at a time; its norms live on the device.
    """

    backend = "exact"

    def __init__(
        self,
        vectors: torch.Tensor | None = None,
        dim: int | None = None,
        dtype: torch.dtype = torch.float32,
        chunk: int | None = None,
        device: torch.device | str = "cpu",
        resident: bool | None = None,
    ) -> None:
        if vectors is None and dim is None:
            raise ValueError("give the shield vectors or their dimension")
        if dtype not in STORAGE_DTYPES:
            raise ValueError(f"unsupported storage dtype {dtype}; use one of {STORAGE_DTYPES}")
        self.dtype = dtype
        self.device = torch.device(device)
        d = dim if vectors is None else vectors[0].numel()
        self.chunk = chunk or default_chunk(d)
        rows = 0 if vectors is None else vectors.shape[0]
        self.resident = fits_on(self.device, rows, d, dtype) if resident is None else resident
        self.home = self.device if self.resident else torch.device("cpu")
        self._data = torch.empty(0, d, dtype=dtype, device=self.home)
        self._sq_norms = torch.empty(0, device=self.device)
        self._max_norm = 0.0
        if vectors is not None:
            # Used in place when dtype and device already match: a 1.2M-row set or a
            # memory-mapped file is not copied.
            flat = vectors.reshape(vectors.shape[0], -1).to(self.home, self.dtype)
            self._set(flat.contiguous())

    def __len__(self) -> int:
        return self._data.shape[0]

    @property
    def dim(self) -> int:
        return self._data.shape[1]

    @property
    def max_norm(self) -> float:
        return self._max_norm

    @property
    def data(self) -> torch.Tensor:
        """The stored (N, d) tensor, shared, not copied."""
        return self._data

    def describe(self) -> str:
        name = "exact" if self.dtype == torch.float32 else f"exact-{_short(self.dtype)}"
        return name if self.resident else f"{name}-streamed"

    def add(self, vectors: torch.Tensor) -> None:
        """Append shields (always copied)."""
        flat = vectors.reshape(vectors.shape[0], -1).to(self.home, self.dtype)
        self._set(torch.cat([self._data, flat]))

    def _set(self, data: torch.Tensor) -> None:
        self._data = data
        self._sq_norms = squared_norms(data, self.chunk).to(self.device)
        if len(self):
            self._max_norm = self._sq_norms.max().sqrt().item()

    def vectors(self, rows: torch.Tensor) -> torch.Tensor:
        return self._data[rows.to(self.home)].to(self.device).float()

    def _block(self, start: int) -> torch.Tensor:
        """Rows start .. start + chunk on the device (copied there when not resident)."""
        return self._data[start : start + self.chunk].to(self.device, non_blocking=True)

    def within(self, queries: torch.Tensor, radius: float) -> Neighbours:
        check_radius(radius)
        exact = exact_queries(queries, self.device)
        q = exact.float()
        if len(self) == 0:
            return Neighbours.empty(self.device)
        tol = expansion_tolerance(self.dtype, self.dim)
        # Scaling the query by the largest shield norm keeps q.z inside float16 range.
        scale = max(self._max_norm, 1e-30) if self.dtype == torch.float16 else 1.0
        q_low = (q / scale).to(self.dtype)
        q_sq = q.pow(2).sum(1, keepdim=True)
        threshold = radius**2 - (1.0 - tol) * q_sq
        parts = []
        for start in range(0, len(self), self.chunk):
            block = self._block(start)
            z_sq = self._sq_norms[start : start + self.chunk]
            dots = (q_low @ block.T).float() * scale
            rows, cols = torch.nonzero((1.0 - tol) * z_sq - 2.0 * dots < threshold, as_tuple=True)
            if rows.numel():
                parts.append(_recheck(exact, block, rows, cols, start, radius))
        return Neighbours.concat(parts, self.device)


def _recheck(q, block, rows, cols, offset: int, radius: float) -> Neighbours:
    return recheck(q, lambda c: block[c].float(), rows, cols, radius, offset)


def recheck(
    q: torch.Tensor,
    fetch: Callable[[torch.Tensor], torch.Tensor],
    rows: torch.Tensor,
    cols: torch.Tensor,
    radius: float,
    offset: int = 0,
) -> Neighbours:
    """Exact distances of candidate pairs (query row, shield col), from their explicit
    differences in q's dtype (at least float32), a bounded number of pairs at a time;
    keeps the pairs closer than `radius`. The distances are returned as float32."""
    step = default_chunk(q.shape[1] * q.element_size() // 4)
    parts = []
    for start in range(0, rows.numel(), step):
        r, c = rows[start : start + step], cols[start : start + step]
        dist = row_norms(q[r] - fetch(c).to(q.dtype))
        keep = dist < radius
        parts.append(Neighbours(r[keep], c[keep] + offset, dist[keep].float()))
    return Neighbours.concat(parts, q.device)


def _short(dtype: torch.dtype) -> str:
    return {torch.float16: "fp16", torch.bfloat16: "bf16"}.get(dtype, "fp32")
