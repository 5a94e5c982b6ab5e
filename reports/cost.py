"""Generation cost per image (Table 5), as scoring measured it into metrics.json:
wall time (mean and standard deviation over images), network evaluations, and the
number of images those are over."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Cost:
    seconds_mean: float | None
    seconds_std: float | None
    nfe_mean: float | None
    images: int | None = None  # the images scoring counted (counts.n_generated)


def cost_from_result(result: dict[str, Any]) -> Cost | None:
    cost = result.get("cost")
    if not cost:
        return None
    images = (result.get("counts") or {}).get("n_generated")
    return Cost(
        cost.get("seconds_per_image"),
        cost.get("seconds_per_image_std"),
        cost.get("nfe_per_image"),
        None if images is None else int(images),
    )
