"""Autoguidance (Karras et al., NeurIPS 2024, "Guiding a diffusion model with a bad
version of itself", arXiv 2406.02507).

The guiding prediction is the model's weaker network (smaller, shorter-trained) on the
prompt's own condition, not the unconditional model:
    x0 = x0_weak + w (x0 - x0_weak),
in x0 space; both networks see the prompt's condition. w = 1 is the main network
alone (the weak call is skipped, so it is bit-identical to `none` at w = 1); every
other w costs two network evaluations per step. The weak network is the adapter's
(`weak_x0`): digits' `digits_unet_weak`, toy2d's `toy2d-weak` MLP, an EDM2 network's
guide pickle; a model without one fails with a one-line error.
"""

from __future__ import annotations

import torch

from methods.base import BatchContext, DiversityMethod, MethodConfig, Step, param


class AutoguidanceConfig(MethodConfig):
    weight: float | None = param(None, "guidance weight w (unset: the run's w)", id="w", ge=0)


class Autoguidance(DiversityMethod):
    """Autoguidance: x0_weak + w (x0 - x0_weak), the model's weaker network as guide."""

    name = "autoguidance"
    Config = AutoguidanceConfig
    requires = frozenset({"weak"})

    def guidance(self, step: Step, w: float, ctx: BatchContext) -> float:
        return w if self.config.weight is None else self.config.weight

    def predictions(self, step: Step, w: float) -> tuple[str, ...]:
        return () if w == 1.0 else ("weak",)

    def combine(
        self, step: Step, preds: dict[str, torch.Tensor], w: float, ctx: BatchContext
    ) -> torch.Tensor:
        if "weak" not in preds:
            return preds["cond"]
        weak = preds["weak"]
        return weak + w * (preds["cond"] - weak)
