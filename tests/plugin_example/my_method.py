"""`mean-repel`: push each sample's x0 prediction away from its batch's mean.

While t >= `until`, every sample's guided prediction moves `strength` times its
offset from the mean prediction of its batch (the same prompt's samples).
"""

from __future__ import annotations

import torch
from pydantic import Field

from methods.base import BatchContext, DiversityMethod, MethodConfig, Step, format_number


class MeanRepulsionConfig(MethodConfig):
    strength: float = Field(0.1, ge=0, description="how far to step away from the mean")
    until: float = Field(0.5, ge=0, le=1, description="active while t >= until")


class MeanRepulsion(DiversityMethod):
    name = "mean-repel"
    Config = MeanRepulsionConfig

    @property
    def id(self) -> str:
        c = self.config
        return f"mean-repel-s{format_number(c.strength)}-t{format_number(c.until)}"

    def correct(self, step: Step, x_t, x0_hat, ctx: BatchContext) -> torch.Tensor | None:
        if step.t < self.config.until or x0_hat.shape[0] < 2:
            return None
        return self.config.strength * (x0_hat - x0_hat.mean(dim=0, keepdim=True))
