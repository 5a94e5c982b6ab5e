"""Figure builders on a small fabricated scored run: series, labels, files."""

import pytest
from matplotlib.figure import Figure

from metrics.catalog import metric_info
from reports.axes import pareto_pairs
from reports.colors import method_colors, method_markers
from reports.fronts import FRONT_LABEL, front, pareto_figure, points
from reports.hyper import sweep_figure
from reports.rundata import RunData, load_run
from reports.sparsity import sparsity_comparison, sparsity_figure
from reports.style import save_figure
from reports.synthetic import DEFAULT_CONFIGS, FakeConfig, make_run
from reports.traces import trace_stats

CONFIGS = DEFAULT_CONFIGS + [
    FakeConfig("pg-s8", "pg", {"strength": 8.0}, 0.0),
    FakeConfig("pg-s16", "pg", {"strength": 16.0}, 0.2),
]


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> RunData:
    path = make_run(
        tmp_path_factory.mktemp("report") / "run",
        prompts=3,
        samples=16,
        steps=10,
        configs=CONFIGS,
        nulls={"spell-r3-l1.6": ["recall"]},
    )
    return load_run(path)


@pytest.fixture(scope="module")
def styles(run):
    methods = list(run.methods())
    return method_colors(methods), method_markers(methods)


def legend_labels(fig: Figure) -> list[str]:
    return [t.get_text() for t in fig.axes[0].get_legend().get_texts()]


def test_colours_are_stable_and_distinct(run):
    colors = method_colors(run.methods())
    assert colors == method_colors(reversed(list(run.methods())))
    assert len(set(colors.values())) == len(colors)
    assert method_colors(["spell"])["spell"] == colors["spell"]


def test_the_four_pareto_pairs_of_figure_4(run):
    assert pareto_pairs(run.metric_keys()) == [
        ("precision", "recall"),
        ("density", "coverage"),
        ("class_score", "vendi"),
        ("fd_digits", "class_score"),
    ]


@pytest.mark.parametrize("x,y", [("precision", "recall"), ("fd_digits", "class_score")])
def test_pareto_figure_has_one_series_per_method_and_the_front(run, styles, x, y, tmp_path):
    fig = pareto_figure(run, x, y, *styles)
    labels = legend_labels(fig)
    assert labels == ["none", "spell (radius)", "pg (strength)", FRONT_LABEL]
    ax = fig.axes[0]
    assert metric_info(x).name in ax.get_xlabel() and metric_info(y).name in ax.get_ylabel()
    front_line = next(line for line in ax.lines if line.get_label() == FRONT_LABEL)
    assert len(front_line.get_xdata()) == len(front(points(run, x, y), x, y))
    png, svg = save_figure(fig, tmp_path / f"pareto-{y}-vs-{x}")
    assert png.stat().st_size > 0 and svg.read_text().startswith("<?xml")


def test_null_metric_drops_the_point_not_the_curve(run, styles):
    fig = pareto_figure(run, "precision", "recall", *styles)
    spell = next(line for line in fig.axes[0].lines if line.get_label().startswith("spell"))
    assert len(spell.get_xdata()) == 2  # r3 has no recall
    assert "spell-r3-l1.6" not in {p.config.id for p in points(run, "precision", "recall")}


def test_pareto_figure_is_none_without_numbers(run, styles):
    assert pareto_figure(run, "precision", "no_such_metric", *styles) is None


def test_sweep_figure_plots_every_metric_against_the_swept_parameter(run, styles):
    colors, _ = styles
    fig = sweep_figure(run, "spell", colors["spell"])
    visible = [ax for ax in fig.axes if ax.get_visible()]
    keys = run.metric_keys()
    assert [ax.get_title() for ax in visible] == [metric_info(k).short for k in keys]
    for ax in visible:
        assert ax.get_xlabel().startswith("radius")
        assert len(ax.containers) == 1  # one error-bar series: the radius sweep
        assert any(line.get_label() == "none" for line in ax.lines)
    recall = visible[keys.index("recall")].containers[0]
    assert len(recall.lines[0].get_xdata()) == 2  # the null recall is skipped


def test_sweep_figure_is_none_for_a_method_without_sweep(run, styles):
    assert sweep_figure(run, "none", styles[0]["none"]) is None


def test_sparsity_figures_from_traces(run, styles, tmp_path):
    stats = {c.id: trace_stats(run.sample_files(c.id)) for c in run.configs}
    correcting = {k: s for k, s in stats.items() if s.corrects}
    assert set(correcting) == {"spell-r1-l1.6", "spell-r2-l1.6", "spell-r3-l1.6", "pg-s16"}
    fig = sparsity_figure(correcting["spell-r2-l1.6"], "spell-r2-l1.6", "#0173b2")
    ratio, share, finish = fig.axes
    assert [line.get_label() for line in ratio.lines] == ["median", "max"]
    assert len(ratio.collections) == 2  # the two quantile bands
    assert len(share.lines) == 1 and len(finish.patches) == 10 + 1
    assert "(%)" in ratio.get_ylabel() and ratio.get_xlabel().startswith("t ")
    colors = {k: "#000000" for k in correcting}
    compare = sparsity_comparison(correcting, colors)
    assert all(len(ax.lines) == len(correcting) for ax in compare.axes)
    for path in save_figure(compare, tmp_path / "sparsity-compare"):
        assert path.exists()


def test_sweep_figure_groups_a_second_parameter_and_handles_list_values(tmp_path):
    cads = [
        FakeConfig(f"cads-m{m}-t{t}", "cads", {"mixture": m, "tau1": t}, 0.1)
        for m in (0.0, 0.001)
        for t in (0.6, 0.8, 0.9)
    ]
    ig = [
        FakeConfig(f"ig-{lo}-{hi}", "ig", {"interval": [lo, hi]}, 0.0)
        for lo, hi in ((0.1, 0.9), (0.2, 0.8), (0.3, 0.7))
    ]
    configs = [FakeConfig("none", "none"), *cads, *ig]
    run = load_run(make_run(tmp_path / "run", prompts=1, samples=4, steps=3, configs=configs))
    fig = sweep_figure(run, "cads", "#de8f05")
    ax = fig.axes[0]
    assert len(ax.containers) == 2  # one line per mixture value, tau1 on x
    assert ax.get_xlabel().startswith("tau1")
    assert [len(c.lines[0].get_xdata()) for c in ax.containers] == [3, 3]
    fig = sweep_figure(run, "ig", "#cc78bc")
    labels = [t.get_text() for t in fig.axes[0].get_xticklabels()]
    assert labels == ["[0.1, 0.9]", "[0.2, 0.8]", "[0.3, 0.7]"]
