"""`run_experiment`: every seed's runs through bench.stages (each stage only when not
done), then the statistics, figures, claims and the page."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.atomic import atomic_write_text
from bench.generate import run_path
from bench.stages import STAGES, run_stages

from .aggregate import Aggregate, aggregate
from .claims import Evidence, make_claims
from .figures import draw_figures
from .fronts import front_checks
from .page import PageInput, render
from .protection import ensure_shields, protection_rows, seed_protection, shield_count, shield_dim
from .schema import Experiment, load_experiment
from .seeds import Seeds, load_seed
from .sparsity import seed_sparsity
from .summary import summary, summary_json

STAGE_LOG = "stages.json"  # in the experiment's own folder: what each invocation ran

Log = Callable[[str], None]


def stages_of(exp: Experiment, seed: int) -> tuple[str, ...]:
    """A seed's stages: all three, or without the per-run report where `run_reports =
    "first"` keeps it to the first seed's runs (the page reads no report)."""
    if exp.spec.experiment.run_reports == "first" and seed != exp.seeds[0]:
        return tuple(s for s in STAGES if s != "report")
    return STAGES


def run_seeds(exp: Experiment, log: Log, force: bool) -> dict[str, dict[str, float]]:
    """Every run of every seed; the seconds of the stages that ran, per run name."""
    ran = {}
    for seed in exp.seeds:
        for config in exp.configs(seed):
            stages = run_stages(config, log, force=force, stages=stages_of(exp, seed))
            if stages:
                ran[config.run.name] = {k: round(v, 3) for k, v in stages.items()}
    return ran


def read_stage_log(exp: Experiment) -> dict[str, Any]:
    path = exp.folder / STAGE_LOG
    if path.is_file():
        try:
            return json.loads(path.read_text())
        except json.JSONDecodeError:
            pass
    return {"invocations": []}


def record(exp: Experiment, ran: dict[str, dict[str, float]], started: float) -> dict:
    """Append this invocation to the stage log when it did work; the whole log."""
    log = read_stage_log(exp)
    if ran:
        log["invocations"].append(
            {
                "finished": datetime.now(UTC).isoformat(timespec="seconds"),
                "seconds": round(time.perf_counter() - started, 3),
                "stages": ran,
            }
        )
        atomic_write_text(exp.folder / STAGE_LOG, json.dumps(log, indent=2))
    return log


def wall_times(log: dict[str, Any]) -> dict[str, Any]:
    """Seconds over every invocation that did work, in all and per stage."""
    inv = log.get("invocations", [])
    totals = dict.fromkeys(STAGES, 0.0)
    for entry in inv:
        for stages in entry.get("stages", {}).values():
            for stage, seconds in stages.items():
                totals[stage] = totals.get(stage, 0.0) + seconds
    return {"seconds": sum(e.get("seconds", 0.0) for e in inv), "invocations": len(inv), **totals}


def load_all(exp: Experiment) -> Aggregate:
    """The scored runs of every seed, with their protection rates, taken together."""
    protection = exp.spec.protection
    rates = seed_protection(exp.shield_path, protection.radius) if protection else None
    seeds = Seeds([load_seed(s, run_path(exp.seed_config(s)), rates) for s in exp.seeds])
    protect = Seeds(
        [load_seed(s, run_path(exp.protection_config(s)), rates) for s in exp.seeds]
        if protection
        else []
    )
    agg = aggregate(exp, seeds, protect)
    if protection:
        agg.shield_count = shield_count(exp.shield_path)
        agg.shield_dim = shield_dim(exp.shield_path)
    return agg


def analyse(agg: Aggregate, wall: dict[str, Any]) -> PageInput:
    """Figures, front checks, sparsity statistics and claims from the seeds."""
    exp = agg.exp
    ev = Evidence(
        agg,
        front_checks(agg),
        seed_sparsity(agg.seeds, agg.tested, exp.spec.claims.early_t),
        protection_rows(agg),
    )
    figures = draw_figures(agg, exp.figures)
    return PageInput(agg, figures, ev.fronts, ev.sparsity, make_claims(ev), ev.protection, wall)


def run_experiment(
    path: Path, out: Path | None = None, force: bool = False, log: Log | None = None
) -> Path:
    """Run (or resume) every seed of the experiment file at `path`, aggregate, and write
    the results page; returns its path. `out` replaces the file's [experiment] out (the
    parent folder of the run directories); `force` replaces run directories made by
    another config."""
    say = log or (lambda msg: print(msg, flush=True))
    started = time.perf_counter()
    exp = load_experiment(Path(path), out)
    exp.folder.mkdir(parents=True, exist_ok=True)
    if exp.spec.protection is not None:
        ensure_shields(exp, say)
    ran = run_seeds(exp, say, force)
    agg = load_all(exp)
    say("aggregating over seeds")
    page = analyse(agg, wall_times(record(exp, ran, started)))
    exp.results.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(exp.results, render(page))
    data = summary(agg, page.claims, page.sparsity, page.protection)
    atomic_write_text(exp.figures / "results.json", summary_json(data))
    say(f"results: {exp.results}")
    return exp.results
