"""Protection rate: the share of generated images that land near a protected image."""

from __future__ import annotations

import numpy as np
import torch

from bench.errors import BenchError
from metrics.spec import MetricSpec

SPEC = MetricSpec(
    "protection_rate",
    "Within r of protected",
    "share of generated",
    False,
    "share of final latents whose nearest protected vector is closer than r",
)

# The run-level protection metrics, in Table 2's order after the L2 rate (copy rates are
# `copy_rate_<space>`, metrics.copying).
PROTECTION_KEYS = ("protection_rate", "ct_score", "auth_pct")
COPY_RATE_PREFIX = "copy_rate_"


def is_protection_key(key: str) -> bool:
    return key in PROTECTION_KEYS or key.startswith(COPY_RATE_PREFIX)


def protection_keys(keys: list[str]) -> list[str]:
    """Table 2's columns among `keys`: the L2 rate, the copy rates, CT, AuthPct."""
    copies = sorted(k for k in keys if k.startswith(COPY_RATE_PREFIX))
    return [k for k in (PROTECTION_KEYS[0], *copies, *PROTECTION_KEYS[1:]) if k in keys]


def float64_rows(x: np.ndarray | torch.Tensor) -> torch.Tensor:
    """(N, ...) -> float64 (N, D) tensor, one flattened item per row."""
    t = torch.as_tensor(np.asarray(x), dtype=torch.float64)
    return t.reshape(len(t), int(np.prod(t.shape[1:])))


def _mask_self(d: torch.Tensor, q0: int, r0: int) -> None:
    """Set d[i, j] to inf where query q0 + i is reference r0 + j."""
    start, stop = max(q0, r0), min(q0 + d.shape[0], r0 + d.shape[1])
    if start < stop:
        g = torch.arange(start, stop)
        d[g - q0, g - r0] = float("inf")


def nearest(
    queries: np.ndarray | torch.Tensor,
    reference: np.ndarray | torch.Tensor,
    chunk: int = 4096,
    skip_self: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Exact Euclidean distance from each query row to its nearest reference row, and its index.

    Ties go to the lowest index. `skip_self`: the queries are the reference set and a
    row's own index is excluded (its duplicates are not). Each pair's distance is
    computed on its own, so a row's result does not depend on the other queries.
    """
    q, r = float64_rows(queries), float64_rows(reference)
    if q.shape[1] != r.shape[1]:
        raise BenchError(f"query items have {q.shape[1]} values, reference {r.shape[1]}")
    if len(r) == 0:
        raise BenchError("the reference set is empty")
    dist, index = np.empty(len(q)), np.empty(len(q), dtype=np.int64)
    for q0 in range(0, len(q), chunk):
        block = q[q0 : q0 + chunk]
        best = torch.full((len(block),), float("inf"), dtype=torch.float64)
        arg = torch.full((len(block),), -1, dtype=torch.int64)
        for r0 in range(0, len(r), chunk):
            d = torch.cdist(block, r[r0 : r0 + chunk], compute_mode="donot_use_mm_for_euclid_dist")
            if skip_self:
                _mask_self(d, q0, r0)
            m, a = d.min(dim=1)
            better = m < best  # strict: an earlier chunk keeps a tie
            best, arg = torch.where(better, m, best), torch.where(better, a + r0, arg)
        dist[q0 : q0 + len(block)], index[q0 : q0 + len(block)] = best.numpy(), arg.numpy()
    return dist, index


def nearest_distances(
    generated: np.ndarray | torch.Tensor, protected: np.ndarray | torch.Tensor, chunk: int = 4096
) -> np.ndarray:
    """Exact Euclidean distance from each generated item to its nearest protected item."""
    return nearest(generated, protected, chunk)[0]


def protection_rate(
    generated: np.ndarray | torch.Tensor,
    protected: np.ndarray | torch.Tensor,
    r: float,
    chunk: int = 4096,
) -> float:
    """Share of generated items whose nearest protected item is closer than r (strict)."""
    if not r > 0:
        raise BenchError(f"protection radius must be positive, got {r}")
    if len(generated) == 0:
        raise BenchError("no generated images to check against the protected set")
    return float((nearest_distances(generated, protected, chunk) < r).mean())
