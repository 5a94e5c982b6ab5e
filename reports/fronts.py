"""Pareto front figures (the paper's Figure 4): one curve per method through its
sweep points, `none` as a single point, non-dominated points ringed."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from metrics.catalog import metric_info
from reports.pareto import pareto_mask
from reports.rundata import MethodConfig, RunData
from reports.style import themed
from reports.sweeps import short_values, sort_configs, swept_params

FRONT_LABEL = "non-dominated"
MAX_POINT_LABELS = 12


@dataclass(frozen=True)
class Point:
    config: MethodConfig
    x: float
    y: float


def points(run: RunData, x: str, y: str) -> list[Point]:
    """Every method-config with a number on both axes (a null metric drops the point)."""
    found = []
    for config in run.configs:
        xv, yv = run.metric(config.id, x), run.metric(config.id, y)
        if xv is not None and yv is not None:
            found.append(Point(config, xv, yv))
    return found


def front(pts: list[Point], x: str, y: str) -> list[Point]:
    if not pts:
        return []
    arr = np.array([[p.x, p.y] for p in pts])
    directions = [metric_info(x).higher_is_better, metric_info(y).higher_is_better]
    return [p for p, keep in zip(pts, pareto_mask(arr, directions), strict=True) if keep]


def _draw_method(
    ax: Axes,
    method: str,
    pts: list[Point],
    color: str,
    marker: str,
    all_configs: list[MethodConfig],
) -> None:
    keys = swept_params(all_configs)
    if method == "none" or len(pts) == 1:
        size = 16 if method == "none" else 8
        ax.plot(
            [pts[0].x],
            [pts[0].y],
            marker=marker,
            ms=size,
            color=color,
            ls="none",
            mec="white",
            mew=0.8,
            label=method,
            zorder=4,
        )
        return
    order = {c.id: i for i, c in enumerate(sort_configs(all_configs, keys))}
    pts = sorted(pts, key=lambda p: order[p.config.id])
    label = f"{method} ({', '.join(keys)})" if keys else method
    ax.plot(
        [p.x for p in pts],
        [p.y for p in pts],
        marker=marker,
        ms=6,
        color=color,
        lw=1.6,
        label=label,
        zorder=3,
    )
    if keys and len(pts) <= MAX_POINT_LABELS:
        for p in pts:
            ax.annotate(
                short_values(p.config, keys),
                (p.x, p.y),
                textcoords="offset points",
                xytext=(7, 5),
                fontsize=7,
                color=color,
            )


def _better_direction(ax: Axes, x_up: bool, y_up: bool) -> None:
    """Where better lies, as an arrow in the title row (it can never hide a point)."""
    arrow = {(True, True): "↗", (False, True): "↖", (True, False): "↘", (False, False): "↙"}
    ax.set_title(f"better {arrow[(x_up, y_up)]}", loc="right", fontsize=11, color="0.35")


@themed
def pareto_figure(
    run: RunData, x: str, y: str, colors: dict[str, str], markers: dict[str, str]
) -> Figure | None:
    """y against x for every method-config; None when no config has both numbers."""
    pts = points(run, x, y)
    if not pts:
        return None
    xi, yi = metric_info(x), metric_info(y)
    fig = Figure(figsize=(6.0, 4.6), layout="constrained")
    ax = fig.add_subplot()
    methods = run.methods()
    for method, configs in methods.items():
        mine = [p for p in pts if p.config.method == method]
        if mine:
            _draw_method(ax, method, mine, colors[method], markers[method], configs)
    best = front(pts, x, y)
    ax.plot(
        [p.x for p in best],
        [p.y for p in best],
        ls="none",
        marker="o",
        ms=13,
        mfc="none",
        mec="black",
        mew=1.2,
        label=FRONT_LABEL,
        zorder=5,
    )
    _better_direction(ax, xi.higher_is_better, yi.higher_is_better)
    ax.set_xlabel(xi.label)
    ax.set_ylabel(yi.label)
    ax.set_title(f"{yi.name} vs {xi.name}")
    ax.margins(0.12)
    ax.legend(fontsize=8, loc="best")
    return fig
