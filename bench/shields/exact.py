"""Exact shield search: chunked matmul distances on the queries' device."""

from __future__ import annotations

import torch

from bench.shields.base import Neighbours, ShieldSet


class ExactShieldSet(ShieldSet):
    """Brute-force search, memory bounded by `chunk` shields at a time.

    `dtype` is the storage type (float16 halves memory for large protected sets);
    distances are always computed in float32.
    """

    def __init__(
        self,
        vectors: torch.Tensor | None = None,
        dim: int | None = None,
        dtype: torch.dtype = torch.float32,
        chunk: int = 65536,
        device: torch.device | str = "cpu",
    ) -> None:
        if vectors is None and dim is None:
            raise ValueError("give the shield vectors or their dimension")
        self.dtype = dtype
        self.chunk = chunk
        self.device = torch.device(device)
        d = dim if vectors is None else vectors.flatten(1).shape[1]
        self._data = torch.empty(0, d, dtype=dtype, device=self.device)
        self._sq_norms = torch.empty(0, device=self.device)
        if vectors is not None:
            self.add(vectors)

    def __len__(self) -> int:
        return self._data.shape[0]

    def add(self, vectors: torch.Tensor) -> None:
        flat = vectors.flatten(1).to(self.device, torch.float32)
        self._data = torch.cat([self._data, flat.to(self.dtype)])
        self._sq_norms = torch.cat([self._sq_norms, flat.pow(2).sum(1)])

    def vectors(self, rows: torch.Tensor) -> torch.Tensor:
        return self._data[rows.to(self.device)].float()

    def within(self, queries: torch.Tensor, radius: float) -> Neighbours:
        q = queries.flatten(1).to(self.device, torch.float32)
        q_sq = q.pow(2).sum(1, keepdim=True)
        # Candidates with a little slack, then an exact recheck: the expanded form
        # |q|^2 + |z|^2 - 2 q.z loses precision when |q| and |z| are large.
        slack = (radius * 1.001) ** 2 + 1e-4
        found = []
        for start in range(0, len(self), self.chunk):
            block = self._data[start : start + self.chunk].float()
            sq = q_sq + self._sq_norms[start : start + self.chunk] - 2.0 * q @ block.T
            rows, cols = torch.nonzero(sq < slack, as_tuple=True)
            if rows.numel():
                dist = (q[rows] - block[cols]).norm(dim=1)
                keep = dist < radius
                found.append((rows[keep], cols[keep] + start, dist[keep]))
        if not found:
            empty = torch.empty(0, dtype=torch.long, device=self.device)
            return Neighbours(empty, empty, torch.empty(0, device=self.device))
        rows, cols, dist = (torch.cat(parts) for parts in zip(*found, strict=True))
        return Neighbours(rows, cols, dist)
