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


def nearest_distances(
    generated: np.ndarray | torch.Tensor,
    protected: np.ndarray | torch.Tensor,
    chunk: int = 4096,
    device: str = "cpu",
) -> np.ndarray:
    """Exact Euclidean distance from each generated item to its nearest protected item."""
    g = torch.as_tensor(np.asarray(generated), dtype=torch.float64, device=device).flatten(1)
    p = torch.as_tensor(np.asarray(protected), dtype=torch.float64, device=device).flatten(1)
    if g.shape[1] != p.shape[1]:
        raise BenchError(f"generated items have {g.shape[1]} values, protected {p.shape[1]}")
    if len(p) == 0:
        raise BenchError("the protected set is empty")
    best = torch.full((len(g),), float("inf"), dtype=torch.float64, device=device)
    for start in range(0, len(p), chunk):
        d = torch.cdist(g, p[start : start + chunk], compute_mode="donot_use_mm_for_euclid_dist")
        best = torch.minimum(best, d.min(dim=1).values)
    return best.cpu().numpy()


def protection_rate(
    generated: np.ndarray | torch.Tensor,
    protected: np.ndarray | torch.Tensor,
    r: float,
    chunk: int = 4096,
    device: str = "cpu",
) -> float:
    """Share of generated items whose nearest protected item is closer than r (strict)."""
    if not r > 0:
        raise BenchError(f"protection radius must be positive, got {r}")
    if len(generated) == 0:
        raise BenchError("no generated images to check against the protected set")
    return float((nearest_distances(generated, protected, chunk, device) < r).mean())
