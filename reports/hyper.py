"""Effect of a method's swept hyperparameter on every metric (the paper's Figure 3),
with the bootstrap intervals of metrics.json as error bars and `none` as a
dashed reference line."""

from __future__ import annotations

import json
import math

from matplotlib.axes import Axes
from matplotlib.figure import Figure

from metrics.catalog import metric_info
from reports.colors import shades
from reports.rundata import MethodConfig, RunData
from reports.style import themed
from reports.sweeps import (
    fmt_value,
    param_label,
    short_params,
    sort_configs,
    sort_value,
    swept_params,
)

PREFERRED_AXIS = ("radius", "strength", "guidance", "w")


def x_param(keys: list[str], configs: list[MethodConfig]) -> str:
    """The parameter on the x axis: a conventional one (SPELL's radius) if swept,
    else the one with the most distinct values."""
    for key in PREFERRED_AXIS:
        if key in keys:
            return key
    return max(keys, key=lambda k: len({repr(c.params.get(k)) for c in configs}))


def _groups(configs: list[MethodConfig], xkey: str, others: list[str]) -> dict[str, list]:
    """One line per combination of the other swept parameters, each in x order."""
    grouped: dict[str, list[MethodConfig]] = {}
    for config in configs:
        grouped.setdefault(short_params(config, others), []).append(config)
    return {label: sort_configs(group, [xkey]) for label, group in grouped.items()}


def _is_number(v: object) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _positions(configs: list[MethodConfig], xkey: str) -> tuple[dict[str, float], list | None]:
    """x of each config; categorical positions (with tick labels) for non-numbers."""
    values = [c.params.get(xkey) for c in configs]
    if all(_is_number(v) for v in values):
        return {c.id: float(c.params[xkey]) for c in configs}, None
    distinct = sorted({json.dumps(v): v for v in values}.values(), key=sort_value)
    keys = [json.dumps(v) for v in distinct]
    positions = {c.id: float(keys.index(json.dumps(c.params.get(xkey)))) for c in configs}
    return positions, [fmt_value(v) for v in distinct]


def _panel(
    ax: Axes, run: RunData, metric: str, groups: dict, xs: dict, colors: list[str], name: str
) -> None:
    for (label, configs), color in zip(groups.items(), colors, strict=True):
        rows = [(xs[c.id], run.metric(c.id, metric), run.interval(c.id, metric)) for c in configs]
        rows = [r for r in rows if r[1] is not None]
        if not rows:
            continue
        lower = [y - ci[0] if ci else 0.0 for _, y, ci in rows]
        upper = [ci[1] - y if ci else 0.0 for _, y, ci in rows]
        ax.errorbar(
            [r[0] for r in rows],
            [r[1] for r in rows],
            yerr=[lower, upper],
            fmt="-o",
            ms=4,
            capsize=3,
            color=color,
            label=label or name,
        )
    base_id = run.baseline_id
    baseline = run.metric(base_id, metric) if base_id else None
    if baseline is not None:
        ax.axhline(baseline, ls="--", lw=1.2, color="0.3", label="none")
        ci = run.interval(base_id, metric)
        if ci:
            ax.axhspan(ci[0], ci[1], color="0.3", alpha=0.1, lw=0)


def _metrics_of(run: RunData, configs: list[MethodConfig]) -> list[str]:
    return [k for k in run.metric_keys() if any(run.metric(c.id, k) is not None for c in configs)]


@themed
def sweep_figure(run: RunData, method: str, color: str) -> Figure | None:
    """One panel per metric; None when the method has no sweep or no metrics."""
    configs = run.methods().get(method, [])
    keys = swept_params(configs)
    metrics = _metrics_of(run, configs)
    if not keys or not metrics:
        return None
    xkey = x_param(keys, configs)
    groups = _groups(configs, xkey, [k for k in keys if k != xkey])
    xs, ticks = _positions(configs, xkey)
    ncols = min(4, len(metrics))
    nrows = math.ceil(len(metrics) / ncols)
    fig = Figure(figsize=(3.3 * ncols, 2.9 * nrows + 0.6), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax, metric in zip(axes, metrics, strict=False):
        _panel(ax, run, metric, groups, xs, shades(color, len(groups)), method)
        info = metric_info(metric)
        ax.set_title(info.short)
        ax.set_ylabel(f"{info.name} ({info.unit})", fontsize=8)
        ax.set_xlabel(param_label(configs[0], xkey), fontsize=8)
        if ticks is not None:
            ax.set_xticks(range(len(ticks)), ticks, rotation=30, fontsize=7)
    for ax in axes[len(metrics) :]:
        ax.set_visible(False)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=min(6, len(labels)), fontsize=8)
    fig.suptitle(f"{method}: effect of {xkey} (error bars: bootstrap interval)")
    return fig
