"""The ShieldSet interface shared by every search backend."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Neighbours:
    """Sparse (query, shield) pairs closer than r, with their L2 distances."""

    query: torch.Tensor  # (P,) int64 rows of the queries
    shield: torch.Tensor  # (P,) int64 rows of the shield set
    distance: torch.Tensor  # (P,) float32, plain (not squared) L2

    @classmethod
    def empty(cls, device: torch.device | str = "cpu") -> Neighbours:
        rows = torch.empty(0, dtype=torch.long, device=device)
        return cls(rows, rows.clone(), torch.empty(0, device=device))

    @classmethod
    def concat(cls, parts: list[Neighbours], device: torch.device | str = "cpu") -> Neighbours:
        if not parts:
            return cls.empty(device)
        return cls(
            torch.cat([p.query for p in parts]),
            torch.cat([p.shield for p in parts]),
            torch.cat([p.distance for p in parts]),
        )

    def __len__(self) -> int:
        return self.query.numel()

    def pairs(self) -> set[tuple[int, int]]:
        """The (query, shield) pairs as a set, for comparing backends."""
        return set(zip(self.query.tolist(), self.shield.tolist(), strict=True))


class ShieldSet(ABC):
    """Flattened shield vectors z_k in the model's diffusion space."""

    backend: str = "base"

    @abstractmethod
    def __len__(self) -> int: ...

    @property
    @abstractmethod
    def dim(self) -> int:
        """Length of one flattened shield vector."""

    @abstractmethod
    def within(self, queries: torch.Tensor, radius: float) -> Neighbours:
        """Pairs (q, k) with ||queries[q] - z_k|| < radius; queries are (B, ...)."""

    @abstractmethod
    def vectors(self, rows: torch.Tensor) -> torch.Tensor:
        """The shield vectors at these rows, (P, d), float32."""

    def describe(self) -> str:
        """A short label for tables, e.g. `faiss-ivf(nprobe=2)`."""
        return self.backend


def check_radius(radius: float) -> None:
    if not radius > 0:
        from bench.errors import BenchError

        raise BenchError(f"shield radius must be positive, got {radius}")


class IndexedShieldSet(ShieldSet):
    """A search structure over an exact store of the vectors (`self.store`): size,
    dimension and vectors come from the store; subclasses only search."""

    store: ShieldSet

    def __len__(self) -> int:
        return len(self.store)

    @property
    def dim(self) -> int:
        return self.store.dim

    def vectors(self, rows: torch.Tensor) -> torch.Tensor:
        return self.store.vectors(rows)
