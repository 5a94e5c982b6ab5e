"""Exact shield search with a cheap, lossless pre-filter (backend `projected`).

Each shield z is summarised by m + 1 numbers: its coordinates U(z - mu) in the top
m principal directions U of the set, and the norm of what is left, ||R(z - mu)||
with R = I - U^T U. For any query q,

    ||q - z||^2 = ||U(q - z)||^2 + ||R(q - z)||^2
               >= ||U(q - z)||^2 + (||R(q - mu)|| - ||R(z - mu)||)^2,

which is the squared distance between the (m + 1)-dim summaries. So one
(N, m + 1) matmul finds every shield that may lie within r (no false negatives:
unlike IVF its recall is 100% by construction), and only those few candidates are
checked against their full vectors. For SPELL only shields within r matter, and
with real data those are rare, so the full vectors are touched almost never.
"""

from __future__ import annotations

import torch

from bench.shields.base import IndexedShieldSet, Neighbours, check_radius
from bench.shields.exact import ExactShieldSet, exact_queries, expansion_tolerance, recheck

DEFAULT_RANK = 64
FIT_ROWS = 20_000
FALLBACK_SHARE = 0.05  # candidates per query, as a share of N, beyond which to scan


def fit_basis(data: torch.Tensor, rank: int, rows: int, seed: int) -> tuple[torch.Tensor, ...]:
    """Mean (d,) and an orthonormal (d, rank) basis of the top principal directions.

    Any orthonormal basis keeps the bound valid; a good one only makes it tighter."""
    gen = torch.Generator().manual_seed(seed)
    pick = torch.randperm(data.shape[0], generator=gen)[:rows].sort().values
    sample = data[pick.to(data.device)].float()
    mean = sample.mean(0)
    rank = min(rank, *sample.shape)
    # svd_lowrank draws its sketch from the global generator: seed it, then restore it.
    cuda = [sample.device.index or 0] if sample.device.type == "cuda" else []
    with torch.random.fork_rng(devices=cuda):
        torch.manual_seed(seed)
        _, _, basis = torch.svd_lowrank(sample - mean, q=rank, niter=4)
    return mean, torch.linalg.qr(basis[:, :rank]).Q.contiguous()


def summarise(x: torch.Tensor, mean: torch.Tensor, basis: torch.Tensor) -> torch.Tensor:
    """(n, d) -> (n, m + 1): principal coordinates and the residual norm."""
    centred = x.float() - mean
    coords = centred @ basis
    residual = (centred - coords @ basis.T).norm(dim=1, keepdim=True)
    return torch.cat([coords, residual], dim=1)


class ProjectedShieldSet(IndexedShieldSet):
    """Exact answers (like `exact`) from a pre-filter that reads (m + 1) / d of the data.

    `store` keeps the full vectors (any device, any storage dtype, memory-mapped or
    not); the summaries live on `device`, where the queries are filtered.
    """

    backend = "projected"

    def __init__(
        self,
        store: ExactShieldSet | torch.Tensor,
        rank: int = DEFAULT_RANK,
        device: torch.device | str | None = None,
        fit_rows: int = FIT_ROWS,
        seed: int = 0,
    ) -> None:
        self.store = store if isinstance(store, ExactShieldSet) else ExactShieldSet(store)
        self.device = torch.device(device) if device is not None else self.store.device
        data = self.store.data
        mean, basis = fit_basis(data, rank, fit_rows, seed)
        self.mean, self.basis = mean.to(self.device), basis.to(self.device)
        self.rank = self.basis.shape[1]
        self._summary = torch.empty(len(self.store), self.rank + 1, device=self.device)
        self._sq_norms = torch.empty(len(self.store), device=self.device)
        for start in range(0, len(self.store), self.store.chunk):
            block = data[start : start + self.store.chunk].to(self.device)
            s = summarise(block, self.mean, self.basis)
            self._summary[start : start + len(s)] = s
            self._sq_norms[start : start + len(s)] = s.pow(2).sum(1)

    def describe(self) -> str:
        return f"projected(m={self.rank})"

    def candidates(self, queries: torch.Tensor, radius: float) -> tuple[torch.Tensor, ...]:
        """(query, shield) rows whose lower bound is below r (a superset of the answer)."""
        s = summarise(queries.reshape(queries.shape[0], -1).to(self.device), self.mean, self.basis)
        s_sq = s.pow(2).sum(1, keepdim=True)
        tol = expansion_tolerance(torch.float32, self.rank + 1) + 1e-6
        threshold = self.store.candidate_radius(radius) ** 2 - (1.0 - tol) * s_sq
        bound = (1.0 - tol) * self._sq_norms - 2.0 * (s @ self._summary.T)
        return torch.nonzero(bound < threshold, as_tuple=True)

    def within(self, queries: torch.Tensor, radius: float) -> Neighbours:
        check_radius(radius)
        rows, cols = self.candidates(queries, radius)
        if rows.numel() > FALLBACK_SHARE * len(self) * queries.shape[0]:
            # The bound is loose for this data and radius: one plain scan is cheaper.
            found = self.store.within(queries, radius)
        else:
            q = exact_queries(queries, self.store.device)
            where = self.store.device
            found = recheck(q, self.store.vectors, rows.to(where), cols.to(where), radius)
        return Neighbours(*(t.to(self.device) for t in (found.query, found.shield, found.distance)))
