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
from bench.shields.repel import repulsion_weight, row_norms
from methods.base import BatchContext, DiversityMethod, MethodConfig, PromptContext, Step, param


class SpellConfig(MethodConfig):
    radius: float = param(2.0, "shield radius r (L2, model space)", id="r", gt=0)
    overcompensation: float = param(1.0, "lambda, scales the correction", id="l", gt=0)
    intra_batch: bool = param(True, "repel from the other samples of the batch", id="nointra")
    sequential: bool = param(False, "intra-batch only from samples b' < b", id="seq")
    inter_batch: bool = param(True, "repel from earlier batches' final outputs", id="nointer")
    protect: Path | None = param(None, "static protected set (bench protect build)", id="p")


# Bytes of one (rows, B, D) block of pairwise differences in intra_batch_delta.
DIFF_BYTES = 64 * 2**20


def intra_batch_delta(flat: torch.Tensor, radius: float, sequential: bool) -> torch.Tensor:
    """Sum over b' != b (or b' < b) of the repulsion of x0_b from x0_b'.

    Distances and the correction come from the explicit differences x_b - x_b': the
    expanded forms (cdist's matmul path, sum_b' w x_b - W x) cancel catastrophically
    when the samples are large and close together, which is when SPELL acts."""
    n, d = flat.shape
    out = torch.empty_like(flat)
    rows = max(1, DIFF_BYTES // (n * d * flat.element_size()))
    others = torch.arange(n, device=flat.device)
    for start in range(0, n, rows):
        block = flat[start : start + rows]
        diff = block[:, None, :] - flat[None, :, :]
        weight = repulsion_weight(row_norms(diff), radius)
        own = others[start : start + len(block), None]
        weight = weight.masked_fill(others >= own if sequential else others == own, 0.0)
        weight = weight.to(flat.dtype)
        out[start : start + len(block)] = torch.bmm(weight[:, None, :], diff)[:, 0]
    return out


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
        flat = x0_hat.flatten(1).to(torch.promote_types(x0_hat.dtype, torch.float32))
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
