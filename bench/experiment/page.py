"""The results page: one markdown section per table or figure of the paper, each from
the seed statistics; the protocol states the machine from the runs' manifests."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.environment import describe_machine
from bench.run_dir import RunDir
from metrics.catalog import metric_info
from reports.table_io import pipe_table, to_pipe_table

from . import tables
from .aggregate import Aggregate, sweep_param
from .claims import Claim, verdict
from .figures import Figures, sparsity_run
from .fronts import FrontCheck
from .markdown import image
from .protection import ProtectionRow, protected_items, split_name
from .sparsity import MARKERS_T, SparsityStats
from .stats import fmt, stat


@dataclass
class PageInput:
    agg: Aggregate
    figures: Figures
    fronts: list[FrontCheck]
    sparsity: list[SparsityStats]
    claims: list[Claim]
    protection: list[ProtectionRow]
    wall: dict[str, Any]

    @property
    def n(self) -> int:
        return len(self.agg.seeds)

    @property
    def label(self) -> str:
        return self.agg.exp.label

    def headers(self, first: list[str]) -> list[str]:
        return first + [metric_info(k).short for k in self.agg.metric_keys]

    def cells(self, method_id: str) -> list[str]:
        return [self.agg.metric(method_id, k).text() for k in self.agg.metric_keys]


def machines(agg: Aggregate) -> str:
    """Every distinct machine the seeds' runs were made on, from their manifests."""
    found = [describe_machine(s.run.manifest.get("hardware") or {}) for s in agg.seeds]
    found += [describe_machine(s.run.manifest.get("hardware") or {}) for s in agg.protect]
    return "; and ".join(dict.fromkeys(found))


def _run_settings(agg: Aggregate) -> tuple[dict, dict]:
    first = agg.seeds.runs[0].run
    return first.config.get("run", {}), first.manifest


def _protection_line(p: PageInput) -> list[str]:
    spec = p.agg.exp.spec.protection
    if spec is None:
        return []
    shown = ", ".join(
        f"{k} = {json.dumps(v)}" for k, v in spec.method_params(p.agg.exp.method).items()
    )
    if spec.points:
        return [
            f"- Protection (Table 2): r = {spec.radius:g}, exact nearest neighbour, L2 in the "
            f"model's {p.agg.shield_dim}-D point space, against {p.agg.shield_count} of the "
            f"points the toy2d MLP was trained on (`{spec.source}`: a class-balanced subset, "
            f"seed {spec.subset_seed}, of bench.train_toy2d.training_data with the recipe's "
            f"size and seed), stored once as a shield set; {p.label} config: {shown}."
        ]
    where = (
        f"the digits `{spec.split}` split"
        if spec.source == f"digits-{spec.split}"
        else f"`{spec.source}`"
    )
    return [
        f"- Protection (Table 2): r = {spec.radius:g}, exact nearest neighbour, L2 in the "
        f"model's [-1, 1] pixel space ({p.agg.shield_dim} values), against the "
        f"{p.agg.shield_count} images of {where}, stored once as a shield set; "
        f"{p.label} config: {shown}."
    ]


def _budget_lines(p: PageInput) -> list[str]:
    cfg, manifest = _run_settings(p.agg)
    sized = p.agg.exp.spec.experiment.sized_for
    wall = p.wall
    return [
        f"- Reduced protocol against the paper: {p.n} seeds (the paper: 5), "
        f"{cfg.get('samples')} samples per class (the paper: up to 128 per prompt), "
        f"{manifest.get('steps')} steps, and short sweeps"
        + (f", to fit {sized}." if sized else "."),
        f"- Machine (from the runs' manifests): {machines(p.agg)}; torch threads: "
        f"{cfg.get('threads')}. Wall times carry the noise of anything else running on it. "
        f"Total experiment wall time: {wall['seconds']:.0f} s over {wall['invocations']} "
        f"invocation(s) that did work (generation {wall['generate']:.0f} s, scoring "
        f"{wall['score']:.0f} s, per-run reports {wall['report']:.0f} s).",
        "",
    ]


def metrics_lines(agg: Aggregate, k: Any) -> list[str]:
    """What the numbers are: the digits scorer's, or the exact metrics of a model whose
    true distribution is known (metrics.json's protocol "exact")."""
    exact = agg.seeds.runs[0].run.protocol.get("exact")
    if not exact:
        return [
            f"- Metrics: the run's `bench score` (per-class precision/recall/density/coverage "
            f"with k = {k}, Vendi on the digits-classifier features, averaged over the "
            "classes; Fréchet distances over all images; the class score) against the "
            "held-out 30% of the digits."
        ]
    lines = [
        f"- Metrics: the run's `bench score`, exact against the true distribution "
        f"(`{exact.get('truth')}`), per class and averaged over the classes: "
        + "; ".join(f"`{key}`: {text}" for key, text in exact.get("definitions", {}).items())
        + f". Component of a sample: {exact.get('hit')}. `exact_precision`, "
        f"`exact_recall`, `exact_density`, `exact_coverage` (k = {k}) and `exact_vendi` are "
        f"measured against {exact.get('reference')}.",
    ]
    return lines + _expectation_line(agg)


def _expectation_line(agg: Aggregate) -> list[str]:
    """The true distribution's own values (i.i.d. expectations), beside the tables."""
    base = agg.base or next(iter(agg.defaults.values()), None)
    keys = [k for k in agg.seeds.runs[0].run.metric_keys() if k.endswith("_iid")]
    keys += [k for k in ("true_mode_entropy",) if k in agg.seeds.runs[0].run.metric_keys()]
    if base is None or not keys:
        return []
    shown = ", ".join(f"`{k}` = {fmt(agg.metric(base, k).mean)}" for k in keys)
    return [f"- What i.i.d. samples of the true distribution give (expectations): {shown}."]


def protocol(p: PageInput) -> list[str]:
    agg = p.agg
    cfg, manifest = _run_settings(agg)
    k = agg.seeds.runs[0].run.protocol.get("prdc", {}).get("k", "n/a")
    lines = [
        "## Protocol",
        "",
        f"- Model: `{cfg.get('model')}`, prompts: {len(agg.seeds.runs[0].run.prompt_ids)} "
        f"classes, {cfg.get('samples')} samples per class, batch size {cfg.get('batch_size')}, "
        f"{manifest.get('steps')} steps (`{cfg.get('scheduler')}` scheduler), CFG weight "
        f"{manifest.get('guidance')}.",
        f"- Seeds: {', '.join(str(s.seed) for s in agg.seeds)} ({p.n} runs, each "
        "with every method-config on the same noise); every number below is the mean ± std "
        "(sample std, ddof = 1) over the seeds unless said otherwise.",
        *metrics_lines(agg, k),
        "- Method sweeps (`[method.*]` of the experiment file):",
    ]
    for method, params in agg.exp.spec.method.items():
        if method in cfg.get("methods", []):
            shown = ", ".join(f"{k} = {json.dumps(v)}" for k, v in params.items())
            lines.append(f"  - {method}: {shown}")
    defaults = ", ".join(f"{m}: `{i}`" for m, i in agg.defaults.items())
    lines.append(f"- Default configs (Table 1 and Table 5): {defaults}.")
    return lines + _protection_line(p) + _budget_lines(p)


def header(p: PageInput) -> list[str]:
    exp = p.agg.exp
    model = _run_settings(p.agg)[0].get("model")
    return [
        f"# {p.label}'s experiments on the {model} model (`{exp.name}`)",
        "",
        f"Generated by `bench experiment {exp.source.name}` "
        "(`bench.experiment.run_experiment`); do not edit by hand. Each section reproduces "
        f"one table or figure of the SPELL paper on the embedded {model} model.",
        "",
    ]


def _verdict_rule(p: PageInput) -> list[str]:
    c = p.agg.exp.spec.claims
    if c.significance is None:
        return [
            "Each verdict below is computed from the numbers in the tables that follow "
            "(comparisons of the seed means; thresholds from `[claims]` of the experiment "
            "file)."
        ]
    test = {
        "sign": "the exact two-sided sign test (seeds where the two are equal are dropped; "
        "the count of seeds where b > a among the others is Binomial(n, 1/2) under the "
        "null; p from math.comb)",
        "bootstrap": "a paired bootstrap of the mean difference (10,000 resamples of the "
        "seeds, two-sided percentile p-value)",
    }[c.test]
    return [
        f"Each verdict below is a paired comparison over the {p.n} seeds (every "
        f"method-config of a seed shares its noise): per seed, the difference between the "
        f"two method-configs (or between a seed's statistic and the threshold of "
        f"`[claims]`), tested with {test}. A comparison holds when the seeds lean the right "
        f"way and p < {c.significance:g}; a claim holds when all of its comparisons do. "
        "A relative cost of at most c is tested as the tested config against (1 - c) × "
        "the baseline per seed (non-inferiority); 'within a few %' as the per-seed time "
        "ratio below 1 + tol and above 1 - tol. The paired mean differences, seed counts "
        "and p-values are in each line, and Table 1 has a p-value row.",
    ]


def claims_section(p: PageInput) -> list[str]:
    model = _run_settings(p.agg)[0].get("model")
    out = [f"## Claims of the paper, checked on {model}", "", *_verdict_rule(p), ""]
    out += [f"- {c.title}: {verdict(c.holds)} {c.text}" for c in p.claims]
    return out + [""]


def table1(p: PageInput) -> list[str]:
    agg, label, base, tested = p.agg, p.label, p.agg.base, p.agg.tested
    out = [f"## Table 1: {agg.exp.baseline} vs {label} (mean ± std over {p.n} seeds)", ""]
    table = tables.defaults(agg)
    if table is None:
        return out
    out += [to_pipe_table(table), ""]
    out += ["Per seed (the `metrics.json` of each run):", ""]
    names = ((agg.exp.baseline, base), (label, tested))
    seed_rows = [
        [str(s.seed), name, *(fmt(s.metric(mid, k)) for k in agg.metric_keys)]
        for s in agg.seeds
        for name, mid in names
    ]
    return out + [pipe_table(p.headers(["Seed", "Method"]), seed_rows), ""]


def figure3(p: PageInput) -> list[str]:
    agg, label, param = p.agg, p.label, sweep_param(p.agg)
    out = [f"## Figure 3: {label}'s {param or 'sweep'} (mean ± std over {p.n} seeds)", ""]
    if p.figures.sweep is not None:
        out += image(f"{label} {param} sweep", p.figures.sweep, agg.exp.results)
    configs = agg.of_method(agg.exp.method)
    if not configs or param is None:
        return out
    ordered = sorted(configs, key=lambda c: float(c.params.get(param, 0)))
    rows = [[f"{c.params.get(param)}", f"`{c.id}`", *p.cells(c.id)] for c in ordered]
    if agg.base:
        rows.append([agg.exp.baseline, f"`{agg.base}`", *p.cells(agg.base)])
    return out + [pipe_table(p.headers([param.capitalize(), "Config"]), rows), ""]


def _front_row(f: FrontCheck) -> list[str]:
    dominated = "; ".join(
        f"`{tid}` by " + ", ".join(f"`{b}`" for b in found) for tid, found in f.dominated_by.items()
    )
    return [
        f"{metric_info(f.y).name} vs {metric_info(f.x).name}",
        f"{f.on_front}/{f.points}",
        f"{f.baselines_dominated}/{f.baseline_points}",
        "yes" if f.holds else "no",
        dominated or "-",
    ]


def figure4(p: PageInput) -> list[str]:
    agg, label = p.agg, p.label
    out = [f"## Figure 4: Pareto fronts (seed means over {p.n} seeds)", ""]
    for x, y, path in p.figures.pareto:
        out += image(f"{metric_info(y).name} vs {metric_info(x).name}", path, agg.exp.results)
    if p.fronts:
        headers = [
            "Front",
            f"{label} points undominated by baselines",
            f"Baseline points dominated by {label}",
            f"{label} on or beyond the front",
            f"Dominated {label} points (by)",
        ]
        out += [pipe_table(headers, [_front_row(f) for f in p.fronts]), ""]
    out += ["Every sweep point (the data of the fronts; the paper's Table 4):", ""]
    return out + [to_pipe_table(tables.sweeps(agg)), ""]


def _sparsity_rows(sparsity: list[SparsityStats], early_t: float) -> list[list]:
    def over(value) -> Any:
        return stat(value(s) for s in sparsity)

    return [
        ["(trajectory, step) pairs corrected", over(lambda s: s.corrected_share)],
        [f"corrections at t ≥ {early_t:g}", over(lambda s: s.early_share)],
        *[
            [f"trajectories corrected at t ≈ {t:g}", over(lambda s, t=t: s.active_at[t])]
            for t in MARKERS_T
        ],
        ["median correction / score", over(lambda s: s.median_ratio)],
        ["95th percentile correction / score", over(lambda s: s.p95_ratio)],
        ["largest correction / score", over(lambda s: s.max_ratio)],
        ["trajectories never corrected", over(lambda s: s.never)],
        [f"corrections over for good by t = {early_t:g}", over(lambda s: s.ended_by_early)],
        ["trajectories corrected up to the last step", over(lambda s: s.to_the_end)],
    ]


def figure5(p: PageInput) -> list[str]:
    agg, label, page, tested = p.agg, p.label, p.agg.exp.results, p.agg.tested
    seed, param = sparsity_run(agg), sweep_param(agg)
    out = [f"## Figure 5: sparsity of {label}'s correction", ""]
    if p.figures.sparsity is not None and seed is not None:
        out += [
            f"`{tested}` on seed {seed.seed}'s run: (a) correction / score ratio of the "
            "corrected trajectories, (b) share of trajectories with a non-zero correction, "
            "(c) when the correction ends for good.",
            "",
            *image(f"{label} sparsity", p.figures.sparsity, page),
        ]
    if p.figures.sparsity_compare is not None:
        out += [f"Every {param} of the sweep, same seed:", ""]
        out += image(f"{label} sparsity per {param}", p.figures.sparsity_compare, page)
    if p.sparsity:
        rows = _sparsity_rows(p.sparsity, agg.exp.spec.claims.early_t)
        out += [f"`{tested}`, mean ± std over {len(p.sparsity)} seeds, in %:", ""]
        stats = [[name, s.text(100)] for name, s in rows]
        out += [pipe_table(["Statistic", "Value (%)"], stats), ""]
    return out


def table2(p: PageInput) -> list[str]:
    agg, label = p.agg, p.label
    split = split_name(agg) if agg.exp.spec.protection else "training"
    out = [f"## Table 2: protection of the {split} split", ""]
    if not p.protection:
        return out + ["No `[protection]` section in the experiment file.", ""]
    item, space = protected_items(agg)
    out += [
        f"Share of final samples within r = {agg.exp.spec.protection.radius:g} (L2, {space}) "
        f"of their exact nearest {split} {item}, mean ± std over {p.n} seeds. The first "
        "two rows come from the main runs, the last from the protection runs (same seeds, "
        f"{label} repelling from the stored {split} split). Beside it, as the "
        "memorisation literature measures copying, in the per-prompt feature space: the "
        "copy rate (%: best cosine to a protected item above the space's threshold), "
        "the data-copying test CT (Meehan et al. 2020; below 0: closer to the protected "
        "set than held-out data is) and AuthPct (Alaa et al. 2022; % of samples farther "
        "from their nearest protected item than it is from its own neighbour).",
        "",
    ]
    return out + [to_pipe_table(tables.protection(agg, p.protection)), ""]


def table5(p: PageInput) -> list[str]:
    baseline = p.agg.exp.baseline
    out = [
        "## Table 5: generation cost per image",
        "",
        f"Default config of each method. Time per image: mean ± std over the images of all "
        f"{p.n} seeds (a batch's wall time split evenly over its images); × {baseline}: mean "
        "± std over seeds of the per-seed ratio of mean (or median) times; the last row is "
        f"measured against the {baseline} of the protection runs; NFE: network evaluations "
        "per image.",
        "",
    ]
    return out + [to_pipe_table(tables.cost(p.agg, p.protection)), ""]


def run_dirs(p: PageInput) -> list[str]:
    runs = [s.path.name for s in [*p.agg.seeds, *p.agg.protect]]
    index = RunDir(Path("<run>")).report_index.as_posix()
    first = p.agg.exp.spec.experiment.run_reports == "first"
    which = (
        f"The full report of seed {p.agg.exp.seeds[0]}'s runs (every figure, grid and table "
        f'of one run) is in `{index}` (`run_reports = "first"`: `bench report <run>` draws '
        "the others'); the runs: "
        if first
        else f"Each seed's full report (every figure, grid and table of one run) is in `{index}`: "
    )
    return [
        "## Run directories",
        "",
        which + ", ".join(f"`{name}`" for name in runs) + f" under `{p.agg.exp.out.name}/`.",
        "",
    ]


SECTIONS = (
    header,
    protocol,
    claims_section,
    table1,
    figure3,
    figure4,
    figure5,
    table2,
    table5,
    run_dirs,
)


def render(p: PageInput) -> str:
    return "\n".join(line for section in SECTIONS for line in section(p))
