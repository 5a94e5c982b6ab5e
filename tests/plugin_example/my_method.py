"""`mean-repel`: push each sample's x0 prediction away from its batch's mean.

While t >= `until`, every sample's guided prediction moves `strength` times its
offset from the mean prediction of its batch (the same prompt's samples).
"""

from __future__ import annotations

import torch

from methods.base import BatchContext, DiversityMethod, MethodConfig, Step, param


class MeanRepulsionConfig(MethodConfig):
    # `id=` names the parameter's part of the method-config id: mean-repel-s0.1-t0.5
    strength: float = param(0.1, "how far to step away from the mean", id="s", ge=0)
    until: float = param(0.5, "active while t >= until", id="t", ge=0, le=1)


class MeanRepulsion(DiversityMethod):
    name = "mean-repel"
    Config = MeanRepulsionConfig

    def correct(self, step: Step, x_t, x0_hat, ctx: BatchContext) -> torch.Tensor | None:
        if step.t < self.config.until or x0_hat.shape[0] < 2:
            return None
        return self.config.strength * (x0_hat - x0_hat.mean(dim=0, keepdim=True))
