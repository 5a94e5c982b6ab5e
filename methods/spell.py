"""SPELL, sparse repellency (the seed paper, Eq. 5 and 8, Algorithm 1).

For each sample b with guided prediction x0_b and every shield z_k:
    delta_b = lambda * sum_k relu(r / ||x0_b - z_k|| - 1) * (x0_b - z_k)
Shields: the other samples' current x0_hat (intra-batch), the final outputs of
earlier batches of the same prompt (inter-batch) and a static protected set.
The correction is exactly zero outside every shield.
"""

from __future__ import annotations

from pathlib import Path

import torch
from pydantic import Field

from bench.shields import ExactShieldSet, ShieldSet
from methods.base import BatchContext, DiversityMethod, MethodConfig, Step, format_number
from methods.registry import register


class SpellConfig(MethodConfig):
    radius: float = Field(2.0, gt=0, description="shield radius r (L2, model space)")
    overcompensation: float = Field(1.0, gt=0, description="lambda, scales the correction")
    intra_batch: bool = Field(True, description="repel from the other samples of the batch")
    sequential: bool = Field(False, description="intra-batch only from samples b' < b")
    inter_batch: bool = Field(True, description="repel from earlier batches' final outputs")
    protect: Path | None = Field(None, description="static protected set (bench protect build)")


def repulsion(x: torch.Tensor, z: torch.Tensor, radius: float) -> torch.Tensor:
    """relu(r / ||x - z|| - 1) * (x - z), row-wise; zero where x == z (no direction)."""
    diff = x - z
    dist = diff.norm(dim=1, keepdim=True)
    weight = torch.where(dist > 0, (radius / dist.clamp_min(1e-12) - 1.0).clamp_min(0), 0.0)
    return weight * diff


def intra_batch_delta(flat: torch.Tensor, radius: float, sequential: bool) -> torch.Tensor:
    """Sum over b' != b (or b' < b) of the repulsion of x0_b from x0_b'."""
    dist = torch.cdist(flat, flat)
    weight = (radius / dist.clamp_min(1e-12) - 1.0).clamp_min(0)
    weight = torch.where(dist > 0, weight, 0.0)
    weight.fill_diagonal_(0.0)
    if sequential:
        weight = weight.tril(-1)
    return weight.sum(1, keepdim=True) * flat - weight @ flat


def shield_delta(flat: torch.Tensor, shields: ShieldSet, radius: float) -> torch.Tensor:
    """Repulsion from the shields within r, found by the shield set's search."""
    delta = torch.zeros_like(flat)
    if len(shields) == 0:
        return delta
    hits = shields.within(flat, radius)
    if hits.query.numel():
        query = hits.query.to(flat.device)
        z = shields.vectors(hits.shield).to(flat.device, flat.dtype)
        delta.index_add_(0, query, repulsion(flat[query], z, radius))
    return delta


@register
class Spell(DiversityMethod):
    name = "spell"
    Config = SpellConfig

    def __init__(self, config: SpellConfig | None = None, static: ShieldSet | None = None):
        super().__init__(config)
        self.static = static
        self.earlier: ExactShieldSet | None = None

    @property
    def id(self) -> str:
        c = self.config
        parts = [f"spell-r{format_number(c.radius)}", f"l{format_number(c.overcompensation)}"]
        if not c.intra_batch:
            parts.append("nointra")
        elif c.sequential:
            parts.append("seq")
        if not c.inter_batch:
            parts.append("nointer")
        if c.protect is not None:
            parts.append(f"p{c.protect.stem}")
        return "-".join(parts)

    def begin_prompt(self, prompt_id: str, device: torch.device) -> None:
        self.earlier = None
        if self.static is None and self.config.protect is not None:
            from bench.shields.store import load_shields

            self.static = load_shields(self.config.protect, device=device)

    def correct(self, step: Step, x_t, x0_hat, ctx: BatchContext) -> torch.Tensor:
        c = self.config
        flat = x0_hat.flatten(1).float()
        delta = torch.zeros_like(flat)
        if c.intra_batch and flat.shape[0] > 1:
            delta += intra_batch_delta(flat, c.radius, c.sequential)
        if c.inter_batch and self.earlier is not None:
            delta += shield_delta(flat, self.earlier, c.radius)
        if self.static is not None:
            delta += shield_delta(flat, self.static, c.radius)
        return (c.overcompensation * delta).view_as(x0_hat).to(x0_hat.dtype)

    def end_batch(self, x0: torch.Tensor, ctx: BatchContext) -> None:
        if not self.config.inter_batch:
            return
        if self.earlier is None:
            self.earlier = ExactShieldSet(dim=x0[0].numel(), device=x0.device)
        self.earlier.add(x0.float())
