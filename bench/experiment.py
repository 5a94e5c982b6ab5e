"""`bench experiment FILE`: the SPELL paper's experiments, reproduced over several seeds.

An experiment file is a bench.toml (`[run]` and `[method.*]`, lists are sweeps) plus

    [experiment]  name, seeds, out (run directories), results (the markdown page),
                  figures (default: the page's path without .md), sparsity_seed,
                  spell_default (a method-config id; default: the rule of Table 1)
    [protection]  radius (r of the protection rate), split ("train"), and
                  [protection.spell]: the SPELL config that repels from that split
    [claims]      the thresholds the verdicts on the paper's claims use

Relative paths in [experiment] are relative to the experiment file's folder.

For every seed the runner builds a BenchConfig with `run.seed = seed` and
`run.name = f"{name}-seed{seed}"` and runs generate, score and report on it, each
stage only when its outputs are missing or older than its inputs (a rerun skips
complete prompts and complete stages). With [protection], the split is written
once as a stored shield set into `<out>/<name>/`, and a second run per seed,
`{name}-protect-seed{seed}`, generates none and SPELL repelling from it.
The seeds are then aggregated (mean ± std over seeds) into the paper's Table 1,
Figure 3, Figure 4, Figure 5, Table 2 and Table 5, and a markdown page whose
verdicts on the paper's claims are computed from the numbers.
"""

from __future__ import annotations

import json
import math
import os
import statistics
import time
import tomllib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from bench.atomic import atomic_write_bytes, atomic_write_text
from bench.config import BenchConfig
from bench.errors import BenchError

SHIELD_SET = "digits-train"
STAGES = "stages.json"
MARKERS_T = (0.8, 0.6, 0.4, 0.2)


# --------------------------------------------------------------------------- the file


class ExperimentSection(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(None, min_length=1, description="default: the file's stem")
    seeds: list[int] = Field(min_length=1)
    out: Path = Path("runs")
    results: Path | None = Field(None, description="the markdown page (default: <out>/<name>.md)")
    figures: Path | None = Field(None, description="PNG folder (default: results without .md)")
    sparsity_seed: int | None = Field(None, description="the seed run of Figure 5")
    spell_default: str | None = Field(None, description="SPELL's config id in Table 1")

    @field_validator("seeds")
    @classmethod
    def _unique(cls, seeds: list[int]) -> list[int]:
        if len(set(seeds)) != len(seeds):
            raise ValueError(f"seeds must be distinct, got {seeds}")
        return seeds


class ProtectionSection(BaseModel):
    model_config = ConfigDict(extra="forbid")

    split: Literal["train"] = "train"
    radius: float = Field(gt=0, description="r of the protection rate (L2, model space)")
    spell: dict[str, Any] = Field(default_factory=dict)


class ClaimsSection(BaseModel):
    model_config = ConfigDict(extra="forbid")

    precision_cost: float = Field(0.05, ge=0, description="largest 'small' relative drop")
    time_tolerance: float = Field(0.05, ge=0, description="'within a few %' of none")
    sparse_share: float = Field(0.5, gt=0, le=1, description="max share of corrected steps")
    sparse_ratio: float = Field(0.1, gt=0, description="max median correction/score ratio")
    early_t: float = Field(0.5, gt=0, lt=1, description="'early' means t >= early_t")


class ExperimentFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    experiment: ExperimentSection
    protection: ProtectionSection | None = None
    claims: ClaimsSection = Field(default_factory=ClaimsSection)
    run: dict[str, Any] = Field(default_factory=dict)
    method: dict[str, dict[str, Any]] = Field(default_factory=dict)


@dataclass
class Experiment:
    name: str
    source: Path
    spec: ExperimentFile
    out: Path
    results: Path
    figures: Path

    @property
    def seeds(self) -> list[int]:
        return self.spec.experiment.seeds

    @property
    def folder(self) -> Path:
        """The experiment's own files: the stored shield set and the stage log."""
        return self.out / self.name

    @property
    def shield_path(self) -> Path:
        return self.folder / SHIELD_SET

    def seed_config(self, seed: int) -> BenchConfig:
        return self._config(f"{self.name}-seed{seed}", seed, self.spec.run, self.spec.method)

    def protection_config(self, seed: int) -> BenchConfig:
        assert self.spec.protection is not None
        run = {**self.spec.run, "methods": ["none", "spell"]}
        spell = {**self.spec.protection.spell, "protect": str(self.shield_path.resolve())}
        return self._config(f"{self.name}-protect-seed{seed}", seed, run, {"spell": spell})

    def _config(self, name: str, seed: int, run: dict, method: dict) -> BenchConfig:
        data = {"run": {**run, "name": name, "seed": seed, "out": str(self.out)}, "method": method}
        try:
            return BenchConfig(**data)
        except ValidationError as err:
            e = err.errors()[0]
            where = ".".join(str(p) for p in e["loc"])
            raise BenchError(f"invalid experiment {self.source}: {where}: {e['msg']}") from err


def _resolve(base: Path, path: Path) -> Path:
    return (path if path.is_absolute() else base / path).resolve()


def load_experiment(path: Path, out: Path | None = None) -> Experiment:
    """Read and check an experiment file; `out` replaces [experiment] out."""
    path = Path(path)
    if not path.is_file():
        raise BenchError(f"experiment file {path} not found")
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as err:
        raise BenchError(f"malformed experiment file {path}: {err}") from err
    for key in ("name", "seed", "out"):
        if key in data.get("run", {}):
            raise BenchError(
                f"{path}: [run] {key} is set by the experiment; use [experiment] "
                f"{'seeds' if key == 'seed' else key} instead"
            )
    try:
        spec = ExperimentFile(**data)
    except ValidationError as err:
        e = err.errors()[0]
        where = ".".join(str(p) for p in e["loc"])
        raise BenchError(f"invalid experiment {path}: {where}: {e['msg']}") from err
    section = spec.experiment
    base = path.resolve().parent
    name = section.name or path.stem
    out_dir = Path(out) if out is not None else _resolve(base, section.out)
    results = _resolve(base, section.results) if section.results else out_dir / f"{name}.md"
    figures = _resolve(base, section.figures) if section.figures else results.with_suffix("")
    if section.sparsity_seed is not None and section.sparsity_seed not in section.seeds:
        raise BenchError(f"{path}: sparsity_seed {section.sparsity_seed} is not one of the seeds")
    exp = Experiment(name, path, spec, out_dir, results, figures)
    from bench.generate import select_methods

    # Fail early, before any run: a bad [run], [method.*] or [protection.spell].
    select_methods(exp.seed_config(section.seeds[0]))
    if spec.protection is not None:
        select_methods(exp.protection_config(section.seeds[0]))
    return exp


# --------------------------------------------------------------------------- stages


def _newest(paths: Iterable[Path]) -> float:
    return max((p.stat().st_mtime for p in paths), default=0.0)


def is_generated(run_dir: Path, config: BenchConfig) -> bool:
    """Every (method-config, prompt) of this config is on disk and the manifest says done."""
    from bench.run_dir import RunDir

    run = RunDir(run_dir)
    manifest = run.manifest()
    if manifest is None or manifest.get("config_hash") != config.hash():
        return False
    if manifest.get("status") not in ("generated", "scored", "reported"):
        return False
    ids, prompts = manifest.get("method_ids") or [], manifest.get("prompt_ids") or []
    return bool(ids and prompts) and all(run.is_complete(m, p) for m in ids for p in prompts)


def is_scored(run_dir: Path) -> bool:
    """metrics.json covers every method-config and is newer than every sample file."""
    metrics = run_dir / "metrics.json"
    manifest = run_dir / "manifest.json"
    if not metrics.is_file() or not manifest.is_file():
        return False
    try:
        scored = {r["method_id"] for r in json.loads(metrics.read_text())["results"]}
    except (json.JSONDecodeError, KeyError, TypeError):
        return False
    wanted = set(json.loads(manifest.read_text()).get("method_ids") or [])
    newest = _newest(run_dir.glob("samples/*/*.npz"))
    return wanted <= scored and metrics.stat().st_mtime >= newest


def is_reported(run_dir: Path) -> bool:
    index, metrics = run_dir / "report" / "index.html", run_dir / "metrics.json"
    return (
        index.is_file() and metrics.is_file() and index.stat().st_mtime >= metrics.stat().st_mtime
    )


def run_stages(
    config: BenchConfig, log: Callable[[str], None], force: bool = False
) -> dict[str, float]:
    """Generate, score and report one run, each only if not already done; the seconds of
    the stages that ran."""
    from bench.generate import generate, run_path
    from metrics.score import score_run
    from reports.build import build_report

    run_dir = run_path(config)
    ran: dict[str, float] = {}
    if not is_generated(run_dir, config):
        log(f"{run_dir.name}: generating")
        start = time.perf_counter()
        generate(config, force=force, progress=False)
        ran["generate"] = time.perf_counter() - start
    if not is_scored(run_dir):
        log(f"{run_dir.name}: scoring")
        start = time.perf_counter()
        score_run(run_dir, device=config.run.device)
        ran["score"] = time.perf_counter() - start
    if not is_reported(run_dir):
        log(f"{run_dir.name}: report")
        start = time.perf_counter()
        build_report(run_dir)
        ran["report"] = time.perf_counter() - start
    if not ran:
        log(f"{run_dir.name}: complete, skipped")
    return ran


def split_images(split: str) -> np.ndarray:
    """The digits split in the models' [-1, 1] pixel space, (N, 1, 8, 8)."""
    from bench.data.digits import load_split

    return load_split(split).images


def ensure_shields(exp: Experiment, log: Callable[[str], None]) -> Path:
    """Write the protected split once as a stored exact shield set."""
    import torch

    from bench.shields import ExactShieldSet
    from bench.shields.store import read_manifest, save_shields

    assert exp.spec.protection is not None
    images = split_images(exp.spec.protection.split)
    path = exp.shield_path
    try:
        if read_manifest(path).get("count") == len(images):
            return path
    except BenchError:
        pass
    vectors = torch.tensor(images)
    shields = ExactShieldSet(vectors.flatten(1))
    log(f"writing the {exp.spec.protection.split} split ({len(shields)} shields) to {path}")
    save_shields(path, vectors, meta={"source": f"digits {exp.spec.protection.split} split"})
    return path


# --------------------------------------------------------------------------- per-seed data


@dataclass
class SeedRun:
    seed: int
    path: Path
    run: Any  # reports.rundata.RunData
    costs: dict[str, Any]  # method id -> reports.cost.Cost | None
    protection: dict[str, float] = field(default_factory=dict)

    def metric(self, method_id: str, key: str) -> float | None:
        return self.run.metric(method_id, key)


def final_outputs(run: Any, method_id: str) -> np.ndarray:
    """The final latents (for digits: pixels in [-1, 1]) of every sample, prompt order."""
    arrays = []
    for path in run.sample_files(method_id):
        with np.load(path) as data:
            arrays.append(np.asarray(data["latents"], dtype=np.float32))
    return np.concatenate(arrays) if arrays else np.zeros((0, 1))


def load_seed(seed: int, run_dir: Path, protected: np.ndarray | None, radius: float | None):
    from metrics.protection import protection_rate
    from reports.rundata import load_run
    from reports.tables import run_costs

    run = load_run(run_dir)
    rates = {}
    if protected is not None and radius is not None:
        for config in run.configs:
            outputs = final_outputs(run, config.id)
            if len(outputs):
                rates[config.id] = protection_rate(outputs, protected, radius)
    return SeedRun(seed, run_dir, run, run_costs(run), rates)


# --------------------------------------------------------------------------- statistics


@dataclass(frozen=True)
class Stat:
    mean: float | None
    std: float | None
    n: int
    values: tuple[float, ...] = ()

    def cell(self, scale: float = 1.0):
        from reports.tables import Cell

        if self.mean is None:
            return Cell(None)
        return Cell(self.mean * scale, std=None if self.std is None else self.std * scale)

    def text(self, scale: float = 1.0) -> str:
        return self.cell(scale).text()


def stat(values: Iterable[float | None]) -> Stat:
    """Mean ± sample std (ddof = 1) of the finite values; std None for a single value."""
    found = tuple(float(v) for v in values if v is not None and math.isfinite(v))
    if not found:
        return Stat(None, None, 0)
    std = statistics.stdev(found) if len(found) > 1 else None
    return Stat(statistics.fmean(found), std, len(found), found)


def fmt(value: float | None, places: int | None | str = "auto") -> str:
    from reports.tables import fmt_number

    return "n/a" if value is None else fmt_number(value, places)


def pct(value: float | None, signed: bool = False) -> str:
    if value is None:
        return "n/a"
    return f"{100 * value:+.1f}%" if signed else f"{100 * value:.1f}%"


# --------------------------------------------------------------------------- aggregation


@dataclass
class Aggregate:
    exp: Experiment
    seeds: list[SeedRun]
    protect: list[SeedRun]
    configs: list[Any]  # reports.rundata.MethodConfig, run order
    metric_keys: list[str]
    spell_default: str | None
    defaults: dict[str, str]  # method -> default config id
    shield_count: int | None = None

    def metric(self, method_id: str, key: str) -> Stat:
        return stat(s.metric(method_id, key) for s in self.seeds)

    def paired(self, a: str, b: str, key: str) -> Stat:
        """b - a per seed."""
        diffs = []
        for s in self.seeds:
            va, vb = s.metric(a, key), s.metric(b, key)
            if va is not None and vb is not None:
                diffs.append(vb - va)
        return stat(diffs)

    def wins(self, a: str, b: str, key: str) -> tuple[int, int]:
        """Seeds where b is better than a on `key`, out of seeds with both numbers."""
        from reports.catalog import metric_info

        up = metric_info(key).higher_is_better
        pairs = [(s.metric(a, key), s.metric(b, key)) for s in self.seeds]
        pairs = [(x, y) for x, y in pairs if x is not None and y is not None]
        return sum((y > x) if up else (y < x) for x, y in pairs), len(pairs)

    def run_data(self):
        """A RunData whose metrics are the seed means and whose intervals are mean ± std,
        for the report's figure builders."""
        from reports.rundata import RunData

        results = {}
        for config in self.configs:
            metrics, ci = {}, {}
            for key in self.metric_keys:
                s = self.metric(config.id, key)
                if s.mean is None:
                    continue
                metrics[key] = s.mean
                if s.std is not None:
                    ci[key] = [s.mean - s.std, s.mean + s.std]
            results[config.id] = {"method_id": config.id, "metrics": metrics, "ci": ci}
        return RunData(
            path=self.exp.folder,
            manifest={},
            config_text="",
            configs=list(self.configs),
            prompt_ids=[],
            results=results,
            protocol={},
        )

    def of_method(self, method: str) -> list[Any]:
        return [c for c in self.configs if c.method == method]


def aggregate(exp: Experiment, seeds: list[SeedRun], protect: list[SeedRun]) -> Aggregate:
    from reports.catalog import ordered
    from reports.tables import default_configs

    first = seeds[0].run
    keys = ordered({k for s in seeds for k in s.run.metric_keys()})
    defaults = {c.method: c.id for c in default_configs(first)}
    wanted = exp.spec.experiment.spell_default
    ids = {c.id for c in first.configs}
    if wanted is not None and wanted not in ids:
        raise BenchError(
            f"spell_default {wanted!r} is not a method-config of the run: {sorted(ids)}"
        )
    spell = wanted or defaults.get("spell")
    if spell is not None:
        defaults["spell"] = spell
    return Aggregate(exp, seeds, protect, list(first.configs), keys, spell, defaults)


# --------------------------------------------------------------------------- figures


def _png(fig: Any, path: Path) -> Path:
    import io

    from reports.style import theme

    buf = io.BytesIO()
    with theme():
        fig.savefig(buf, format="png", dpi=150)
    atomic_write_bytes(path, buf.getvalue())
    return path


@dataclass
class Figures:
    sweep: Path | None = None
    pareto: list[tuple[str, str, Path]] = field(default_factory=list)
    sparsity: Path | None = None
    sparsity_compare: Path | None = None


def draw_figures(agg: Aggregate, folder: Path) -> Figures:
    from reports.build import config_colors
    from reports.catalog import pareto_pairs
    from reports.colors import method_colors, method_markers
    from reports.fronts import pareto_figure
    from reports.hyper import sweep_figure
    from reports.sparsity import sparsity_comparison, sparsity_figure
    from reports.style import theme
    from reports.traces import trace_stats

    folder.mkdir(parents=True, exist_ok=True)
    run = agg.run_data()
    methods = list(run.methods())
    colors, markers = method_colors(methods), method_markers(methods)
    n = len(agg.seeds)
    out = Figures()
    if "spell" in colors:
        fig = sweep_figure(run, "spell", colors["spell"])
        if fig is not None:
            with theme():
                fig.suptitle(f"SPELL: every metric against its radius (mean ± std over {n} seeds)")
            out.sweep = _png(fig, folder / "figure3-spell-radius.png")
    for x, y in pareto_pairs(run.metric_keys()):
        fig = pareto_figure(run, x, y, colors, markers)
        if fig is not None:
            with theme():
                fig.axes[0].set_title(f"{fig.axes[0].get_title()} (mean of {n} seeds)")
            out.pareto.append((x, y, _png(fig, folder / f"figure4-pareto-{y}-vs-{x}.png")))
    seed = sparsity_run(agg)
    spell_ids = [c.id for c in agg.of_method("spell")]
    if seed is not None and spell_ids:
        shade = config_colors(seed.run, method_colors(list(seed.run.methods())))
        stats = {i: trace_stats(seed.run.sample_files(i)) for i in spell_ids}
        stats = {i: s for i, s in stats.items() if s is not None and s.corrects}
        if agg.spell_default in stats:
            fig = sparsity_figure(
                stats[agg.spell_default],
                f"{agg.spell_default}, seed {seed.seed}",
                shade[agg.spell_default],
            )
            out.sparsity = _png(fig, folder / "figure5-sparsity.png")
        if len(stats) > 1:
            fig = sparsity_comparison(stats, shade)
            out.sparsity_compare = _png(fig, folder / "figure5-sparsity-radii.png")
    return out


def sparsity_run(agg: Aggregate) -> SeedRun | None:
    wanted = agg.exp.spec.experiment.sparsity_seed
    wanted = agg.seeds[0].seed if wanted is None else wanted
    return next((s for s in agg.seeds if s.seed == wanted), None)


# --------------------------------------------------------------------------- analyses


@dataclass
class FrontCheck:
    x: str
    y: str
    spell_points: int
    spell_on_front: int  # SPELL points no baseline point dominates
    baseline_points: int  # baselines other than none
    baselines_dominated: int  # of those, dominated by some SPELL point
    dominated_by: dict[str, list[str]] = field(default_factory=dict)  # SPELL id -> baselines

    @property
    def holds(self) -> bool:
        return self.spell_points > 0 and self.spell_on_front == self.spell_points


def _dominates(a: tuple[float, float], b: tuple[float, float], up: tuple[bool, bool]) -> bool:
    sa = [v if u else -v for v, u in zip(a, up, strict=True)]
    sb = [v if u else -v for v, u in zip(b, up, strict=True)]
    return all(x >= y for x, y in zip(sa, sb, strict=True)) and any(
        x > y for x, y in zip(sa, sb, strict=True)
    )


def front_checks(agg: Aggregate) -> list[FrontCheck]:
    """Per Pareto pair of Figure 4: is each SPELL sweep point (seed means) undominated by
    every baseline point (none, PG, IG, CADS, CFG sweep points)?"""
    from reports.catalog import metric_info, pareto_pairs

    checks = []
    for x, y in pareto_pairs(agg.metric_keys):
        up = (metric_info(x).higher_is_better, metric_info(y).higher_is_better)
        pts = {}
        for c in agg.configs:
            mx, my = agg.metric(c.id, x).mean, agg.metric(c.id, y).mean
            if mx is not None and my is not None:
                pts[c.id] = (c.method, (mx, my))
        spell = {i: p for i, (m, p) in pts.items() if m == "spell"}
        base = {i: p for i, (m, p) in pts.items() if m != "spell"}
        others = [p for m, p in pts.values() if m not in ("spell", "none")]
        by = {
            sid: [bid for bid, b in base.items() if _dominates(b, s, up)]
            for sid, s in spell.items()
        }
        on_front = sum(not found for found in by.values())
        dominated = sum(any(_dominates(s, b, up) for s in spell.values()) for b in others)
        checks.append(
            FrontCheck(
                x,
                y,
                len(spell),
                on_front,
                len(others),
                dominated,
                {sid: found for sid, found in by.items() if found},
            )
        )
    return checks


@dataclass
class SparsityStats:
    seed: int
    trajectories: int
    steps: int
    corrected_share: float  # share of (trajectory, step) pairs with a correction
    early_share: float  # share of corrections at t >= early_t
    active_at: dict[float, float]  # t marker -> share of trajectories corrected there
    median_ratio: float
    p95_ratio: float
    max_ratio: float
    never: float
    ended_by_early: float  # share never corrected or ended for good at t >= early_t
    to_the_end: float


def sparsity_stats(seed: SeedRun, method_id: str, early_t: float) -> SparsityStats | None:
    from reports.traces import _quantile, trace_stats

    stats = trace_stats(seed.run.sample_files(method_id))
    if stats is None or stats.trajectories == 0:
        return None
    active = stats.active.astype(float)
    total = active.sum()
    pooled = stats.ratio_counts.sum(axis=0)
    at = {}
    for t in MARKERS_T:
        k = int(np.argmin(np.abs(stats.t - t)))
        at[t] = float(active[k] / stats.trajectories)
    finish_t = stats.finish_t()
    # finish[k]: zero from step k on; its last entry (t = 0) is "corrected to the end".
    ended = stats.never + stats.finish[finish_t >= early_t].sum()
    return SparsityStats(
        seed=seed.seed,
        trajectories=stats.trajectories,
        steps=len(stats.t),
        corrected_share=float(total / (stats.trajectories * len(stats.t))),
        early_share=float(active[stats.t >= early_t].sum() / total) if total else 0.0,
        active_at=at,
        median_ratio=_quantile(pooled, 0.5) if total else 0.0,
        p95_ratio=_quantile(pooled, 0.95) if total else 0.0,
        max_ratio=float(stats.ratio_max.max()),
        never=stats.never / stats.trajectories,
        ended_by_early=float(ended / stats.trajectories),
        to_the_end=float(stats.finish[-1] / stats.trajectories),
    )


def pooled_cost(runs: list[SeedRun], method_id: str) -> tuple[Stat, float | None]:
    """Seconds per image pooled over the images of every seed (mean ± std), NFE per image."""
    parts = [s.costs.get(method_id) for s in runs]
    parts = [c for c in parts if c is not None and c.seconds_mean is not None and c.images]
    if not parts:
        return Stat(None, None, 0), None
    n = sum(c.images for c in parts)
    mean = sum(c.images * c.seconds_mean for c in parts) / n
    ss = sum(
        (c.images - 1) * (c.seconds_std or 0.0) ** 2 + c.images * (c.seconds_mean - mean) ** 2
        for c in parts
    )
    std = math.sqrt(ss / (n - 1)) if n > 1 else None
    nfe = sum(c.images * c.nfe_mean for c in parts) / n
    return Stat(mean, std, n), nfe


def time_ratio(runs: list[SeedRun], method_id: str, base_id: str) -> Stat:
    """Per seed: mean seconds per image of method / of none; mean ± std over seeds."""
    ratios = []
    for s in runs:
        a, b = s.costs.get(method_id), s.costs.get(base_id)
        if a and b and a.seconds_mean and b.seconds_mean:
            ratios.append(a.seconds_mean / b.seconds_mean)
    return stat(ratios)


def image_times(run: SeedRun, method_id: str) -> np.ndarray:
    """Seconds per image of every image of one run's method-config (from its time files)."""
    from reports.cost import time_file

    found: list[float] = []
    for npz in run.run.sample_files(method_id):
        path = time_file(npz)
        if path.is_file():
            found += json.loads(path.read_text()).get("seconds_per_image", [])
    return np.asarray(found, dtype=float)


def median_time_ratio(runs: list[SeedRun], method_id: str, base_id: str) -> Stat:
    """Per seed: median seconds per image of method / of none (robust to load spikes of a
    shared machine); mean ± std over seeds."""
    ratios = []
    for s in runs:
        a, b = image_times(s, method_id), image_times(s, base_id)
        if len(a) and len(b) and np.median(b) > 0:
            ratios.append(float(np.median(a) / np.median(b)))
    return stat(ratios)


# --------------------------------------------------------------------------- claims


@dataclass
class Claim:
    key: str
    title: str
    holds: bool | None  # None: not measured in this experiment
    text: str


def _verdict(holds: bool | None) -> str:
    return {True: "**Holds.**", False: "**Does not hold.**", None: "**Not measured.**"}[holds]


def _compare(agg: Aggregate, key: str, base: str, spell: str) -> tuple[str, float | None, bool]:
    from reports.catalog import metric_info

    info = metric_info(key)
    a, b = agg.metric(base, key), agg.metric(spell, key)
    if a.mean is None or b.mean is None:
        return f"{info.name}: n/a", None, False
    rel = (b.mean - a.mean) / abs(a.mean) if a.mean else None
    wins, total = agg.wins(base, spell, key)
    diff = agg.paired(base, spell, key)
    text = (
        f"{info.name} {fmt(a.mean)} → {fmt(b.mean)} ({pct(rel, signed=True)}; paired difference "
        f"{diff.text()}; SPELL better in {wins}/{total} seeds)"
    )
    return text, rel, b.mean > a.mean


def make_claims(
    agg: Aggregate, fronts: list[FrontCheck], sparsity: list[SparsityStats]
) -> list[Claim]:
    c = agg.exp.spec.claims
    base, spell = agg.defaults.get("none"), agg.spell_default
    claims: list[Claim] = []

    # Table 1: diversity up, precision down by little.
    if base and spell:
        parts, raised = [], []
        for key in ("recall", "vendi", "coverage"):
            text, _, up = _compare(agg, key, base, spell)
            parts.append(f"{text}: {'raised' if up else 'not raised'}")
            raised.append(up)
        ptext, prel, _ = _compare(agg, "precision", base, spell)
        cost_ok = prel is not None and -prel <= c.precision_cost
        parts.append(
            f"{ptext}: {'within' if cost_ok else 'beyond'} the {pct(c.precision_cost)} "
            "allowed for a 'small' precision cost"
        )
        holds = all(raised) and cost_ok
        claims.append(
            Claim(
                "table1",
                "SPELL raises recall, Vendi score and coverage at a small precision cost (Table 1)",
                holds,
                "; ".join(parts) + ".",
            )
        )
    else:
        claims.append(Claim("table1", "SPELL raises diversity (Table 1)", None, "no SPELL run."))

    # Figure 3: the radius trades precision for diversity.
    radii = sorted(
        (float(cfg.params.get("radius")), cfg.id)
        for cfg in agg.of_method("spell")
        if isinstance(cfg.params.get("radius"), int | float)
    )
    if len(radii) >= 2:
        lo, hi = radii[0][1], radii[-1][1]
        v_lo, v_hi = agg.metric(lo, "vendi").mean, agg.metric(hi, "vendi").mean
        p_lo, p_hi = agg.metric(lo, "precision").mean, agg.metric(hi, "precision").mean
        ok = None not in (v_lo, v_hi, p_lo, p_hi)
        holds = ok and v_hi > v_lo and p_hi <= p_lo
        claims.append(
            Claim(
                "figure3",
                "A larger radius trades precision for diversity (Figure 3)",
                holds if ok else None,
                f"from r = {radii[0][0]:g} to r = {radii[-1][0]:g}, the Vendi score goes "
                f"{fmt(v_lo)} → {fmt(v_hi)} and precision {fmt(p_lo)} → {fmt(p_hi)}.",
            )
        )

    # Figure 4: SPELL on or beyond the baselines' Pareto fronts.
    if fronts and any(f.spell_points for f in fronts):
        from reports.catalog import metric_info

        parts = [
            f"{metric_info(f.y).name} vs {metric_info(f.x).name}: {f.spell_on_front}/"
            f"{f.spell_points} SPELL points undominated by the baselines, "
            f"{f.baselines_dominated}/{f.baseline_points} baseline points dominated by SPELL "
            f"({'holds' if f.holds else 'does not hold'})"
            for f in fronts
        ]
        claims.append(
            Claim(
                "figure4",
                "SPELL is on or beyond the Pareto front of the baselines (Figure 4)",
                all(f.holds for f in fronts),
                "; ".join(parts) + ".",
            )
        )
    else:
        claims.append(Claim("figure4", "SPELL on the Pareto front (Figure 4)", None, "no fronts."))

    # Figure 5: sparse and early.
    if sparsity:
        share = stat(s.corrected_share for s in sparsity)
        ratio = stat(s.median_ratio for s in sparsity)
        early = stat(s.early_share for s in sparsity)
        sparse = share.mean <= c.sparse_share and ratio.mean <= c.sparse_ratio
        is_early = early.mean > 0.5
        claims.append(
            Claim(
                "figure5",
                "Repellency is sparse and concentrated early in t (Figure 5)",
                sparse and is_early,
                f"{pct(share.mean)} of (trajectory, step) pairs are corrected "
                f"({'≤' if share.mean <= c.sparse_share else '>'} {pct(c.sparse_share)}) and the "
                f"median correction is {pct(ratio.mean)} of the score "
                f"({'≤' if ratio.mean <= c.sparse_ratio else '>'} {pct(c.sparse_ratio)}): "
                f"{'sparse' if sparse else 'not sparse'}; {pct(early.mean)} of the corrections "
                f"happen at t ≥ {c.early_t:g} ({'more' if is_early else 'not more'} than half): "
                f"{'early' if is_early else 'not concentrated early'} "
                f"(means over {len(sparsity)} seeds).",
            )
        )
    else:
        claims.append(Claim("figure5", "Sparsity (Figure 5)", None, "no SPELL traces."))

    # Table 2: protection.
    prot = protection_rows(agg)
    if prot:
        none_rate, spell_rate = prot[0][2], prot[-1][2]
        drops = (
            spell_rate.mean is not None
            and none_rate.mean is not None
            and (spell_rate.mean < none_rate.mean)
        )
        seeds_down = sum(
            s.protection.get(prot[-1][1], 1.0) < s.protection.get(prot[0][1], 0.0)
            for s in agg.protect
        )
        claims.append(
            Claim(
                "table2",
                "The protection rate drops with SPELL (Table 2)",
                drops,
                f"share within r = {agg.exp.spec.protection.radius:g} of a training image: "
                f"{pct(none_rate.mean)} without SPELL, {pct(spell_rate.mean)} with SPELL "
                f"repelling from the training split (lower in {seeds_down}/{len(agg.protect)} "
                "seeds).",
            )
        )
    else:
        claims.append(Claim("table2", "Protection (Table 2)", None, "no [protection] section."))

    # Table 5: time.
    if base and spell:
        ratio = time_ratio(agg.seeds, spell, base)
        median = median_time_ratio(agg.seeds, spell, base)
        ok = ratio.mean is not None and abs(ratio.mean - 1) <= c.time_tolerance
        change = None if ratio.mean is None else ratio.mean - 1
        text = (
            f"SPELL / none time per image = {ratio.text()} (mean ± std over seeds of the "
            f"ratio of mean times), i.e. {pct(change, True)}"
            f"; 'a few %' is taken as ±{pct(c.time_tolerance)}. The ratio of median times, "
            f"less sensitive to load spikes, is {median.text()}"
        )
        if ratio.std is not None and ratio.std > c.time_tolerance:
            text += (
                f"; the seed-to-seed spread of the ratio (± {fmt(ratio.std)}) is larger than "
                "the tolerance, so on this machine the timing cannot resolve a difference of "
                "a few %"
            )
        claims.append(
            Claim(
                "table5",
                "SPELL's time per image is within a few % of none (Table 5)",
                ok if ratio.mean is not None else None,
                text + ".",
            )
        )
    return claims


def protection_rows(agg: Aggregate) -> list[tuple[str, str, Stat, list[SeedRun]]]:
    """(label, method id, protection rate over seeds, runs) for none, SPELL without the
    protected set and SPELL repelling from it."""
    if not agg.protect or not agg.protect[0].protection:
        return []
    rows = []
    base = agg.defaults.get("none", "none")
    rows.append(("none", base, stat(s.protection.get(base) for s in agg.seeds), agg.seeds))
    if agg.spell_default:
        sid = agg.spell_default
        rows.append(
            (
                "SPELL (diversity shields only)",
                sid,
                stat(s.protection.get(sid) for s in agg.seeds),
                agg.seeds,
            )
        )
    pid = next((c.id for c in agg.protect[0].run.configs if c.method == "spell"), None)
    if pid is None:
        return []
    rows.append(
        (
            "SPELL + training split",
            pid,
            stat(s.protection.get(pid) for s in agg.protect),
            agg.protect,
        )
    )
    return rows


# --------------------------------------------------------------------------- markdown


def _row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _table(headers: list[str], rows: list[list[str]]) -> list[str]:
    return [_row(headers), _row(["---"] * len(headers)), *(_row(r) for r in rows), ""]


def _link(target: Path, page: Path) -> str:
    return Path(os.path.relpath(target, page.parent)).as_posix()


def _seed_metric(run: SeedRun, method_id: str, key: str) -> float | None:
    return run.metric(method_id, key)


def _protocol_lines(agg: Aggregate, wall: dict[str, Any]) -> list[str]:
    cfg = agg.seeds[0].run.config.get("run", {})
    manifest = agg.seeds[0].run.manifest
    spec = agg.exp.spec
    lines = [
        "## Protocol",
        "",
        f"- Model: `{cfg.get('model')}`, prompts: {len(agg.seeds[0].run.prompt_ids)} classes, "
        f"{cfg.get('samples')} samples per class, batch size {cfg.get('batch_size')}, "
        f"{manifest.get('steps')} steps (`{cfg.get('scheduler')}` scheduler), CFG weight "
        f"{manifest.get('guidance')}.",
        f"- Seeds: {', '.join(str(s.seed) for s in agg.seeds)} ({len(agg.seeds)} runs, each "
        "with every method-config on the same noise); every number below is the mean ± std "
        "(sample std, ddof = 1) over the seeds unless said otherwise.",
        f"- Metrics: the run's `bench score` (per-class precision/recall/density/coverage "
        f"with k = {agg.seeds[0].run.protocol.get('prdc', {}).get('k', 'n/a')}, Vendi on the "
        "digits-classifier features, averaged over the classes; Fréchet distances over all "
        "images; the class score) against the held-out 30% of the digits.",
        "- Method sweeps (`[method.*]` of the experiment file):",
    ]
    for method, params in spec.method.items():
        if method in cfg.get("methods", []):
            shown = ", ".join(f"{k} = {json.dumps(v)}" for k, v in params.items())
            lines.append(f"  - {method}: {shown}")
    lines.append(
        "- Default configs (Table 1 and Table 5): "
        + ", ".join(f"{m}: `{i}`" for m, i in agg.defaults.items())
        + "."
    )
    if spec.protection is not None:
        p = spec.protection
        shown = ", ".join(f"{k} = {json.dumps(v)}" for k, v in p.spell.items())
        lines.append(
            f"- Protection (Table 2): r = {p.radius:g}, exact nearest neighbour, L2 in the "
            f"model's [-1, 1] pixel space (64 values), against the {agg.shield_count} images of "
            f"the digits `{p.split}` split, stored once as a shield set; SPELL config: {shown}."
        )
    lines.append(
        f"- Reduced protocol against the paper: {len(agg.seeds)} seeds (the paper: 5), "
        f"{cfg.get('samples')} samples per class (the paper: up to 128 per prompt), "
        f"{manifest.get('steps')} steps, and short sweeps, to fit about 15 minutes on a "
        "2-core CPU."
    )
    cpu = manifest.get("hardware", {}).get("cpu_count")
    lines.append(
        f"- Machine: {cpu} CPU cores, torch threads: {cfg.get('threads')}, no GPU; the CPUs were "
        "shared with other jobs, so wall times carry that noise. Total experiment wall time: "
        f"{wall['seconds']:.0f} s over {wall['invocations']} invocation(s) that did work "
        f"(generation {wall['generate']:.0f} s, scoring {wall['score']:.0f} s, per-run reports "
        f"{wall['report']:.0f} s)."
    )
    lines.append("")
    return lines


def render(
    agg: Aggregate,
    figures: Figures,
    fronts: list[FrontCheck],
    sparsity: list[SparsityStats],
    claims: list[Claim],
    wall: dict[str, Any],
) -> str:
    from reports.catalog import metric_info

    page = agg.exp.results
    n = len(agg.seeds)
    base, spell = agg.defaults.get("none"), agg.spell_default
    keys = agg.metric_keys
    out = [
        f"# SPELL's experiments on the digits model (`{agg.exp.name}`)",
        "",
        f"Generated by `bench experiment {agg.exp.source.name}` "
        "(`bench.experiment.run_experiment`); do not edit by hand. Each section reproduces "
        "one table or figure of the SPELL paper on the embedded digits model.",
        "",
    ]
    out += _protocol_lines(agg, wall)

    out += ["## Claims of the paper, checked on digits", ""]
    out += [
        "Each verdict below is computed from the numbers in the tables that follow "
        "(comparisons of the seed means; thresholds from `[claims]` of the experiment file).",
        "",
    ]
    for claim in claims:
        out.append(f"- {claim.title}: {_verdict(claim.holds)} {claim.text}")
    out.append("")

    # Table 1
    out += [f"## Table 1: none vs SPELL (mean ± std over {n} seeds)", ""]
    if base and spell:
        headers = ["Method", "Config"] + [metric_info(k).short for k in keys]
        rows = []
        for label, mid in (("none", base), ("SPELL", spell)):
            rows.append([label, f"`{mid}`"] + [agg.metric(mid, k).text() for k in keys])
        rows.append(["SPELL − none", "paired"] + [agg.paired(base, spell, k).text() for k in keys])
        rows.append(
            ["SPELL better", "seeds"] + ["{}/{}".format(*agg.wins(base, spell, k)) for k in keys]
        )
        out += _table(headers, rows)
        out += ["Per seed (the `metrics.json` of each run):", ""]
        seed_rows = []
        for s in agg.seeds:
            for label, mid in (("none", base), ("SPELL", spell)):
                seed_rows.append(
                    [str(s.seed), label] + [fmt(_seed_metric(s, mid, k)) for k in keys]
                )
        out += _table(["Seed", "Method"] + [metric_info(k).short for k in keys], seed_rows)

    # Figure 3
    out += [f"## Figure 3: SPELL's radius (mean ± std over {n} seeds)", ""]
    if figures.sweep is not None:
        out += [f"![SPELL radius sweep]({_link(figures.sweep, page)})", ""]
    spell_cfgs = agg.of_method("spell")
    if spell_cfgs:
        headers = ["Radius", "Config"] + [metric_info(k).short for k in keys]
        rows = []
        for cfg in sorted(spell_cfgs, key=lambda c: float(c.params.get("radius", 0))):
            rows.append(
                [f"{cfg.params.get('radius')}", f"`{cfg.id}`"]
                + [agg.metric(cfg.id, k).text() for k in keys]
            )
        if base:
            rows.append(["none", f"`{base}`"] + [agg.metric(base, k).text() for k in keys])
        out += _table(headers, rows)

    # Figure 4
    out += [f"## Figure 4: Pareto fronts (seed means over {n} seeds)", ""]
    for x, y, path in figures.pareto:
        out += [f"![{metric_info(y).name} vs {metric_info(x).name}]({_link(path, page)})", ""]
    if fronts:
        rows = [
            [
                f"{metric_info(f.y).name} vs {metric_info(f.x).name}",
                f"{f.spell_on_front}/{f.spell_points}",
                f"{f.baselines_dominated}/{f.baseline_points}",
                "yes" if f.holds else "no",
                "; ".join(
                    f"`{sid}` by " + ", ".join(f"`{b}`" for b in found)
                    for sid, found in f.dominated_by.items()
                )
                or "-",
            ]
            for f in fronts
        ]
        out += _table(
            [
                "Front",
                "SPELL points undominated by baselines",
                "Baseline points dominated by SPELL",
                "SPELL on or beyond the front",
                "Dominated SPELL points (by)",
            ],
            rows,
        )
    out += ["Every sweep point (the data of the fronts; the paper's Table 4):", ""]
    headers = ["Method", "Config"] + [metric_info(k).short for k in keys]
    out += _table(
        headers,
        [[c.method, f"`{c.id}`"] + [agg.metric(c.id, k).text() for k in keys] for c in agg.configs],
    )

    # Figure 5
    seed = sparsity_run(agg)
    out += ["## Figure 5: sparsity of SPELL's correction", ""]
    if figures.sparsity is not None and seed is not None:
        out += [
            f"`{spell}` on seed {seed.seed}'s run: (a) correction / score ratio of the "
            "corrected trajectories, (b) share of trajectories with a non-zero correction, "
            "(c) when the correction ends for good.",
            "",
            f"![SPELL sparsity]({_link(figures.sparsity, page)})",
            "",
        ]
    if figures.sparsity_compare is not None:
        out += [
            "Every radius of the sweep, same seed:",
            "",
            f"![SPELL sparsity per radius]({_link(figures.sparsity_compare, page)})",
            "",
        ]
    if sparsity:
        early_t = agg.exp.spec.claims.early_t
        rows = [
            ["(trajectory, step) pairs corrected", stat(s.corrected_share for s in sparsity)],
            [f"corrections at t ≥ {early_t:g}", stat(s.early_share for s in sparsity)],
            *[
                [f"trajectories corrected at t ≈ {t:g}", stat(s.active_at[t] for s in sparsity)]
                for t in MARKERS_T
            ],
            ["median correction / score", stat(s.median_ratio for s in sparsity)],
            ["95th percentile correction / score", stat(s.p95_ratio for s in sparsity)],
            ["largest correction / score", stat(s.max_ratio for s in sparsity)],
            ["trajectories never corrected", stat(s.never for s in sparsity)],
            [
                f"corrections over for good by t = {early_t:g}",
                stat(s.ended_by_early for s in sparsity),
            ],
            ["trajectories corrected up to the last step", stat(s.to_the_end for s in sparsity)],
        ]
        out += [f"`{spell}`, mean ± std over {len(sparsity)} seeds, in %:", ""]
        out += _table(["Statistic", "Value (%)"], [[label, s.text(100)] for label, s in rows])

    # Table 2
    out += ["## Table 2: protection of the training split", ""]
    prot = protection_rows(agg)
    if prot:
        r = agg.exp.spec.protection.radius
        out += [
            f"Share of final samples within r = {r:g} (L2, [-1, 1] pixels) of their exact "
            f"nearest training image, mean ± std over {n} seeds. The first two rows come from "
            "the main runs, the last from the protection runs (same seeds, SPELL repelling "
            "from the stored training split).",
            "",
        ]
        rows = []
        for label, mid, rate, runs in prot:
            cost, _ = pooled_cost(runs, mid)
            rows.append(
                [label, f"`{mid}`", rate.text(100)]
                + [stat(s.metric(mid, k) for s in runs).text() for k in ("precision", "recall")]
                + [cost.text()]
            )
        out += _table(
            [
                "Method",
                "Config",
                "Within r of a training image (%) ↓",
                "Precision ↑",
                "Recall ↑",
                "Time per image (s) ↓",
            ],
            rows,
        )
    else:
        out += ["No `[protection]` section in the experiment file.", ""]

    # Table 5
    out += ["## Table 5: generation cost per image", ""]
    out += [
        f"Default config of each method. Time per image: mean ± std over the images of all "
        f"{n} seeds (a batch's wall time split evenly over its images); × none: mean ± std "
        "over seeds of the per-seed ratio of mean (or median) times; the last row is measured "
        "against the none of the protection runs; NFE: network evaluations per image.",
        "",
    ]
    rows = []
    for method, mid in agg.defaults.items():
        cost, nfe = pooled_cost(agg.seeds, mid)
        ratio = time_ratio(agg.seeds, mid, base) if base else Stat(None, None, 0)
        median = median_time_ratio(agg.seeds, mid, base) if base else Stat(None, None, 0)
        rows.append([method, f"`{mid}`", cost.text(), ratio.text(), median.text(), fmt(nfe)])
    if prot:
        label, mid, _, runs = prot[-1]
        cost, nfe = pooled_cost(runs, mid)
        pbase = next((c.id for c in runs[0].run.configs if c.method == "none"), None)
        ratio = time_ratio(runs, mid, pbase) if pbase else Stat(None, None, 0)
        median = median_time_ratio(runs, mid, pbase) if pbase else Stat(None, None, 0)
        rows.append([label, f"`{mid}`", cost.text(), ratio.text(), median.text(), fmt(nfe)])
    out += _table(
        [
            "Method",
            "Config",
            "Time per image (s) ↓",
            "× none (means)",
            "× none (medians)",
            "NFE per image",
        ],
        rows,
    )

    out += [
        "## Run directories",
        "",
        "Each seed's full report (every figure, grid and table of one run) is in "
        "`<run>/report/index.html`: "
        + ", ".join(f"`{s.path.name}`" for s in agg.seeds + agg.protect)
        + f" under `{agg.exp.out.name}/`.",
        "",
    ]
    return "\n".join(out)


# --------------------------------------------------------------------------- the runner


def _stage_log(exp: Experiment) -> dict[str, Any]:
    path = exp.folder / STAGES
    if path.is_file():
        try:
            return json.loads(path.read_text())
        except json.JSONDecodeError:
            pass
    return {"invocations": []}


def _wall(log: dict[str, Any]) -> dict[str, Any]:
    inv = log.get("invocations", [])
    totals = {"generate": 0.0, "score": 0.0, "report": 0.0}
    for entry in inv:
        for stages in entry.get("stages", {}).values():
            for stage, seconds in stages.items():
                totals[stage] = totals.get(stage, 0.0) + seconds
    return {"seconds": sum(e.get("seconds", 0.0) for e in inv), "invocations": len(inv), **totals}


def _json_default(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    raise TypeError(type(value))


def summary(agg: Aggregate, claims: list[Claim], sparsity: list[SparsityStats]) -> dict:
    """Machine-readable aggregate: seed means/stds per config and metric, and verdicts."""
    configs = {}
    for c in agg.configs:
        metrics = {}
        for k in agg.metric_keys:
            s = agg.metric(c.id, k)
            metrics[k] = {"mean": s.mean, "std": s.std, "n": s.n, "values": list(s.values)}
        configs[c.id] = {"method": c.method, "params": c.params, "metrics": metrics}
    return {
        "experiment": agg.exp.name,
        "seeds": [s.seed for s in agg.seeds],
        "defaults": agg.defaults,
        "configs": configs,
        "protection": {
            mid: {"label": label, "mean": rate.mean, "std": rate.std, "values": list(rate.values)}
            for label, mid, rate, _ in protection_rows(agg)
        },
        "sparsity": [s.__dict__ for s in sparsity],
        "claims": [
            {"key": c.key, "title": c.title, "holds": c.holds, "text": c.text} for c in claims
        ],
    }


def run_experiment(
    path: Path,
    out: Path | None = None,
    force: bool = False,
    log: Callable[[str], None] | None = None,
) -> Path:
    """Run (or resume) every seed of the experiment file at `path`, aggregate, and write
    the results page; returns its path. `out` replaces the file's [experiment] out (the
    parent folder of the run directories); `force` replaces run directories made by
    another config."""
    say = log or (lambda msg: print(msg, flush=True))
    started = time.perf_counter()
    exp = load_experiment(Path(path), out)
    exp.folder.mkdir(parents=True, exist_ok=True)
    ran: dict[str, dict[str, float]] = {}
    protected = None
    if exp.spec.protection is not None:
        ensure_shields(exp, say)
        images = split_images(exp.spec.protection.split)
        protected = images.reshape(len(images), -1)
    for seed in exp.seeds:
        configs = [exp.seed_config(seed)]
        if exp.spec.protection is not None:
            configs.append(exp.protection_config(seed))
        for config in configs:
            stages = run_stages(config, say, force=force)
            if stages:
                ran[config.run.name] = {k: round(v, 3) for k, v in stages.items()}
    radius = exp.spec.protection.radius if exp.spec.protection else None
    seeds = [load_seed(s, exp.out / f"{exp.name}-seed{s}", protected, radius) for s in exp.seeds]
    protect = (
        [
            load_seed(s, exp.out / f"{exp.name}-protect-seed{s}", protected, radius)
            for s in exp.seeds
        ]
        if exp.spec.protection is not None
        else []
    )
    agg = aggregate(exp, seeds, protect)
    agg.shield_count = None if protected is None else len(protected)
    say("aggregating over seeds")
    stage_log = _stage_log(exp)
    if ran:
        stage_log["invocations"].append(
            {
                "finished": datetime.now(UTC).isoformat(timespec="seconds"),
                "seconds": round(time.perf_counter() - started, 3),
                "stages": ran,
            }
        )
        atomic_write_text(exp.folder / STAGES, json.dumps(stage_log, indent=2))
    figures = draw_figures(agg, exp.figures)
    fronts = front_checks(agg)
    early_t = exp.spec.claims.early_t
    sparsity = (
        [s for s in (sparsity_stats(r, agg.spell_default, early_t) for r in seeds) if s]
        if agg.spell_default
        else []
    )
    claims = make_claims(agg, fronts, sparsity)
    text = render(agg, figures, fronts, sparsity, claims, _wall(stage_log))
    exp.results.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(exp.results, text)
    atomic_write_text(
        exp.figures / "results.json",
        json.dumps(summary(agg, claims, sparsity), indent=2, default=_json_default) + "\n",
    )
    say(f"results: {exp.results}")
    return exp.results
