"""SPELL's repulsion from shields: relu(r / ||x - z|| - 1) (x - z), summed over the
shields within r that a ShieldSet's search finds."""

from __future__ import annotations

import torch

from bench.shields.base import ShieldSet

NORM_PIECE = 256


def row_norms(diff: torch.Tensor) -> torch.Tensor:
    """L2 norms along the last dim, in float64 whatever the input.

    A float32 norm over D ~ 16k values is off by a few epsilons, and relu(r / d - 1)
    multiplies that by r / (r - d) (10 at d = 0.9 r). Norms of 256-value pieces are
    accurate and as fast; they are combined in float64."""
    if diff.dtype == torch.float64:
        return diff.norm(dim=-1)
    d = diff.shape[-1]
    whole = d - d % NORM_PIECE
    parts = [diff[..., :whole].unflatten(-1, (-1, NORM_PIECE)).norm(dim=-1)] if whole else []
    if whole < d:
        parts.append(diff[..., whole:].norm(dim=-1, keepdim=True))
    return torch.cat(parts, dim=-1).double().norm(dim=-1)


def repulsion_weight(dist: torch.Tensor, radius: float) -> torch.Tensor:
    """relu(r / d - 1), zero where d == 0 (no direction), as (r - d) / d: r - d is
    exact near the boundary, r / d would be rounded before the cancellation."""
    weight = (radius - dist).clamp_min(0) / dist.clamp_min(1e-12)
    return torch.where(dist > 0, weight, 0.0)


def repulsion(x: torch.Tensor, z: torch.Tensor, radius: float) -> torch.Tensor:
    """relu(r / ||x - z|| - 1) * (x - z), row-wise, in the promoted dtype of x and z."""
    diff = x - z
    weight = repulsion_weight(row_norms(diff), radius).to(diff.dtype)
    return weight[:, None] * diff


def shield_delta(flat: torch.Tensor, shields: ShieldSet, radius: float) -> torch.Tensor:
    """Repulsion of each row of `flat` from the shields within r, in flat's dtype
    (float32 shields are promoted, never a float64 `flat` rounded down)."""
    delta = torch.zeros_like(flat)
    if len(shields) == 0:
        return delta
    hits = shields.within(flat, radius)
    if hits.query.numel():
        query = hits.query.to(flat.device)
        z = shields.vectors(hits.shield).to(flat.device, flat.dtype)
        delta.index_add_(0, query, repulsion(flat[query], z, radius))
    return delta
