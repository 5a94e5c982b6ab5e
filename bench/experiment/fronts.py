"""Figure 4's check on the seed means: is each sweep point of the method under test
undominated by every point of the other methods (reports.pareto decides dominance)?"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from metrics.catalog import metric_info
from reports.axes import pareto_pairs
from reports.pareto import pareto_mask

from .aggregate import Aggregate

Point = tuple[float, float]


@dataclass
class FrontCheck:
    x: str
    y: str
    points: int  # sweep points of the method under test
    on_front: int  # of those, dominated by no point of another method
    baseline_points: int  # points of the other methods, the baseline method excluded
    baselines_dominated: int  # of those, dominated by some point of the tested method
    dominated_by: dict[str, list[str]] = field(default_factory=dict)  # tested id -> others

    @property
    def holds(self) -> bool:
        return self.points > 0 and self.on_front == self.points


def dominates(a: Point, b: Point, maximize: tuple[bool, bool]) -> bool:
    """a dominates b: b is not on the front of {b, a}."""
    return not pareto_mask(np.array([b, a], dtype=float), maximize)[0]


def _points(agg: Aggregate, x: str, y: str) -> dict[str, tuple[str, Point]]:
    found = {}
    for c in agg.configs:
        mx, my = agg.metric(c.id, x).mean, agg.metric(c.id, y).mean
        if mx is not None and my is not None:
            found[c.id] = (c.method, (mx, my))
    return found


def front_check(agg: Aggregate, x: str, y: str) -> FrontCheck:
    up = (metric_info(x).higher_is_better, metric_info(y).higher_is_better)
    pts = _points(agg, x, y)
    tested = {i: p for i, (m, p) in pts.items() if m == agg.exp.method}
    others = {i: p for i, (m, p) in pts.items() if m != agg.exp.method}
    baselines = [p for m, p in pts.values() if m not in (agg.exp.method, agg.exp.baseline)]
    by = {t: [o for o, q in others.items() if dominates(q, p, up)] for t, p in tested.items()}
    dominated = sum(any(dominates(p, b, up) for p in tested.values()) for b in baselines)
    return FrontCheck(
        x,
        y,
        len(tested),
        sum(not found for found in by.values()),
        len(baselines),
        dominated,
        {t: found for t, found in by.items() if found},
    )


def front_checks(agg: Aggregate) -> list[FrontCheck]:
    """One check per Pareto pair of Figure 4 (reports.axes.pareto_pairs)."""
    return [front_check(agg, x, y) for x, y in pareto_pairs(agg.metric_keys)]
