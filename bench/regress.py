"""`bench regress`: compare a scored run's metrics with a baseline file, within tolerances.

The baseline is JSON:
    {"tolerances": {"fd_digits": {"rel": 0.1}, "recall": {"abs": 0.05}, "*": {"abs": 0.05}},
     "directions": {"my_metric": "lower"},                  (optional)
     "results": {"<method_id>": {"recall": 0.31, "fd_digits": 12.5, ...}}}
A metric's tolerance is its own entry, else the most specific matching glob pattern
("fd_*", then "*"); with both "abs" and "rel" the larger allowance wins; with no
entry at all the value must match exactly. Which direction is better is what each
metric declares (metrics.catalog: Fréchet distances, mode KL, outlier share lower),
unless "directions" says otherwise.

A move in the worse direction beyond tolerance is a regression; one in the better
direction is reported as improved and passes. A method-config or metric of the
baseline missing from the run, or null where the baseline has a number, fails.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path

from bench.atomic import atomic_write_text
from bench.errors import BenchError
from bench.run_dir import RunDir

DEFAULT_TOLERANCES = {
    "recall": {"abs": 0.05},
    "precision": {"abs": 0.05},
    "density": {"abs": 0.05},
    "coverage": {"abs": 0.05},
    "fid": {"rel": 0.1},
    "fd_*": {"rel": 0.1},
    "*": {"rel": 0.05},
}
STATUSES = ("ok", "improved", "regressed", "null", "missing", "new")
FAILING = ("regressed", "missing", "null")
_SLACK = 1e-9  # relative: float noise at an exact tolerance boundary is not a move


@dataclass(frozen=True)
class Row:
    method_id: str
    metric: str
    value: float | None
    baseline: float | None
    delta: float | None
    tolerance: str
    status: str  # ok, improved, regressed, missing, null, new

    @property
    def failed(self) -> bool:
        return self.status in FAILING


def compare(metrics: dict, baseline: dict) -> list[Row]:
    """One row per (method-config, metric) of the baseline, plus the run's new ones."""
    run = run_values(metrics)
    check_baseline(baseline)
    tolerances, directions = baseline.get("tolerances", {}), baseline.get("directions", {})
    rows = []
    for method_id, expected in baseline["results"].items():
        got = run.get(method_id)
        for metric, base in expected.items():
            tol = tolerances_for(metric, tolerances)
            lower = lower_is_better(metric, directions)
            if got is None or metric not in got:
                rows.append(Row(method_id, metric, None, base, None, describe(tol), "missing"))
            else:
                rows.append(_row(method_id, metric, got[metric], base, tol, lower))
        extra = sorted(set(got or {}) - set(expected))
        rows += [Row(method_id, m, got[m], None, None, "", "new") for m in extra]
    for method_id in sorted(set(run) - set(baseline["results"])):
        rows += [Row(method_id, m, v, None, None, "", "new") for m, v in run[method_id].items()]
    return rows


def _row(method_id, metric, value, base, tol: dict, lower: bool) -> Row:
    text = describe(tol)
    if base is None:
        status = "ok" if value is None else "new"
        return Row(method_id, metric, value, None, None, text, status)
    if value is None:
        return Row(method_id, metric, None, base, None, text, "null")
    delta = value - base
    allowed = allowance(tol, base) + _SLACK * max(1.0, abs(base))
    status = "ok"
    if abs(delta) > allowed:
        worse = delta > 0 if lower else delta < 0
        status = "regressed" if worse else "improved"
    return Row(method_id, metric, value, base, delta, text, status)


def has_regression(rows: list[Row]) -> bool:
    return any(r.failed for r in rows)


def tolerances_for(metric: str, tolerances: dict) -> dict:
    if metric in tolerances:
        return tolerances[metric]
    patterns = [p for p in tolerances if fnmatchcase(metric, p)]
    return tolerances[max(patterns, key=len)] if patterns else {}


def allowance(tol: dict, base: float) -> float:
    return max(tol.get("abs", 0.0), tol.get("rel", 0.0) * abs(base))


def describe(tol: dict) -> str:
    parts = [f"abs {tol['abs']:g}"] if "abs" in tol else []
    parts += [f"rel {100 * tol['rel']:g}%"] if "rel" in tol else []
    return ", ".join(parts) or "exact"


def lower_is_better(metric: str, directions: dict) -> bool:
    """The baseline's word, else what the metric declares (metrics.catalog)."""
    from metrics.catalog import metric_info

    if metric in directions:
        return directions[metric] == "lower"
    return not metric_info(metric).higher_is_better


def run_values(metrics: dict) -> dict[str, dict[str, float | None]]:
    """method_id -> metric -> value (NaN read as null) from a metrics.json dict."""
    results = metrics.get("results") if isinstance(metrics, dict) else None
    if not isinstance(results, list):
        raise BenchError('metrics.json has no "results" list: rerun `bench score`')
    out: dict[str, dict[str, float | None]] = {}
    for r in results:
        if not isinstance(r, dict) or not isinstance(r.get("method_id"), str):
            raise BenchError("metrics.json results need a method_id each: rerun `bench score`")
        if r["method_id"] in out:
            raise BenchError(f"metrics.json lists method-config {r['method_id']!r} twice")
        out[r["method_id"]] = {k: _number(v) for k, v in r.get("metrics", {}).items()}
    return out


def _number(value: object) -> float | None:
    if value is None or isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def check_baseline(baseline: dict) -> None:
    """A one-line error for a malformed baseline."""
    if not isinstance(baseline, dict) or not isinstance(baseline.get("results"), dict):
        raise BenchError('the baseline needs a "results" object: {"<method_id>": {metric: value}}')
    for method_id, values in baseline["results"].items():
        if not isinstance(values, dict) or not all(
            v is None or _number(v) is not None for v in values.values()
        ):
            raise BenchError(f"baseline results of {method_id!r} must map metrics to numbers")
    for name, tol in baseline.get("tolerances", {}).items():
        ok = isinstance(tol, dict) and tol and set(tol) <= {"abs", "rel"}
        if not ok or not all(_number(v) is not None and v >= 0 for v in tol.values()):
            raise BenchError(f'tolerance {name!r} must be {{"abs": x}} and/or {{"rel": x}}, x >= 0')
    for name, way in baseline.get("directions", {}).items():
        if way not in ("lower", "higher"):
            raise BenchError(f'baseline direction of {name!r} must be "lower" or "higher"')


def format_rows(rows: list[Row], show_all: bool = False) -> str:
    """A table of what moved (every row with `show_all`), then a one-line summary."""
    shown = rows if show_all else [r for r in rows if r.status != "ok"]
    counts = {s: sum(r.status == s for r in rows) for s in STATUSES}
    summary = f"{len(rows)} values compared: " + ", ".join(
        f"{n} {s}" for s, n in counts.items() if n
    )
    if not shown:
        return summary if rows else "nothing to compare: the baseline has no results"
    header = ("method", "metric", "value", "baseline", "delta", "tolerance", "status")
    table = [header] + [
        (
            r.method_id,
            r.metric,
            _fmt(r.value),
            _fmt(r.baseline),
            _fmt(r.delta, sign=True),
            r.tolerance,
            r.status.upper() if r.failed else r.status,
        )
        for r in shown
    ]
    widths = [max(len(line[i]) for line in table) for i in range(len(header))]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip() for line in table
    ]
    return "\n".join([*lines, summary])


def _fmt(value: float | None, sign: bool = False) -> str:
    if value is None:
        return "-"
    return f"{value:+.4g}" if sign else f"{value:.4g}"


def make_baseline(
    metrics: dict, tolerances: dict | None = None, directions: dict | None = None
) -> dict:
    """A baseline holding every metric of the run (nulls included) and the tolerances."""
    baseline = {
        "tolerances": dict(DEFAULT_TOLERANCES if tolerances is None else tolerances),
        "results": run_values(metrics),
    }
    if directions:
        baseline["directions"] = dict(directions)
    check_baseline(baseline)
    return baseline


def read_metrics(run_dir: Path) -> dict:
    path = RunDir(run_dir).metrics_file
    if not path.is_file():
        raise BenchError(f"{path} not found: score the run first (`bench score {run_dir}`)")
    metrics = _read_json(path)
    if metrics.get("partial"):
        raise BenchError(
            f"{path} holds partial scores (`bench score --partial`): finish the generation "
            "and score it again before comparing it with a baseline"
        )
    return metrics


def read_baseline(path: Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise BenchError(f"baseline {path} not found: write one with `bench regress --update`")
    baseline = _read_json(path)
    check_baseline(baseline)
    return baseline


def update_baseline(metrics: dict, path: Path) -> dict:
    """Rewrite `path` from the run's metrics, keeping its tolerances and directions."""
    old = read_baseline(path) if Path(path).is_file() else {}
    baseline = make_baseline(metrics, old.get("tolerances"), old.get("directions"))
    atomic_write_text(Path(path), json.dumps(baseline, indent=2, sort_keys=True) + "\n")
    return baseline


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text("utf-8"))
    except (ValueError, UnicodeDecodeError) as err:
        raise BenchError(f"{path} is not valid JSON: {err}") from err
