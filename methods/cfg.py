"""A classifier-free guidance sweep: the run's w replaced by `weight` on every step.

Convention x0 = x0_u + w (x0_c - x0_u): w = 1 is the conditional model alone (the
sampler then skips the unconditional call), w = 0 the unconditional one. Guidance
rescale (Lin et al.) is not offered: it needs x0_c, which the hooks do not see.
"""

from __future__ import annotations

from pydantic import Field

from methods.base import BatchContext, DiversityMethod, MethodConfig, Step, format_number
from methods.registry import register


class CFGConfig(MethodConfig):
    weight: float = Field(1.0, ge=0, description="CFG weight w (1 = no guidance)")


@register
class CFGSweep(DiversityMethod):
    name = "cfg"
    Config = CFGConfig

    @property
    def id(self) -> str:
        return f"cfg-w{format_number(self.config.weight)}"

    def guidance(self, step: Step, w: float, ctx: BatchContext) -> float:
        return self.config.weight
