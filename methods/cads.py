"""CADS, condition-annealed sampling (Sadat et al., ICLR 2024; v0xie/sd-webui-cads).

With t = 1 - step / num_steps and
    gamma(t) = 1 if t <= tau1;  (tau2 - t) / (tau2 - tau1) if tau1 < t < tau2;  0 if t >= tau2,
every step noises the *clean* embedding y (never the previous step's noisy one):
    y_hat = sqrt(gamma) y + s sqrt(1 - gamma) n,   n ~ N(0, I) fresh per step and sample,
then optionally rescales it back to y's statistics and mixes:
    y_r = (y_hat - mean(y_hat)) / std(y_hat) * std(y) + mean(y),  y' = psi y_r + (1 - psi) y_hat.
mean and std are scalars over each sample's own embedding (std with Bessel's correction,
as torch.std in the reference), computed separately for each part of a packed condition
(SD3: the token embeddings and the pooled vector; padding is never noised). This departs
from the A1111 reference (v0xie/sd-webui-cads), which pools mean and std over the whole
batch tensor: there one sample's condition would depend on which other samples share its
batch. Where std(y_hat) is 0 the rescale is skipped. The noise of step k for sample i
comes from its own generator, seeded from (sample seed, step k), so it never touches the
sampler's noise stream and does not depend on what earlier steps drew. Where gamma = 1
the embedding is returned as it is. `noise_uncond` also noises the null embedding (as
the A1111 reference does).
"""

from __future__ import annotations

import torch
from pydantic import model_validator

from methods.base import BatchContext, ConditionPart, DiversityMethod, MethodConfig, Step, param


class CADSConfig(MethodConfig):
    tau1: float = param(0.6, "full condition for t <= tau1", id="t", ge=0)
    tau2: float = param(0.9, "pure noise condition for t >= tau2", id="", ge=0)
    noise_scale: float = param(0.25, "s, the scale of the added noise", id="s", ge=0)
    psi: float = param(1.0, "mix of the rescaled embedding (0: no rescale)", ge=0, le=1)
    noise_uncond: bool = param(False, "noise the unconditional embedding too", id="uncond")

    @model_validator(mode="after")
    def _ordered(self) -> CADSConfig:
        if self.tau1 > self.tau2:
            raise ValueError(f"tau1 must be <= tau2, got tau1={self.tau1}, tau2={self.tau2}")
        return self


def gamma(t: float, tau1: float, tau2: float) -> float:
    """The annealing schedule; the middle branch only runs where tau2 - tau1 > 0."""
    if t <= tau1:
        return 1.0
    if t >= tau2:
        return 0.0
    return (tau2 - t) / (tau2 - tau1)


def step_noise(shape: torch.Size, gens: list[torch.Generator], like: torch.Tensor) -> torch.Tensor:
    """One standard normal draw of `shape` per generator, stacked like `like`."""
    noise = torch.stack([torch.randn(shape, generator=g) for g in gens])
    return noise.to(like.device, like.dtype)


def anneal_parts(
    y: torch.Tensor,
    noise: torch.Tensor,
    g: float,
    s: float,
    psi: float,
    parts: tuple[ConditionPart, ...],
) -> torch.Tensor:
    """`anneal` on each part of each sample's flattened condition; the rest is kept."""
    if not parts:
        return anneal(y, noise, g, s, psi)
    flat, noise = y.flatten(1), noise.flatten(1)
    out = flat.clone()
    for part in parts:
        window = slice(part.start, part.stop)
        out[:, window] = anneal(flat[:, window], noise[:, window], g, s, psi)
    return out.view_as(y)


def anneal(y: torch.Tensor, noise: torch.Tensor, g: float, s: float, psi: float) -> torch.Tensor:
    """y_hat = sqrt(g) y + s sqrt(1 - g) n, rescaled per sample and mixed by psi."""
    y_hat = g**0.5 * y + s * (1.0 - g) ** 0.5 * noise
    if psi == 0:
        return y_hat
    dims = tuple(range(1, y.dim()))
    std_hat = y_hat.std(dim=dims, keepdim=True)
    rescaled = (y_hat - y_hat.mean(dim=dims, keepdim=True)) / std_hat.clamp_min(1e-12)
    rescaled = rescaled * y.std(dim=dims, keepdim=True) + y.mean(dim=dims, keepdim=True)
    rescaled = torch.where(std_hat > 0, rescaled, y_hat)
    return psi * rescaled + (1.0 - psi) * y_hat


class CADS(DiversityMethod):
    name = "cads"
    Config = CADSConfig

    def _noised(self, step: Step, y: torch.Tensor, ctx: BatchContext, stream: str):
        c = self.config
        g = gamma(step.progress_t, c.tau1, c.tau2)
        if g == 1.0:
            return y
        gens = ctx.side_generators(f"cads/{stream}/{step.index}")
        noise = step_noise(y.shape[1:], gens, y)
        return anneal_parts(y, noise, g, c.noise_scale, c.psi, ctx.condition_parts)

    def condition(self, step: Step, cond: torch.Tensor, ctx: BatchContext) -> torch.Tensor:
        return self._noised(step, cond, ctx, "cond")

    def uncondition(self, step: Step, uncond: torch.Tensor, ctx: BatchContext) -> torch.Tensor:
        if not self.config.noise_uncond:
            return uncond
        return self._noised(step, uncond, ctx, "uncond")
