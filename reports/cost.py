"""Generation cost per image (Table 5): wall time and network evaluations,
streamed from the sample files, or taken from metrics.json when none are left.

Wall times live beside each prompt's npz in `<prompt-id>.time.json` (they differ
from run to run, the npz does not); older runs kept them in the npz as `seconds`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Cost:
    seconds_mean: float | None
    seconds_std: float | None
    nfe_mean: float | None
    images: int | None


def cost_from_samples(files: Iterable[Path]) -> Cost | None:
    """Running sums over the files, so memory stays one prompt's worth."""
    timed = images = 0
    total = total_sq = nfe = 0.0
    for path in files:
        with np.load(path) as data:
            evals = np.asarray(data["nfe"], dtype=float)
            legacy = np.asarray(data["seconds"], dtype=float) if "seconds" in data.files else None
        seconds = legacy if legacy is not None else np.asarray(_wall_times(path), dtype=float)
        images += len(evals)
        nfe += evals.sum()
        timed += len(seconds)
        total += seconds.sum()
        total_sq += (seconds**2).sum()
    if images == 0:
        return None
    if timed == 0:
        return Cost(None, None, nfe / images, images)
    mean = total / timed
    var = max(total_sq / timed - mean**2, 0.0) * timed / (timed - 1) if timed > 1 else 0.0
    return Cost(mean, math.sqrt(var), nfe / images, images)


def time_file(npz: Path) -> Path:
    return npz.with_name(npz.name.removesuffix(".npz") + ".time.json")


def _wall_times(npz: Path) -> list[float]:
    path = time_file(npz)
    if not path.exists():
        return []
    return json.loads(path.read_text()).get("seconds_per_image", [])


def cost_from_result(result: dict[str, Any]) -> Cost | None:
    cost = result.get("cost")
    if not cost:
        return None
    return Cost(
        cost.get("seconds_per_image"),
        cost.get("seconds_per_image_std"),
        cost.get("nfe_per_image"),
        None,
    )
