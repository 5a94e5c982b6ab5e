"""The ShieldSet interface shared by the exact and faiss backends."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Neighbours:
    """Sparse (query, shield) pairs closer than r, with their L2 distances."""

    query: torch.Tensor  # (P,) int64 rows of the queries
    shield: torch.Tensor  # (P,) int64 rows of the shield set
    distance: torch.Tensor  # (P,) float


class ShieldSet(ABC):
    """Flattened shield vectors z_k in the model's diffusion space."""

    @abstractmethod
    def __len__(self) -> int: ...

    @abstractmethod
    def within(self, queries: torch.Tensor, radius: float) -> Neighbours:
        """Pairs (q, k) with ||queries[q] - z_k|| < radius; queries are (B, d)."""

    @abstractmethod
    def vectors(self, rows: torch.Tensor) -> torch.Tensor:
        """The shield vectors at these rows, (P, d), float32."""
