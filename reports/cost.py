"""Generation cost per image (Table 5), as scoring measured it into metrics.json:
wall time (mean and standard deviation over images) and network evaluations."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Cost:
    seconds_mean: float | None
    seconds_std: float | None
    nfe_mean: float | None


def cost_from_result(result: dict[str, Any]) -> Cost | None:
    cost = result.get("cost")
    if not cost:
        return None
    return Cost(
        cost.get("seconds_per_image"),
        cost.get("seconds_per_image_std"),
        cost.get("nfe_per_image"),
    )
