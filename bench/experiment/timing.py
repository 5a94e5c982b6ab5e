"""Table 5 over seeds: time per image pooled over every image of every seed (from each
run's metrics.json cost), and per-seed time ratios against the baseline."""

from __future__ import annotations

import numpy as np

from .seeds import SeedRun, Seeds
from .stats import EMPTY, Paired, Stat, pooled


def pooled_cost(runs: Seeds, method_id: str) -> tuple[Stat, float | None]:
    """Seconds per image pooled over the images of every seed (mean ± std), and NFE per
    image; each seed's (images, mean, std) as its scoring measured them."""
    groups, nfe = [], 0.0
    for s in runs:
        cost = s.cost(method_id)
        if cost is None or cost.seconds_mean is None or not cost.images:
            continue
        groups.append((cost.images, cost.seconds_mean, cost.seconds_std))
        nfe += cost.images * (cost.nfe_mean or 0.0)
    seconds = pooled(groups)
    return seconds, (nfe / seconds.n if seconds.n else None)


def _mean_seconds(method_id: str):
    def value(s: SeedRun) -> float | None:
        cost = s.cost(method_id)
        return (cost.seconds_mean or None) if cost else None

    return value


def _median_seconds(method_id: str):
    def value(s: SeedRun) -> float | None:
        times = s.image_times(method_id)
        return float(np.median(times)) if len(times) else None

    return value


def mean_times(runs: Seeds, method_id: str, base_id: str) -> Paired:
    """Per seed: mean seconds per image of the baseline (a) and the method (b)."""
    return runs.pair(_mean_seconds(base_id), _mean_seconds(method_id))


def median_times(runs: Seeds, method_id: str, base_id: str) -> Paired:
    """Per seed: median seconds per image (robust to load spikes of a shared machine)."""
    return runs.pair(_median_seconds(base_id), _median_seconds(method_id))


def time_ratio(runs: Seeds, method_id: str, base_id: str | None) -> Stat:
    """Mean ± std over seeds of method / baseline mean seconds per image."""
    return mean_times(runs, method_id, base_id).ratios() if base_id else EMPTY


def median_time_ratio(runs: Seeds, method_id: str, base_id: str | None) -> Stat:
    """Mean ± std over seeds of method / baseline median seconds per image."""
    return median_times(runs, method_id, base_id).ratios() if base_id else EMPTY
