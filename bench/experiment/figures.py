"""The experiment's figures, drawn by the report's own builders from the seed means
(Figures 3 and 4) and from one seed's traces (Figure 5), saved with reports.style."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from matplotlib.figure import Figure

from reports.build import config_colors
from reports.colors import method_colors, method_markers
from reports.fronts import pareto_figure
from reports.hyper import sweep_figure
from reports.rundata import RunData
from reports.sparsity import sparsity_comparison, sparsity_figure
from reports.style import save_figure, theme
from reports.traces import TraceStats, trace_stats

from .aggregate import Aggregate, sweep_param
from .fronts import front_pairs
from .seeds import SeedRun


@dataclass
class Figures:
    """The PNGs the page links to (an SVG beside each)."""

    sweep: Path | None = None
    pareto: list[tuple[str, str, Path]] = field(default_factory=list)
    sparsity: Path | None = None
    sparsity_compare: Path | None = None


def _save(fig: Figure, stem: Path) -> Path:
    return save_figure(fig, stem)[0]


def sweep_png(agg: Aggregate, means: RunData, colors: dict, folder: Path) -> Path | None:
    """Figure 3: every metric against the tested method's swept parameter."""
    method, param = agg.exp.method, sweep_param(agg)
    fig = sweep_figure(means, method, colors[method]) if method in colors and param else None
    if fig is None:
        return None
    with theme():
        fig.suptitle(
            f"{agg.exp.label}: every metric against its {param} "
            f"(mean ± std over {len(agg.seeds)} seeds)"
        )
    return _save(fig, folder / f"figure3-{method}-{param}")


def pareto_pngs(
    means: RunData, n: int, colors: dict, folder: Path, pairs: list[tuple[str, str]]
) -> list:
    """Figure 4: one front per Pareto pair, on the seed means."""
    found = []
    markers = method_markers(list(means.methods()))
    for x, y in pairs:
        fig = pareto_figure(means, x, y, colors, markers)
        if fig is not None:
            with theme():
                fig.axes[0].set_title(f"{fig.axes[0].get_title()} (mean of {n} seeds)")
            found.append((x, y, _save(fig, folder / f"figure4-pareto-{y}-vs-{x}")))
    return found


def sparsity_run(agg: Aggregate) -> SeedRun | None:
    """The seed whose traces Figure 5 draws (`sparsity_seed`, else the first)."""
    wanted = agg.exp.spec.experiment.sparsity_seed
    wanted = agg.seeds.runs[0].seed if wanted is None else wanted
    return next((s for s in agg.seeds if s.seed == wanted), None)


def _correcting(seed: SeedRun, ids: list[str]) -> dict[str, TraceStats]:
    stats = {i: trace_stats(seed.run.sample_files(i)) for i in ids}
    return {i: s for i, s in stats.items() if s is not None and s.corrects}


def sparsity_pngs(agg: Aggregate, out: Figures, folder: Path) -> None:
    """Figure 5: the tested default's traces, and every sweep point side by side."""
    seed = sparsity_run(agg)
    ids = [c.id for c in agg.of_method(agg.exp.method)]
    if seed is None or not ids:
        return
    shade = config_colors(seed.run, method_colors(list(seed.run.methods())))
    stats = _correcting(seed, ids)
    if agg.tested in stats:
        title = f"{agg.tested}, seed {seed.seed}"
        fig = sparsity_figure(stats[agg.tested], title, shade[agg.tested])
        out.sparsity = _save(fig, folder / "figure5-sparsity")
    if len(stats) > 1:
        out.sparsity_compare = _save(
            sparsity_comparison(stats, shade), folder / "figure5-sparsity-radii"
        )


def draw_figures(agg: Aggregate, folder: Path) -> Figures:
    folder.mkdir(parents=True, exist_ok=True)
    means = agg.means()
    colors = method_colors(list(means.methods()))
    out = Figures(sweep_png(agg, means, colors, folder))
    out.pareto = pareto_pngs(means, len(agg.seeds), colors, folder, front_pairs(agg))
    sparsity_pngs(agg, out, folder)
    return out
