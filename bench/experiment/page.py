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

from .aggregate import Aggregate, sweep_param
from .claims import Claim, verdict
from .figures import Figures, sparsity_run
from .fronts import FrontCheck
from .markdown import image, pipe_table
from .protection import ProtectionRow, split_name
from .sparsity import MARKERS_T, SparsityStats
from .stats import EMPTY, fmt, stat
from .timing import median_time_ratio, pooled_cost, time_ratio


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
        f"- Metrics: the run's `bench score` (per-class precision/recall/density/coverage "
        f"with k = {k}, Vendi on the digits-classifier features, averaged over the classes; "
        "Fréchet distances over all images; the class score) against the held-out 30% of "
        "the digits.",
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


def claims_section(p: PageInput) -> list[str]:
    model = _run_settings(p.agg)[0].get("model")
    out = [
        f"## Claims of the paper, checked on {model}",
        "",
        "Each verdict below is computed from the numbers in the tables that follow "
        "(comparisons of the seed means; thresholds from `[claims]` of the experiment file).",
        "",
    ]
    out += [f"- {c.title}: {verdict(c.holds)} {c.text}" for c in p.claims]
    return out + [""]


def table1(p: PageInput) -> list[str]:
    agg, label, base, tested = p.agg, p.label, p.agg.base, p.agg.tested
    out = [f"## Table 1: {agg.exp.baseline} vs {label} (mean ± std over {p.n} seeds)", ""]
    if not (base and tested):
        return out
    keys, names = agg.metric_keys, ((agg.exp.baseline, base), (label, tested))
    rows = [[name, f"`{mid}`", *p.cells(mid)] for name, mid in names]
    diff = [agg.paired(base, tested, k).differences().text() for k in keys]
    rows.append([f"{label} − {agg.exp.baseline}", "paired", *diff])
    rows.append(
        [f"{label} better", "seeds", *("{}/{}".format(*agg.wins(base, tested, k)) for k in keys)]
    )
    out += pipe_table(p.headers(["Method", "Config"]), rows)
    out += ["Per seed (the `metrics.json` of each run):", ""]
    seed_rows = [
        [str(s.seed), name, *(fmt(s.metric(mid, k)) for k in keys)]
        for s in agg.seeds
        for name, mid in names
    ]
    return out + pipe_table(p.headers(["Seed", "Method"]), seed_rows)


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
    return out + pipe_table(p.headers([param.capitalize(), "Config"]), rows)


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
        out += pipe_table(headers, [_front_row(f) for f in p.fronts])
    out += ["Every sweep point (the data of the fronts; the paper's Table 4):", ""]
    rows = [[c.method, f"`{c.id}`", *p.cells(c.id)] for c in agg.configs]
    return out + pipe_table(p.headers(["Method", "Config"]), rows)


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
        out += pipe_table(["Statistic", "Value (%)"], [[name, s.text(100)] for name, s in rows])
    return out


def table2(p: PageInput) -> list[str]:
    agg, label = p.agg, p.label
    split = split_name(agg) if agg.exp.spec.protection else "training"
    out = [f"## Table 2: protection of the {split} split", ""]
    if not p.protection:
        return out + ["No `[protection]` section in the experiment file.", ""]
    out += [
        f"Share of final samples within r = {agg.exp.spec.protection.radius:g} (L2, [-1, 1] "
        f"pixels) of their exact nearest {split} image, mean ± std over {p.n} seeds. The first "
        "two rows come from the main runs, the last from the protection runs (same seeds, "
        f"{label} repelling from the stored {split} split).",
        "",
    ]
    rows = [
        [row.label, f"`{row.method_id}`", row.rate.text(100)]
        + [row.runs.metric(row.method_id, k).text() for k in ("precision", "recall")]
        + [pooled_cost(row.runs, row.method_id)[0].text()]
        for row in p.protection
    ]
    headers = ["Method", "Config", f"Within r of a {split} image (%) ↓", "Precision ↑"]
    return out + pipe_table(headers + ["Recall ↑", "Time per image (s) ↓"], rows)


def _cost_row(label: str, mid: str, runs, base: str | None) -> list[str]:
    seconds, nfe = pooled_cost(runs, mid)
    ratio = time_ratio(runs, mid, base) if base else EMPTY
    median = median_time_ratio(runs, mid, base) if base else EMPTY
    return [label, f"`{mid}`", seconds.text(), ratio.text(), median.text(), fmt(nfe)]


def table5(p: PageInput) -> list[str]:
    agg, baseline = p.agg, p.agg.exp.baseline
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
    rows = [_cost_row(m, mid, agg.seeds, agg.base) for m, mid in agg.defaults.items()]
    if p.protection:
        last = p.protection[-1]
        base = last.runs.runs[0].config_of(baseline)
        rows.append(_cost_row(last.label, last.method_id, last.runs, base))
    headers = ["Method", "Config", "Time per image (s) ↓", f"× {baseline} (means)"]
    return out + pipe_table(headers + [f"× {baseline} (medians)", "NFE per image"], rows)


def run_dirs(p: PageInput) -> list[str]:
    runs = [s.path.name for s in [*p.agg.seeds, *p.agg.protect]]
    return [
        "## Run directories",
        "",
        "Each seed's full report (every figure, grid and table of one run) is in "
        f"`{RunDir(Path('<run>')).report_index.as_posix()}`: "
        + ", ".join(f"`{name}`" for name in runs)
        + f" under `{p.agg.exp.out.name}/`.",
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
