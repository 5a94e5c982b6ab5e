"""`bench regress` on hand-made metrics.json / baseline pairs."""

import json

import pytest

from bench.errors import BenchError
from bench.regress import (
    DEFAULT_TOLERANCES,
    compare,
    format_rows,
    has_regression,
    make_baseline,
    read_baseline,
    update_baseline,
)

TOLERANCES = {"fd_digits": {"rel": 0.1}, "recall": {"abs": 0.05}, "*": {"abs": 0.05}}


def _metrics(**methods: dict) -> dict:
    return {
        "protocol": {"model": "digits"},
        "results": [{"method_id": m, "metrics": v} for m, v in methods.items()],
    }


def _baseline(**methods: dict) -> dict:
    return {"tolerances": TOLERANCES, "results": methods}


BASE = {"recall": 0.30, "precision": 0.80, "fd_digits": 10.0}


def _status(metrics: dict, baseline: dict) -> dict:
    return {(r.method_id, r.metric): r.status for r in compare(metrics, baseline)}


def test_within_tolerance_passes():
    run = _metrics(none={"recall": 0.34, "precision": 0.76, "fd_digits": 10.9})
    rows = compare(run, _baseline(none=BASE))
    assert {r.status for r in rows} == {"ok"} and not has_regression(rows)
    assert "3 values compared: 3 ok" in format_rows(rows)


def test_a_worse_move_beyond_tolerance_fails():
    run = _metrics(none={"recall": 0.24, "precision": 0.80, "fd_digits": 10.0})
    rows = compare(run, _baseline(none=BASE))
    assert _status(run, _baseline(none=BASE))[("none", "recall")] == "regressed"
    assert has_regression(rows)
    table = format_rows(rows)
    assert "REGRESSED" in table and "-0.06" in table and "abs 0.05" in table
    assert "precision" not in table  # only what moved


def test_direction_matters_for_frechet_distances():
    worse = _metrics(none={**BASE, "fd_digits": 11.5})
    better = _metrics(none={**BASE, "fd_digits": 8.5, "recall": 0.40})
    assert _status(worse, _baseline(none=BASE))[("none", "fd_digits")] == "regressed"
    rows = compare(better, _baseline(none=BASE))
    assert {r.metric: r.status for r in rows} == {
        "recall": "improved",
        "precision": "ok",
        "fd_digits": "improved",
    }
    assert not has_regression(rows) and "improved" in format_rows(rows)


def test_relative_versus_absolute_tolerance():
    base = _baseline(none={"fd_digits": 100.0, "vendi": 100.0})
    run = _metrics(none={"fd_digits": 109.0, "vendi": 99.0})  # rel 10% = 10; abs 0.05
    assert _status(run, base) == {("none", "fd_digits"): "ok", ("none", "vendi"): "regressed"}
    both = {**base, "tolerances": {"*": {"abs": 0.05, "rel": 0.02}}}
    assert _status(run, both)[("none", "vendi")] == "ok"  # the larger allowance wins
    patterns = {**base, "tolerances": {"fd_*": {"rel": 0.05}, "*": {"rel": 0.5}}}
    assert _status(run, patterns)[("none", "fd_digits")] == "regressed"


def test_missing_method_metric_and_null_fail():
    base = _baseline(none=BASE, spell=BASE)
    run = _metrics(none={"recall": None, "precision": 0.8})
    status = _status(run, base)
    assert status[("none", "recall")] == "null"
    assert status[("none", "fd_digits")] == "missing"
    assert status[("spell", "recall")] == "missing"
    assert has_regression(compare(run, base))
    assert "MISSING" in format_rows(compare(run, base))


def test_new_values_and_shared_nulls_pass():
    base = _baseline(none={"recall": None, "precision": 0.8})
    run = _metrics(none={"recall": None, "precision": 0.8, "vendi": 2.0}, pg={"recall": 0.1})
    status = _status(run, base)
    assert status == {
        ("none", "recall"): "ok",
        ("none", "precision"): "ok",
        ("none", "vendi"): "new",
        ("pg", "recall"): "new",
    }
    assert not has_regression(compare(run, base))


def test_no_tolerance_means_exact():
    base = {"results": {"none": {"recall": 0.3}}}
    assert _status(_metrics(none={"recall": 0.3}), base) == {("none", "recall"): "ok"}
    assert _status(_metrics(none={"recall": 0.2999}), base) == {("none", "recall"): "regressed"}


def test_update_round_trips_and_keeps_tolerances(tmp_path):
    path = tmp_path / "baseline.json"
    first = _metrics(none=BASE, spell={**BASE, "recall": 0.4})
    written = update_baseline(first, path)
    assert written["tolerances"] == DEFAULT_TOLERANCES
    assert not has_regression(compare(first, read_baseline(path)))
    custom = {**read_baseline(path), "tolerances": TOLERANCES, "directions": {"x": "lower"}}
    path.write_text(json.dumps(custom))
    second = _metrics(none={**BASE, "recall": 0.1})
    assert has_regression(compare(second, read_baseline(path)))
    update_baseline(second, path)
    again = read_baseline(path)
    assert again["tolerances"] == TOLERANCES and again["directions"] == {"x": "lower"}
    assert again["results"] == {"none": {**BASE, "recall": 0.1}}
    assert not has_regression(compare(second, again))
    assert [p.name for p in tmp_path.iterdir()] == ["baseline.json"]


def test_make_baseline_holds_every_metric():
    baseline = make_baseline(_metrics(none={"recall": 0.3, "fid": None}), {"*": {"abs": 0.1}})
    assert baseline == {
        "tolerances": {"*": {"abs": 0.1}},
        "results": {"none": {"recall": 0.3, "fid": None}},
    }


@pytest.mark.parametrize(
    "baseline",
    [
        {"tolerances": {}},
        {"results": {"none": {"recall": "high"}}},
        {"results": {}, "tolerances": {"recall": {"abs": -1}}},
        {"results": {}, "tolerances": {"recall": {"pct": 5}}},
        {"results": {}, "directions": {"recall": "up"}},
    ],
)
def test_malformed_baselines_are_one_line_errors(baseline):
    with pytest.raises(BenchError):
        compare(_metrics(none=BASE), baseline)


def test_missing_files_are_one_line_errors(tmp_path):
    from bench.regress import read_metrics

    with pytest.raises(BenchError, match="bench score"):
        read_metrics(tmp_path)
    with pytest.raises(BenchError, match="--update"):
        read_baseline(tmp_path / "nope.json")
