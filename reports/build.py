"""`build_report(run_dir)`: every figure, grid and table of a scored run, and the
page that shows them, under RUN/report/. index.html is written last, so a page
that exists always points at files that exist."""

from __future__ import annotations

from pathlib import Path

from matplotlib.figure import Figure

from bench.atomic import atomic_write_text
from bench.errors import BenchError
from metrics.catalog import metric_info
from reports.axes import pareto_pairs
from reports.colors import method_colors, method_markers, shades
from reports.fronts import pareto_figure
from reports.grids import compare_grid_path, method_grid_path, prompt_grid_path, write_grids
from reports.html import FigureRef, Page, Section, TableRef, relative, render_page
from reports.hyper import sweep_figure
from reports.neighbours import Pair, write_neighbour_grids
from reports.rundata import RunData, load_run
from reports.scatter import scatter_figure
from reports.sparsity import sparsity_comparison, sparsity_figure
from reports.style import save_figure
from reports.sweeps import sort_configs
from reports.table_io import write_table
from reports.tables import all_tables
from reports.traces import TraceStats, trace_stats

GRID_PROMPTS = 10


def _save(fig: Figure, stem: Path, report: Path, caption: str, wide: bool = False) -> FigureRef:
    png, svg = save_figure(fig, stem)
    return FigureRef(relative(png, report), caption, relative(svg, report), wide=wide)


def config_colors(run: RunData, colors: dict[str, str]) -> dict[str, str]:
    """Each method-config in a shade of its method's colour, light to dark along the sweep."""
    out = {}
    for method, configs in run.methods().items():
        ordered = sort_configs(configs)
        out.update(zip([c.id for c in ordered], shades(colors[method], len(ordered)), strict=True))
    return out


def pareto_section(run: RunData, report: Path, colors: dict, markers: dict) -> Section:
    figures = []
    for x, y in pareto_pairs(run.metric_keys()):
        fig = pareto_figure(run, x, y, colors, markers)
        if fig is not None:
            caption = (
                f"{metric_info(y).name} against {metric_info(x).name}: one curve per "
                "method through its sweep, none as a star, non-dominated points ringed."
            )
            figures.append(_save(fig, report / "figures" / f"pareto-{y}-vs-{x}", report, caption))
    intro = (
        "Quality on x, diversity on y (the paper's Figure 4); "
        "the arrow at the top right points to better."
    )
    return Section("pareto", "Pareto fronts", intro, figures)


def sweeps_section(run: RunData, report: Path, colors: dict) -> Section:
    methods = sorted(run.methods(), key=lambda m: (m != "spell", m))
    figures = []
    for method in methods:
        fig = sweep_figure(run, method, colors[method])
        if fig is not None:
            caption = f"Every metric against {method}'s swept parameter; dashed: none."
            figures.append(
                _save(fig, report / "figures" / f"sweep-{method}", report, caption, True)
            )
    intro = "The effect of each method's hyperparameter (the paper's Figure 3)."
    return Section("sweeps", "Hyperparameter effect", intro, figures)


def correcting_stats(run: RunData) -> dict[str, TraceStats]:
    """Trace statistics of every method-config whose correction is ever non-zero."""
    found = {}
    for config in run.configs:
        stats = trace_stats(run.sample_files(config.id))
        if stats is not None and stats.corrects:
            found[config.id] = stats
    return found


def sparsity_section(run: RunData, report: Path, shade: dict[str, str]) -> Section:
    all_stats = correcting_stats(run)
    figures = []
    if len(all_stats) > 1:
        fig = sparsity_comparison(all_stats, shade)
        figures.append(
            _save(
                fig,
                report / "figures" / "sparsity-compare",
                report,
                "All correcting method-configs on shared axes.",
                True,
            )
        )
    for method_id, stats in all_stats.items():
        fig = sparsity_figure(stats, method_id, shade[method_id])
        figures.append(
            _save(
                fig,
                report / "figures" / f"sparsity-{method_id}",
                report,
                f"{method_id}: how strong, how often and how long it corrects.",
                True,
            )
        )
    intro = (
        "From the per-step traces of every method-config that corrects x0 (the paper's "
        "Figures 5 and 9-16); ratios are binned (about 6% resolution) so any run size fits "
        "in memory."
    )
    return Section("sparsity", "Sparsity of the correction", intro, figures)


def scatter_section(run: RunData, report: Path, truth, shade: dict[str, str]) -> Section:
    figures = []
    for prompt_id in run.prompt_ids[:GRID_PROMPTS]:
        fig = scatter_figure(run, truth, prompt_id, shade)
        if fig is not None:
            stem = report / "figures" / f"samples-{prompt_id}"
            caption = f"Prompt {prompt_id}: every method-config's samples, same seeds."
            figures.append(_save(fig, stem, report, caption, wide=True))
    intro = (
        "Each method-config's final samples over the true class density (grey contours); "
        "an orange ring marks a sample the method corrected. Image grids do not apply to "
        "2-D models: these plots take their place."
    )
    return Section("samples", "Samples over the true density", intro, figures)


def grids_section(run: RunData, report: Path) -> Section:
    ids = [c.id for c in run.configs]
    if not ids or not run.prompt_ids:
        return Section("grids", "Image grids")
    write_grids(run.run, max_prompts=GRID_PROMPTS, method_ids=ids, prompt_ids=run.prompt_ids)
    figures = []
    for prompt_id in run.prompt_ids[:GRID_PROMPTS]:
        path = relative(prompt_grid_path(run.run, prompt_id), report)
        figures.append(
            FigureRef(path, f"Prompt {prompt_id}: one row per method-config.", grid=True)
        )
    for method_id in ids:
        path = relative(method_grid_path(run.run, method_id), report)
        figures.append(FigureRef(path, f"{method_id}: one row per prompt.", grid=True))
    intro = (
        "The same seeds in every column under each method-config (the paper's Figures 1 "
        "and 6); an orange border marks a trajectory the method corrected."
    )
    links = [("all side by side", relative(compare_grid_path(run.run), report))]
    return Section("grids", "Image grids", intro, figures, links, flow=True)


def neighbours_section(run: RunData, report: Path) -> Section | None:
    """Figure 7: the baseline's samples nearest the protected set, and the same seeds
    under the config that shields it; None without a protected set or such a pair."""
    protocol = run.protocol.get("protection")
    found = run.run.read_neighbours()
    protecting = next((c.id for c in run.configs if c.params.get("protect")), None)
    baseline = next((c.id for c in run.configs if c.method == "none"), None)
    if not protocol or not found or protecting is None or baseline is None:
        return None
    copy_spaces = frozenset(protocol.get("copy_thresholds") or {})
    pair = Pair(baseline, protecting, found, copy_spaces)
    try:
        written = write_neighbour_grids(run.run, pair, protocol)
    except BenchError as err:
        return Section("neighbours", "Nearest protected images", f"Not drawn: {err}")
    figures = [
        FigureRef(
            relative(path, report),
            f"{space}: the {baseline} samples closest to the "
            f"protected set, and {protecting} on the same seeds.",
            grid=True,
        )
        for space, path in written
    ]
    intro = (
        "The paper's Figure 7, in every space the scorer searched: each row is one of the "
        f"{baseline} samples closest to a protected image (its distance, or cosine in a "
        f"copy space, and the image's index), then the same prompt and seed under {protecting}."
    )
    return Section("neighbours", "Nearest protected images", intro, figures, flow=True)


def samples_section(run: RunData, report: Path, shade: dict[str, str]) -> Section:
    """Image grids, or for a 2-D ground-truth model its samples over the true density."""
    truth = planar_truth(run)
    return (
        grids_section(run, report) if truth is None else scatter_section(run, report, truth, shade)
    )


def planar_truth(run: RunData):
    """The run model's true distribution when it lives in the plane, else None."""
    from bench.models.registry import ground_truth

    model = run.config.get("run", {}).get("model")
    truth = ground_truth(model) if isinstance(model, str) else None
    return truth if truth is not None and truth.dim == 2 else None


def _notes(run: RunData) -> list[str]:
    if not run.results:
        return [
            "No metrics.json in this run: run `bench score` for the Pareto fronts, the "
            "hyperparameter figures and the metric tables."
        ]
    if run.partial:
        planned = len(run.manifest.get("prompt_ids") or []) or "?"
        return [
            f"Partial: generation is unfinished, and every number here comes from the "
            f"{len(run.prompt_ids)} of {planned} prompts that every method finished "
            f"({', '.join(run.prompt_ids)}). Finish it with `{run.run.generate_command()}`, "
            "then run `bench score` and `bench report` again."
        ]
    return []


def build_report(run_dir: Path) -> Path:
    """Write RUN/report/ and return the path of its index.html."""
    run = load_run(Path(run_dir))
    if not run.configs:
        raise BenchError(f"{run.path} has no method-configs to report; run bench generate first")
    report = run.run.report
    methods = list(run.methods())
    colors, markers = method_colors(methods), method_markers(methods)
    tables = [
        TableRef(
            t, {fmt: relative(p, report) for fmt, p in write_table(t, report / "tables").items()}
        )
        for t in all_tables(run)
    ]
    sections = [
        pareto_section(run, report, colors, markers),
        sweeps_section(run, report, colors),
        sparsity_section(run, report, config_colors(run, colors)),
        samples_section(run, report, config_colors(run, colors)),
    ]
    neighbours = neighbours_section(run, report)
    if neighbours is not None:
        sections.append(neighbours)
    index = run.run.report_index
    atomic_write_text(index, render_page(Page(run, colors, tables, sections, _notes(run))))
    return index
