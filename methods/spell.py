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

from bench.shields import ExactShieldSet, ShieldSet, load_shields, shield_delta
from methods.base import BatchContext, DiversityMethod, MethodConfig, PromptContext, Step, param


class SpellConfig(MethodConfig):
    radius: float = param(2.0, "shield radius r (L2, model space)", id="r", gt=0)
    overcompensation: float = param(1.0, "lambda, scales the correction", id="l", gt=0)
    intra_batch: bool = param(True, "repel from the other samples of the batch", id="nointra")
    sequential: bool = param(False, "intra-batch only from samples b' < b", id="seq")
    inter_batch: bool = param(True, "repel from earlier batches' final outputs", id="nointer")
    protect: Path | None = param(None, "static protected set (bench protect build)", id="p")


def intra_batch_delta(flat: torch.Tensor, radius: float, sequential: bool) -> torch.Tensor:
    """Sum over b' != b (or b' < b) of the repulsion of x0_b from x0_b'."""
    dist = torch.cdist(flat, flat)
    weight = (radius / dist.clamp_min(1e-12) - 1.0).clamp_min(0)
    weight = torch.where(dist > 0, weight, 0.0)
    weight.fill_diagonal_(0.0)
    if sequential:
        weight = weight.tril(-1)
    return weight.sum(1, keepdim=True) * flat - weight @ flat


class Spell(DiversityMethod):
    name = "spell"
    Config = SpellConfig

    def __init__(self, config: SpellConfig | None = None, static: ShieldSet | None = None):
        super().__init__(config)
        self.static = static
        self.earlier: ExactShieldSet | None = None

    def begin_prompt(self, ctx: PromptContext) -> None:
        self.earlier = None
        if self.static is None and self.config.protect is not None:
            self.static = load_shields(self.config.protect, device=ctx.device)

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
