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
    Half-precision storage of finer vectors keeps those originals where they are (a
    memory map stays mapped; nothing is copied): candidates are then sought within r
    plus the largest rounding of a row, and rechecked against the originals, so the
    answer is exact for the vectors given, not for their rounded copies.
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
        self._originals: torch.Tensor | None = None
        self.rounding = 0.0  # the largest L2 distance between a row and its stored copy
        if vectors is not None:
            flat = vectors.reshape(vectors.shape[0], -1)
            if keeps_originals(flat.dtype, dtype):
                self._originals = flat
            # Used in place when dtype and device already match: a 1.2M-row set or a
            # memory-mapped file is not copied.
            self._set(flat.to(self.home, self.dtype).contiguous())

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
        flat = vectors.reshape(vectors.shape[0], -1)
        if self._originals is not None:
            kept = self._originals
            self._originals = torch.cat([kept, flat.to(kept.device, kept.dtype)])
        self._set(torch.cat([self._data, flat.to(self.home, self.dtype)]))

    def _set(self, data: torch.Tensor) -> None:
        self._data = data
        self._sq_norms = squared_norms(data, self.chunk).to(self.device)
        if len(self):
            self._max_norm = self._sq_norms.max().sqrt().item()
        if self._originals is not None:
            self.rounding = largest_rounding(self._originals, data, self.chunk)

    def candidate_radius(self, radius: float) -> float:
        """The radius within which the stored copies are searched: r when they are the
        vectors themselves, r plus their largest rounding when the originals are kept."""
        return radius + self.rounding

    def vectors(self, rows: torch.Tensor) -> torch.Tensor:
        source = self._data if self._originals is None else self._originals
        return source[rows.to(source.device)].to(self.device).float()

    def _exact_rows(self, block: torch.Tensor, start: int) -> Callable:
        """Rows of a chunk, by index within it, as rechecks compare them: the originals
        when they are kept, else the stored block itself."""
        if self._originals is None:
            return lambda cols: block[cols].float()
        kept = self._originals
        return lambda cols: kept[(cols + start).to(kept.device)].to(self.device)

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
        threshold = self.candidate_radius(radius) ** 2 - (1.0 - tol) * q_sq
        parts = []
        for start in range(0, len(self), self.chunk):
            block = self._block(start)
            z_sq = self._sq_norms[start : start + self.chunk]
            dots = (q_low @ block.T).float() * scale
            rows, cols = torch.nonzero((1.0 - tol) * z_sq - 2.0 * dots < threshold, as_tuple=True)
            if rows.numel():
                fetch = self._exact_rows(block, start)
                parts.append(recheck(exact, fetch, rows, cols, radius, start))
        return Neighbours.concat(parts, self.device)


def keeps_originals(source: torch.dtype, storage: torch.dtype) -> bool:
    """Half-precision storage of float32 / float64 vectors keeps the originals."""
    half = (torch.float16, torch.bfloat16)
    return storage in half and source not in half


def largest_rounding(originals: torch.Tensor, stored: torch.Tensor, chunk: int) -> float:
    """max over rows of ||original - stored||, chunk by chunk where the originals are.
    The float32 differences are exact (a value and its rounding are within a factor of
    2); the bound is widened for the float32 sum of their squares."""
    largest = 0.0
    for start in range(0, originals.shape[0], chunk):
        exact = originals[start : start + chunk]
        exact = exact.to(torch.promote_types(exact.dtype, torch.float32))
        copy = stored[start : start + chunk].to(exact.device, exact.dtype)
        largest = max(largest, (exact - copy).norm(dim=1).max().item())
    return largest * (1.0 + originals.shape[1] * torch.finfo(torch.float32).eps)


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
