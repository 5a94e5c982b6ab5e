"""SPELL's repulsion from shields: relu(r / ||x - z|| - 1) (x - z), summed over the
shields within r that a ShieldSet's search finds."""

from __future__ import annotations

import torch

from bench.shields.base import ShieldSet


def repulsion(x: torch.Tensor, z: torch.Tensor, radius: float) -> torch.Tensor:
    """relu(r / ||x - z|| - 1) * (x - z), row-wise; zero where x == z (no direction)."""
    diff = x - z
    dist = diff.norm(dim=1, keepdim=True)
    weight = torch.where(dist > 0, (radius / dist.clamp_min(1e-12) - 1.0).clamp_min(0), 0.0)
    return weight * diff


def shield_delta(flat: torch.Tensor, shields: ShieldSet, radius: float) -> torch.Tensor:
    """Repulsion of each row of `flat` from the shields within r."""
    delta = torch.zeros_like(flat)
    if len(shields) == 0:
        return delta
    hits = shields.within(flat, radius)
    if hits.query.numel():
        query = hits.query.to(flat.device)
        z = shields.vectors(hits.shield).to(flat.device, flat.dtype)
        delta.index_add_(0, query, repulsion(flat[query], z, radius))
    return delta
