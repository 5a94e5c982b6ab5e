"""Particle guidance, latent variant (Corso et al., ICLR 2024; gcorso/particle-guidance).

The particles are the flattened x_t of the n samples of the batch (one prompt):
    d_ij = ||x_i - x_j||,  h_i = median_{j != i}(d_ij)^2 / log(n - 1),
    k_ij = exp(-d_ij^2 / h_i),  g_i = sum_{j != i} 2 k_ij (x_i - x_j) / h_i.
The reference updates epsilon after CFG, eps_i <- eps_i - coeff * s_t * g_i, while the
EDM noise level s_t = sigma_t / alpha_t is >= 1. Since x0 = (x_t - sigma_t eps) / alpha_t,
that is exactly x0_i <- x0_i + coeff * s_t^2 * g_i, the correction returned here.

The median of an even number of distances is the lower middle one (torch.median, as the
reference). A batch of 1 has no other particle: no correction. A batch of 2 makes
log(n - 1) = 0 (the reference's bandwidth is then infinite and its correction zero);
with fewer than 3 particles we use instead the median over all pairs / log(2), one h
for every particle. Where a median distance is 0 (identical particles) the kernel
weight k_ij / h_i is taken as 0, so equal particles do not push each other.
For pixel models whose scheduler clips x0, the correction is added after the clip
(DESIGN.md), where the reference, on latents, clips nothing.
"""

from __future__ import annotations

import math

import torch

from methods.base import BatchContext, DiversityMethod, MethodConfig, Step, param

ACTIVE_FROM = 1.0  # EDM noise level below which the reference switches PG off


class ParticleGuidanceConfig(MethodConfig):
    strength: float = param(30.0, "the reference's coeff (0 = off)", id="s", ge=0)


def bandwidths(dist: torch.Tensor) -> torch.Tensor:
    """h_i (n, 1) from the (n, n) distance matrix."""
    n = dist.shape[0]
    if n < 3:
        pairs = dist[~torch.eye(n, dtype=torch.bool, device=dist.device)]
        return (pairs.median() ** 2 / math.log(2)).expand(n, 1)
    others = dist[~torch.eye(n, dtype=torch.bool, device=dist.device)].view(n, n - 1)
    return others.median(dim=1, keepdim=True).values ** 2 / math.log(n - 1)


def kernel_gradient(x: torch.Tensor) -> torch.Tensor:
    """g_i = sum_{j != i} 2 k_ij (x_i - x_j) / h_i for the rows of x (n, D)."""
    n = x.shape[0]
    if n < 2:
        return torch.zeros_like(x)
    dist = torch.cdist(x, x, compute_mode="donot_use_mm_for_euclid_dist")
    dist.fill_diagonal_(0.0)
    h = bandwidths(dist)
    weight = torch.where(h > 0, 2.0 * torch.exp(-(dist**2) / h) / h, 0.0)
    weight.fill_diagonal_(0.0)
    return weight.sum(1, keepdim=True) * x - weight @ x


class ParticleGuidance(DiversityMethod):
    name = "pg"
    Config = ParticleGuidanceConfig

    def correct(self, step: Step, x_t, x0_hat, ctx: BatchContext) -> torch.Tensor | None:
        s_t = step.edm_sigma
        # s_t is infinite at a flow's t = 1, where x0_hat carries no weight: skip it.
        if self.config.strength == 0 or not ACTIVE_FROM <= s_t < math.inf or x_t.shape[0] < 2:
            return None
        flat = x_t.flatten(1)
        g = kernel_gradient(flat.to(torch.promote_types(flat.dtype, torch.float32)))
        delta = self.config.strength * s_t**2 * g
        return delta.view_as(x0_hat).to(x0_hat.dtype)
