"""SPELL, sparse repellency (the seed paper, Eq. 5 and 8, Algorithm 1).

For each sample b with guided prediction x0_b and every shield z_k:
    delta_b = lambda * sum_k relu(r / ||x0_b - z_k|| - 1) * (x0_b - z_k)
Shields: the other samples' current x0_hat (intra-batch), the final outputs of
earlier batches of the same prompt (inter-batch) and a static protected set.
The correction is exactly zero outside every shield.

Beyond the paper, `project` keeps SPELL's guarantee where shields overlap: a sample
that the summed correction leaves inside a shield (or, with `clip_box`, outside the
scheduler's x0 clip box) moves on to the nearest point outside every shield and inside
the box (bench/shields/project.py). Samples SPELL already puts at least r (1 + 1e-6)
from every shield (and inside the box) keep its correction bit for bit; the guarantee
holds up to the rounding of x0_hat's dtype (float32: far below that margin).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from pydantic import model_validator

from bench.shields import ExactShieldSet, ShieldSet, load_shields, shield_delta
from bench.shields.project import Hits, project_out
from bench.shields.repel import repulsion, repulsion_weight, row_norms
from methods.base import BatchContext, DiversityMethod, MethodConfig, PromptContext, Step, param


class SpellConfig(MethodConfig):
    radius: float = param(2.0, "shield radius r (L2, model space)", id="r", gt=0)
    overcompensation: float = param(1.0, "lambda, scales the correction", id="l", gt=0)
    intra_batch: bool = param(True, "repel from the other samples of the batch", id="nointra")
    sequential: bool = param(False, "intra-batch only from samples b' < b", id="seq")
    inter_batch: bool = param(True, "repel from earlier batches' final outputs", id="nointer")
    protect: Path | None = param(None, "static protected set (bench protect build)", id="p")
    project: bool = param(False, "project x0' out of every shield (beyond paper)", id="proj")
    clip_box: float | None = param(None, "project into [-b, b] (x0 clip range)", id="box", gt=0)

    @model_validator(mode="after")
    def _box_needs_project(self) -> SpellConfig:
        if self.clip_box is not None and not self.project:
            raise ValueError("clip_box only applies with project = true")
        return self


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


# Shield keys for the projection, unique over the sources: row * SOURCES + source.
SOURCES = 3
INTRA, INTER, STATIC = 0, 1, 2


@dataclass
class ProjectionStats:
    """What `project` did over every correct() call of this instance (diagnostics only,
    never reset): rows with a shield around x0_hat, rows it moved beyond SPELL's own
    correction, rows still inside a shield at the iteration cap, and the summed extra
    move ||x0' - (x0_hat + lambda delta)|| of the moved rows."""

    corrected: int = 0
    moved: int = 0
    infeasible: int = 0
    extra: float = 0.0


def indexed_hits(points: torch.Tensor, shields: ShieldSet, radius: float, source: int) -> Hits:
    """The shields of a ShieldSet within `radius` of each point."""
    if len(shields) == 0:
        return Hits.concat([], points.shape[1], points.device)
    found = shields.within(points, radius)
    centre = shields.vectors(found.shield).to(points.device, torch.float64)
    key = found.shield.to(points.device) * SOURCES + source
    return Hits(found.query.to(points.device), key, centre)


def batch_hits(points, rows, batch: torch.Tensor, radius: float, sequential: bool) -> Hits:
    """The batch's x0_hat within `radius` of each point, from explicit differences as in
    `intra_batch_delta`: never the point's own row `rows[j]`, with `sequential` only
    the rows before it."""
    others = torch.arange(len(batch), device=batch.device)
    parts = []
    for j, (point, own) in enumerate(zip(points, rows.tolist(), strict=True)):
        near = row_norms(point - batch) < radius
        near &= others < own if sequential else others != own
        idx = torch.nonzero(near).flatten()
        parts.append(Hits(torch.full_like(idx, j), idx * SOURCES + INTRA, batch[idx].double()))
    return Hits.concat(parts, batch.shape[1], batch.device)


class Spell(DiversityMethod):
    name = "spell"
    Config = SpellConfig

    def __init__(self, config: SpellConfig | None = None, static: ShieldSet | None = None):
        super().__init__(config)
        self.static = static
        self.earlier: ExactShieldSet | None = None
        self.projection = ProjectionStats()

    def begin_prompt(self, ctx: PromptContext) -> None:
        self.earlier = None
        if self.static is None and self.config.protect is not None:
            self.static = load_shields(self.config.protect, device=ctx.device)

    def correct(self, step: Step, x_t, x0_hat, ctx: BatchContext) -> torch.Tensor:
        c = self.config
        flat = x0_hat.flatten(1).to(torch.promote_types(x0_hat.dtype, torch.float32))
        if c.project:
            return self._projected(flat).view_as(x0_hat).to(x0_hat.dtype)
        delta = torch.zeros_like(flat)
        if c.intra_batch and flat.shape[0] > 1:
            delta += intra_batch_delta(flat, c.radius, c.sequential)
        if c.inter_batch and self.earlier is not None:
            delta += shield_delta(flat, self.earlier, c.radius)
        if self.static is not None:
            delta += shield_delta(flat, self.static, c.radius)
        return (c.overcompensation * delta).view_as(x0_hat).to(x0_hat.dtype)

    def _finder(self, flat: torch.Tensor, rows: torch.Tensor):
        """A Finder (bench/shields/project.py) over every shield SPELL repels the batch
        rows `rows` from: static, inter-batch and the other samples' x0_hat."""
        c = self.config
        sources = [(STATIC, self.static)] if self.static is not None else []
        if c.inter_batch and self.earlier is not None:
            sources.append((INTER, self.earlier))
        intra = c.intra_batch and len(flat) > 1

        def find(points: torch.Tensor, which: torch.Tensor, radius: float) -> Hits:
            parts = [indexed_hits(points, shields, radius, tag) for tag, shields in sources]
            if intra:
                parts.append(batch_hits(points, rows[which], flat, radius, c.sequential))
            return Hits.concat(parts, flat.shape[1], flat.device)

        return find

    def _projected(self, flat: torch.Tensor) -> torch.Tensor:
        """SPELL's lambda * delta, then the rows with a shield around x0_hat projected
        from x0_hat + lambda * delta to the nearest point outside every shield (and in
        the clip box); rows already there keep lambda * delta exactly."""
        c = self.config
        everyone = torch.arange(len(flat), device=flat.device)
        hits = self._finder(flat, everyone)(flat, everyone, c.radius)
        delta = torch.zeros_like(flat)
        if c.intra_batch and len(flat) > 1:
            delta += intra_batch_delta(flat, c.radius, c.sequential)
        shields = hits.key % SOURCES != INTRA
        rows = hits.point[shields]
        z = hits.centre[shields].to(flat.dtype)
        delta.index_add_(0, rows, repulsion(flat[rows], z, c.radius))
        out = c.overcompensation * delta
        active = torch.unique(hits.point)
        if active.numel() == 0:
            return out
        target = flat[active].double() + out[active].double()
        result = project_out(target, self._finder(flat, active), c.radius, c.clip_box)
        moved = (result.points != target).any(1)
        out[active[moved]] = (result.points[moved] - flat[active[moved]].double()).to(out.dtype)
        stats = self.projection
        stats.corrected += active.numel()
        stats.moved += int(moved.sum())
        stats.infeasible += int((~result.feasible).sum())
        stats.extra += float((result.points - target).norm(dim=1).sum())
        return out

    def end_batch(self, x0: torch.Tensor, ctx: BatchContext) -> None:
        if not self.config.inter_batch:
            return
        if self.earlier is None:
            self.earlier = ExactShieldSet(dim=x0[0].numel(), device=x0.device)
        self.earlier.add(x0.float())
