"""The three stages of a run, as `bench run` and `bench experiment` both call them.

Each stage reads the previous stage's files (RunDir), so any stage can run alone;
`run_stages` runs those not yet done and records the status in the manifest.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.config import BenchConfig
from bench.run_dir import RunDir

STAGES = ("generate", "score", "report")


def generate_stage(config: BenchConfig, force: bool = False, progress: bool = True, launch=None):
    from bench.generate import generate

    return generate(config, force=force, progress=progress, launch=launch)


def score_stage(
    run_dir: Path,
    extractors: list[str] | None = None,
    weights_dir: Path | None = None,
    device: str = "cpu",
    partial: bool = False,
    copy_thresholds: dict[str, float] | None = None,
) -> dict[str, Any]:
    from metrics.completeness import scoring_scope

    run = RunDir(run_dir)
    with run.lock():
        scoring_scope(run, partial)  # an unfinished run is refused before the scorer loads
        from metrics.score import ScoreSettings, score_run

        settings = ScoreSettings(copy_thresholds=dict(copy_thresholds or {}))
        return score_run(run_dir, extractors, weights_dir, device, settings, partial=partial)


def check_scorable(run_dir: Path, partial: bool = False) -> None:
    """What score_stage refuses (not a run, or unfinished without `partial`), checked
    before anything heavy loads: distributed extraction runs ahead of the scoring."""
    from metrics.completeness import scoring_scope

    run = RunDir(run_dir)
    with run.lock():
        scoring_scope(run, partial)


def report_stage(run_dir: Path) -> Path:
    """The report; the run is `reported` when it drew a full scoring's numbers."""
    from reports.build import build_report

    run = RunDir(run_dir)
    with run.lock():
        index = build_report(run_dir)
        if run.status() in ("scored", "reported"):
            run.set_status("reported")
    return index


def run_stages(
    config: BenchConfig,
    log: Callable[[str], None],
    force: bool = False,
    stages: tuple[str, ...] = STAGES,
) -> dict[str, float]:
    """Run each of `stages` that is not already done; the seconds of those that ran."""
    from bench.generate import run_path

    run = RunDir(run_path(config))
    todo = {
        "generate": lambda: not run.is_generated(config.hash()),
        "score": lambda: not run.is_scored(),
        "report": lambda: not run.is_reported(),
    }
    actions = {
        "generate": lambda: generate_stage(config, force=force, progress=False),
        "score": lambda: score_stage(run.path, device=config.run.device),
        "report": lambda: report_stage(run.path),
    }
    ran: dict[str, float] = {}
    for stage in stages:
        if todo[stage]():
            log(f"{run.path.name}: {stage}")
            start = time.perf_counter()
            actions[stage]()
            ran[stage] = time.perf_counter() - start
    if not ran:
        log(f"{run.path.name}: complete, skipped")
    return ran
