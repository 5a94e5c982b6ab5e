"""From per-prompt values to a run-level number: the mean over prompts and its bootstrap CI."""

from __future__ import annotations

import numpy as np

from metrics.bootstrap import bootstrap_mean_ci
from metrics.values import Undefined


def mean_over_prompts(
    per_prompt: dict[str, float | Undefined],
) -> tuple[float | Undefined, str | None]:
    """Mean over the prompts where the value is defined, and a note when some are not."""
    defined = [v for v in per_prompt.values() if not isinstance(v, Undefined)]
    if not defined:
        reasons = sorted({v.reason for v in per_prompt.values() if isinstance(v, Undefined)})
        why = "; ".join(reasons) or "no prompts"
        return Undefined(f"undefined for every prompt: {why}"), None
    note = None
    if len(defined) < len(per_prompt):
        note = f"mean over the {len(defined)} of {len(per_prompt)} prompts where it is defined"
    return float(np.mean(defined)), note


def prompt_ci(
    per_prompt: dict[str, float | Undefined], resamples: int, level: float, seed: int
) -> tuple[float, float] | Undefined:
    values = [v for v in per_prompt.values() if not isinstance(v, Undefined)]
    return bootstrap_mean_ci(np.asarray(values), resamples=resamples, level=level, seed=seed)
