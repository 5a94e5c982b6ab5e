"""SPELL in feature space (the SPELL paper's future work): shields are feature vectors.

With f_b = phi(x0_b) the features of sample b's prediction (ctx.feature_map: the
metrics' extractor on decode(x0), bench/feature_maps.py) and shields z_k, the wanted
feature change is SPELL's own repulsion
    g_b = lambda * sum_k relu(r / ||f_b - z_k|| - 1) (f_b - z_k),
and the correction aims at the least-norm delta_b with phi(x0_b + delta_b) = f_b + g_b.
Shields: the other samples' current features (intra-batch) and the features of
earlier batches' final outputs of the same prompt (inter-batch). A sample outside
every shield has g_b = 0 and gets exactly no correction (no feature work either
when no sample is inside one). No static protected set: that needs a set of feature
vectors, which `bench protect` does not build.

The solve: `newton_steps` damped Gauss-Newton steps. Each linearises phi at the
current point, J = dphi/dx (block diagonal: phi works row by row), runs `iterations`
of CGLS on min ||J u - residual|| (from u = 0 the iterates stay in the row space of J
and tend to the least-norm solution: exact after dim(features) iterations for a
linear phi; the residual falls monotonically), then keeps the first of u, u/2, u/4
that brings the true features closer to the goal (0 if none), so a correction never
moves the features away from it. An iteration costs one JVP (forward mode,
torch.func; attention in the math kernel, as the fused kernels have no forward-mode
derivative) and one VJP (of the step's one forward graph); J is never formed.
Why few iterations: the digits features' Jacobians are ill-conditioned (singular
values 5 down to 1e-5), so the exact least-norm solution is huge and overshoots in
the nonlinear phi; truncated CGLS plus re-linearisation does better. Measured on
digits (batch 8, 50 steps, the feature distance left to the goal over ||g||,
median / 90%): 4 iterations x 1 step 0.49 / 0.82, 16 x 1 0.71 / 0.94, 4 x 2 (the
default) 0.33 / 0.65, 4 x 4 0.24 / 0.50 at twice the cost. The radius defaults to
the feature space's suggestion (`FeatureMap.radius`: 1.5 for digits, the same
quantile of nearest-neighbour distances of plain samples as SPELL's pixel r = 2;
0.02 for toy2d, SPELL's own toy2d radius as the points are the features; none for
DINOv2, where the radius must be set).

`self.seconds` totals the time of the feature work (correct and end_batch) over the
instance's life and `self.calls` counts corrections, for reporting per-step cost.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import torch
from torch.nn.attention import SDPBackend, sdpa_kernel

from bench.shields import ExactShieldSet, shield_delta
from bench.shields.repel import repulsion_weight, row_norms
from methods.base import BatchContext, DiversityMethod, MethodConfig, PromptContext, Step, param

# Squared relative size of J^T residual below which a row's solve counts as converged.
CONVERGED = 1e-14
BACKTRACK = (1.0, 0.5, 0.25)


class SpellFeatureConfig(MethodConfig):
    radius: float | None = param(
        None, "shield radius r in feature space (unset: the space's suggestion)", id="r", gt=0
    )
    overcompensation: float = param(1.0, "lambda, scales the feature change", id="l", gt=0)
    iterations: int = param(4, "CGLS iterations per Gauss-Newton step", ge=1)
    newton_steps: int = param(2, "Gauss-Newton steps (linearisations) per correction", ge=1)
    intra_batch: bool = param(True, "repel from the other samples of the batch", id="nointra")
    inter_batch: bool = param(True, "repel from earlier batches' final outputs", id="nointer")


def pairwise_repulsion(feats: torch.Tensor, radius: float) -> torch.Tensor:
    """Sum over b' != b of the repulsion of f_b from f_b', from explicit differences
    (a sample's own difference is 0, which repulsion_weight gives weight 0)."""
    diff = feats[:, None, :] - feats[None, :, :]
    weight = repulsion_weight(row_norms(diff), radius).to(feats.dtype)
    return torch.bmm(weight[:, None, :], diff)[:, 0]


def _dot(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return (a * b).flatten(1).sum(1)


def _rows(v: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return v.view(-1, *([1] * (like.dim() - 1)))


def cgls(phi: Callable, x, vjp_fn: Callable, residual, iterations: int) -> torch.Tensor:
    """u minimising ||J u - residual|| row by row, J = dphi/dx at x (vjp_fn its VJP):
    CGLS from u = 0, so the iterates stay in the row space of J and tend to the
    least-norm least-squares solution; rows converge and stop independently."""
    s = vjp_fn(residual)[0]
    p, gamma = s, _dot(s, s)
    tol = CONVERGED * gamma
    u = torch.zeros_like(x)
    for k in range(iterations):
        q = torch.func.jvp(phi, (x,), (p,))[1].detach()
        qq = _dot(q, q)
        live = (gamma > tol) & (qq > 0)
        alpha = torch.where(live, gamma / qq.clamp_min(1e-30), 0.0)
        u = u + _rows(alpha, u) * p
        if k + 1 == iterations or not live.any():
            break
        residual = residual - alpha[:, None] * q
        s = vjp_fn(residual)[0]
        gamma_next = _dot(s, s)
        beta = torch.where(live, gamma_next / gamma.clamp_min(1e-30), 0.0)
        p, gamma = s + _rows(beta, s) * p, gamma_next
    return u.detach()


def backtrack(phi: Callable, x, u, goal, before: torch.Tensor) -> torch.Tensor:
    """Per row the first of u, u/2, u/4 that brings phi(x + .) closer to `goal` than
    `before` (the distance at x), or 0: a step never moves the features away."""
    scale = torch.zeros_like(before)
    with torch.no_grad():
        for t in BACKTRACK:
            err = (phi(x + t * u) - goal).norm(dim=1)
            scale = torch.where((scale == 0) & (err < before), t, scale)
            if (scale > 0).all():
                break
    return _rows(scale.to(u.dtype), u) * u


def gauss_newton(phi: Callable, x: torch.Tensor, goal: torch.Tensor, c) -> torch.Tensor:
    """delta with phi(x + delta) ~ goal: damped Gauss-Newton steps, each a CGLS solve
    of the linearised system and a backtracking check on the true features."""

    def flat(z: torch.Tensor) -> torch.Tensor:
        return phi(z).flatten(1)

    with torch.inference_mode(False), torch.enable_grad(), sdpa_kernel(SDPBackend.MATH):
        x, goal = x.clone(), goal.clone()
        delta = torch.zeros_like(x)
        for _ in range(c.newton_steps):
            feats, vjp_fn = torch.func.vjp(flat, x + delta)
            residual = goal - feats.detach()
            u = cgls(flat, x + delta, vjp_fn, residual.to(feats.dtype), c.iterations)
            delta = delta + backtrack(flat, x + delta, u, goal, residual.norm(dim=1))
    return delta


def feature_map_of(ctx: BatchContext, method: str) -> Callable:
    if ctx.feature_map is None:
        raise ValueError(f"{method} needs ctx.feature_map (set for uses_features methods)")
    return ctx.feature_map


class SpellFeature(DiversityMethod):
    name = "spell-feature"
    Config = SpellFeatureConfig
    uses_features = True

    def __init__(self, config: SpellFeatureConfig | None = None) -> None:
        super().__init__(config)
        self.earlier: ExactShieldSet | None = None
        self.seconds = 0.0
        self.calls = 0

    def begin_prompt(self, ctx: PromptContext) -> None:
        self.earlier = None

    def radius(self, phi: Callable) -> float:
        r = self.config.radius if self.config.radius is not None else getattr(phi, "radius", None)
        if r is None:
            space = getattr(phi, "space", "given")
            raise ValueError(f"spell-feature: set radius (the {space} feature space has none)")
        return r

    def correct(self, step: Step, x_t, x0_hat, ctx: BatchContext) -> torch.Tensor | None:
        start = time.perf_counter()
        try:
            return self._correct(x0_hat, feature_map_of(ctx, self.name))
        finally:
            self.seconds += time.perf_counter() - start
            self.calls += 1

    def _correct(self, x0_hat: torch.Tensor, phi: Callable) -> torch.Tensor | None:
        c, dtype = self.config, torch.promote_types(x0_hat.dtype, torch.float32)
        radius = self.radius(phi)
        feats = phi(x0_hat.to(dtype)).flatten(1).to(dtype)
        push = torch.zeros_like(feats)
        if c.intra_batch and feats.shape[0] > 1:
            push += pairwise_repulsion(feats, radius)
        if c.inter_batch and self.earlier is not None:
            push += shield_delta(feats, self.earlier, radius)
        active = (push != 0).any(1)
        if not active.any():
            return None
        x = x0_hat[active].to(dtype)
        goal = feats[active] + c.overcompensation * push[active]
        delta = torch.zeros(x0_hat.shape, dtype=dtype, device=x0_hat.device)
        delta[active] = gauss_newton(phi, x, goal, c)
        return delta.to(x0_hat.dtype)

    def end_batch(self, x0: torch.Tensor, ctx: BatchContext) -> None:
        if not self.config.inter_batch:
            return
        start = time.perf_counter()
        dtype = torch.promote_types(x0.dtype, torch.float32)
        feats = feature_map_of(ctx, self.name)(x0.to(dtype)).flatten(1).float()
        if self.earlier is None:
            self.earlier = ExactShieldSet(dim=feats.shape[1], device=feats.device)
        self.earlier.add(feats)
        self.seconds += time.perf_counter() - start
