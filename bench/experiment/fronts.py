"""Figure 4's check on the seed means: is each sweep point of the method under test
undominated by every point of the other methods (reports.pareto decides dominance)?

The pairs are `[claims] fronts` (default: reports.axes.pareto_pairs of the metric keys).
With `[claims] significance`, a point dominates another only when it does in the seed
means and the paired test over seeds finds it better on both axes (p < significance)."""

from __future__ import annotations

from dataclasses import dataclass, field

from metrics.catalog import metric_info
from reports.axes import pareto_pairs
from reports.pareto import dominates

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


def _points(agg: Aggregate, x: str, y: str) -> dict[str, tuple[str, Point]]:
    found = {}
    for c in agg.configs:
        mx, my = agg.metric(c.id, x).mean, agg.metric(c.id, y).mean
        if mx is not None and my is not None:
            found[c.id] = (c.method, (mx, my))
    return found


def _dominance(agg: Aggregate, x: str, y: str, pts: dict[str, tuple[str, Point]]):
    """dom(q, p): config q dominates config p (ids) on (x, y)."""
    up = (metric_info(x).higher_is_better, metric_info(y).higher_is_better)
    c = agg.exp.spec.claims

    def dom(q: str, p: str) -> bool:
        if not dominates(pts[q][1], pts[p][1], up):
            return False
        if c.significance is None:
            return True
        tests = (agg.paired(p, q, key).test(c.test) for key in (x, y))
        return all(t.supports(h, c.significance) for t, h in zip(tests, up, strict=True))

    return dom


def front_check(agg: Aggregate, x: str, y: str) -> FrontCheck:
    pts = _points(agg, x, y)
    dom = _dominance(agg, x, y, pts)
    tested = [i for i, (m, _) in pts.items() if m == agg.exp.method]
    others = [i for i, (m, _) in pts.items() if m != agg.exp.method]
    baselines = [i for i, (m, _) in pts.items() if m not in (agg.exp.method, agg.exp.baseline)]
    by = {t: [o for o in others if dom(o, t)] for t in tested}
    dominated = sum(any(dom(t, b) for t in tested) for b in baselines)
    return FrontCheck(
        x,
        y,
        len(tested),
        sum(not found for found in by.values()),
        len(baselines),
        dominated,
        {t: found for t, found in by.items() if found},
    )


def front_pairs(agg: Aggregate) -> list[tuple[str, str]]:
    """Figure 4's (x, y) pairs: `[claims] fronts`, else reports.axes.pareto_pairs."""
    fronts = agg.exp.spec.claims.fronts
    return [tuple(p) for p in fronts] if fronts else pareto_pairs(agg.metric_keys)


def front_checks(agg: Aggregate) -> list[FrontCheck]:
    """One check per Pareto pair of Figure 4."""
    return [front_check(agg, x, y) for x, y in front_pairs(agg)]
