"""Samples over the true density, for 2-D ground-truth models (toy2d): per prompt, one
panel per method-config with the same seeds, the class density as filled contours
and each sample's final point; an orange ring marks a sample the method corrected,
as the border does in the image grids."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from bench.models.ground_truth import GroundTruth
from reports.grids import ORANGE
from reports.rundata import RunData
from reports.style import themed

GRID_POINTS = 160
PANELS_PER_ROW = 4


def plane_bounds(truth: GroundTruth) -> tuple[float, float]:
    """One square window around every class's components (3 standard deviations), the
    same for every prompt and panel; samples outside it are counted in the title."""
    mixture = truth.of_class(None)
    spread = np.sqrt(mixture.covariances.diagonal(axis1=1, axis2=2))
    extent = float(np.max(np.abs(mixture.means) + 3.0 * spread))
    return -extent, extent


def density_grid(truth: GroundTruth, label: int, lo: float, hi: float):
    axis = np.linspace(lo, hi, GRID_POINTS)
    xx, yy = np.meshgrid(axis, axis)
    grid = np.stack([xx.ravel(), yy.ravel()], axis=1)
    density = np.exp(truth.log_prob(grid, label)).reshape(xx.shape)
    return xx, yy, density


def _points(run: RunData, method_id: str, prompt_id: str) -> tuple[np.ndarray, np.ndarray]:
    """Final 2-D points and whether each sample was ever corrected."""
    data = run.run.load_samples(method_id, prompt_id, ("latents", "trace_active"))
    points = data["latents"].reshape(len(data["latents"]), -1)[:, :2].astype(np.float64)
    active = data.get("trace_active", np.zeros((len(points), 1), bool))
    return points, active.reshape(len(points), -1).any(axis=1)


@themed
def scatter_figure(
    run: RunData, truth: GroundTruth, prompt_id: str, colors: dict[str, str]
) -> Figure | None:
    """One prompt: a panel per method-config that completed it; None if none did."""
    ids = [c.id for c in run.configs if run.run.is_complete(c.id, prompt_id)]
    if not ids:
        return None
    label = int(prompt_id)
    shown = {m: _points(run, m, prompt_id) for m in ids}
    lo, hi = plane_bounds(truth)
    xx, yy, density = density_grid(truth, label, lo, hi)
    ncols = min(PANELS_PER_ROW, len(ids))
    nrows = -(-len(ids) // ncols)
    fig = Figure(figsize=(3.0 * ncols, 3.0 * nrows + 0.4), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    ring = tuple(c / 255 for c in ORANGE)
    for ax, method_id in zip(axes, ids, strict=False):
        points, corrected = shown[method_id]
        ax.contourf(xx, yy, np.sqrt(density), levels=12, cmap="Greys", alpha=0.7)
        ax.scatter(*points[~corrected].T, s=9, color=colors[method_id], linewidths=0)
        ax.scatter(
            *points[corrected].T, s=14, color=colors[method_id], edgecolors=[ring], linewidths=0.8
        )
        ax.set(xlim=(lo, hi), ylim=(lo, hi), aspect="equal", xticks=[], yticks=[])
        outside = int((np.abs(points) > hi).any(axis=1).sum())
        ax.set_title(method_id + (f" ({outside} outside)" if outside else ""), fontsize=8)
    for ax in axes[len(ids) :]:
        ax.set_visible(False)
    name = truth.class_names[label] if label < len(truth.class_names) else prompt_id
    fig.suptitle(f"Prompt {prompt_id} ({name}): samples over the true class density")
    return fig
