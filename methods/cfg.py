"""A classifier-free guidance sweep: the run's w replaced by `weight` on every step.

Convention x0 = x0_u + w (x0_c - x0_u): w = 1 is the conditional model alone (the
sampler then skips the unconditional call), w = 0 the unconditional one. Guidance
rescale (Lin et al.) is not offered: it needs x0_c, which the hooks do not see.
"""

from __future__ import annotations

from methods.base import BatchContext, DiversityMethod, MethodConfig, Step, param


class CFGConfig(MethodConfig):
    weight: float = param(1.0, "CFG weight w (1 = no guidance)", id="w", ge=0)


class CFGSweep(DiversityMethod):
    name = "cfg"
    Config = CFGConfig

    def guidance(self, step: Step, w: float, ctx: BatchContext) -> float:
        return self.config.weight
