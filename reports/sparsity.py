"""Sparsity figures (the paper's Figures 5 and 9-16) from trace statistics:
(a) correction/score ratio over t, (b) share of trajectories with a non-zero
correction over t, (c) when the correction ends for good."""

from __future__ import annotations

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from reports.style import themed
from reports.traces import TraceStats

T_LABEL = "t (1 = noise → 0 = image)"
RATIO_LABEL = "‖α·δ‖ / ‖α·x̂₀ − xₜ‖ (%)"
SHARE_LABEL = "share of trajectories (%)"


def _time_axis(ax: Axes) -> None:
    ax.set_xlim(1.0, 0.0)  # generation runs left to right
    ax.set_xlabel(T_LABEL)


def _ratio_panel(ax: Axes, stats: TraceStats, color: str) -> None:
    q = {p: 100 * stats.ratio_quantile(p) for p in (0.05, 0.25, 0.5, 0.75, 0.95)}
    ax.fill_between(stats.t, q[0.05], q[0.95], color=color, alpha=0.15, lw=0, label="5–95%")
    ax.fill_between(stats.t, q[0.25], q[0.75], color=color, alpha=0.35, lw=0, label="25–75%")
    ax.plot(stats.t, q[0.5], color=color, lw=1.8, label="median")
    peak = np.where(stats.active > 0, 100 * stats.ratio_max, np.nan)
    ax.plot(stats.t, peak, color=color, lw=0.9, ls=":", label="max")
    ax.set_ylim(bottom=0)
    ax.set_ylabel(RATIO_LABEL)
    ax.set_title("(a) correction / score, corrected trajectories", fontsize=10)
    ax.legend(fontsize=7, loc="upper right")


def _active_panel(ax: Axes, stats: TraceStats, color: str, label: str | None = None) -> None:
    ax.plot(stats.t, 100 * stats.active_share(), color=color, lw=1.8, label=label)
    ax.set_ylim(0, 105)
    ax.set_ylabel(SHARE_LABEL)
    ax.set_title("(b) trajectories with non-zero correction", fontsize=10)


def _finish_panel(ax: Axes, stats: TraceStats, color: str) -> None:
    share = 100 * stats.finish / max(stats.trajectories, 1)
    spacing = np.median(np.abs(np.diff(stats.t))) if len(stats.t) > 1 else 0.02
    ax.bar(stats.finish_t(), share, width=0.9 * spacing, color=color, alpha=0.85)
    never = 100 * stats.never / max(stats.trajectories, 1)
    ended = 100 * stats.finish[-1] / max(stats.trajectories, 1)
    ax.text(
        0.02,
        0.97,
        f"never corrected: {never:.0f}%\ncorrected to the end: {ended:.0f}%",
        transform=ax.transAxes,
        va="top",
        fontsize=8,
    )
    ax.set_ylabel(SHARE_LABEL)
    ax.set_title("(c) t after which the correction stays zero", fontsize=10)


@themed
def sparsity_figure(stats: TraceStats, title: str, color: str) -> Figure:
    """Panels (a), (b), (c) for one method-config."""
    fig = Figure(figsize=(13.0, 3.8), layout="constrained")
    axes = fig.subplots(1, 3)
    _ratio_panel(axes[0], stats, color)
    _active_panel(axes[1], stats, color)
    _finish_panel(axes[2], stats, color)
    for ax in axes:
        _time_axis(ax)
    fig.suptitle(f"{title}: {stats.trajectories} trajectories, {len(stats.t)} steps")
    return fig


def _ended_by(stats: TraceStats) -> np.ndarray:
    """Share of trajectories whose correction has ended for good by each finish t."""
    return 100 * (stats.never + np.cumsum(stats.finish)) / max(stats.trajectories, 1)


@themed
def sparsity_comparison(all_stats: dict[str, TraceStats], colors: dict[str, str]) -> Figure:
    """Every correcting method-config on shared axes (the paper's Figures 15 and 16)."""
    fig = Figure(figsize=(13.0, 4.2), layout="constrained")
    axes = fig.subplots(1, 3)
    for method_id, stats in all_stats.items():
        color = colors[method_id]
        axes[0].plot(stats.t, 100 * stats.ratio_quantile(0.5), color=color, lw=1.6, label=method_id)
        _active_panel(axes[1], stats, color, method_id)
        axes[2].step(
            stats.finish_t(), _ended_by(stats), where="post", color=color, lw=1.6, label=method_id
        )
    axes[0].set_ylabel(RATIO_LABEL)
    axes[0].set_ylim(bottom=0)
    axes[0].set_title("(a) median correction / score", fontsize=10)
    axes[2].set_ylabel(SHARE_LABEL)
    axes[2].set_ylim(0, 105)
    axes[2].set_title("(c) correction ended for good by t", fontsize=10)
    for ax in axes:
        _time_axis(ax)
    handles, labels = axes[1].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=min(5, len(labels)), fontsize=8)
    fig.suptitle("Sparsity of the correction, all correcting method-configs")
    return fig
