"""Interval guidance (Kynkaanniemi et al., NeurIPS 2024; kynkaat/guidance-interval).

CFG weight w on a step iff the step's starting noise level lies in the interval, w = 1
(the conditional model alone) elsewhere; the sampler then skips the unconditional call,
which saves one network evaluation per sample and step. The interval is given
- in `t` (the scheduler's own t in [0, 1], 1 = noise), closed: lo <= t <= hi, as the
  SPELL paper's Table 4 ([0.1, 0.9] ... [0.1, 0.6]); or
- in `sigma` (the EDM noise level sigma_t / alpha_t), half-open: lo < s_t <= hi, as
  the IG paper (EDM2-XXL FID: (0.19, 1.61], w 2).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from methods.base import BatchContext, DiversityMethod, MethodConfig, Step, format_number


class IntervalConfig(MethodConfig):
    interval: tuple[float, float] = Field((0.1, 0.9), description="[lo, hi] of guidance")
    space: Literal["t", "sigma"] = Field("t", description="t: [lo, hi] in t; sigma: (lo, hi]")
    weight: float | None = Field(None, ge=0, description="w inside (unset: the run's w)")

    @model_validator(mode="after")
    def _ordered(self) -> IntervalConfig:
        lo, hi = self.interval
        if not 0 <= lo <= hi:
            raise ValueError(f"interval must satisfy 0 <= lo <= hi, got {list(self.interval)}")
        return self

    def contains(self, step: Step) -> bool:
        lo, hi = self.interval
        if self.space == "t":
            return lo <= step.t <= hi
        return lo < step.edm_sigma <= hi


class IntervalGuidance(DiversityMethod):
    name = "ig"
    Config = IntervalConfig

    @property
    def id(self) -> str:
        """`ig-t0.1-0.9`: the space letter runs into the interval (shorter than derived)."""
        c = self.config
        lo, hi = (format_number(v) for v in c.interval)
        base = f"ig-{c.space}{lo}-{hi}"
        return base if c.weight is None else f"{base}-w{format_number(c.weight)}"

    def guidance(self, step: Step, w: float, ctx: BatchContext) -> float:
        if not self.config.contains(step):
            return 1.0
        return w if self.config.weight is None else self.config.weight
