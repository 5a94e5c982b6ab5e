"""`run_experiment` end to end on a tiny experiment: 2 seeds, 2 classes, 6 samples, 4 steps,
none and a 2-point SPELL sweep, plus the protection runs. The page's numbers are checked
against the per-seed metrics.json and sample files, and reruns must skip finished work."""

from __future__ import annotations

import json
import re
import statistics
from pathlib import Path

import numpy as np
import pytest

from bench.environment import describe_machine
from bench.errors import BenchError
from bench.experiment import load_experiment, run_experiment
from bench.experiment.stats import paired, pooled
from bench.run_dir import RunDir

TINY = """
[experiment]
name = "tiny"
seeds = [0, 1]
out = "runs"
results = "docs/results-tiny.md"

[protection]
radius = 1.5
[protection.spell]
radius = 1.5
overcompensation = 1.6
intra_batch = false
inter_batch = false

[run]
model = "digits"
methods = ["none", "spell"]
prompts = 2
samples = 6
batch_size = 3
steps = 4
threads = 1

[method.spell]
radius = [1.0, 2.0]
overcompensation = 1.6
"""

CLAIMS = ("table1", "figure3", "figure4", "figure5", "table2", "table5")


def _write(folder: Path, text: str = TINY) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "tiny.toml"
    path.write_text(text)
    return path


def _outputs(root: Path) -> dict[str, int]:
    """mtime of every file a stage writes: samples, metrics, reports, shields."""
    files = [
        *root.glob("runs/*/samples/*/*.npz"),
        *root.glob("runs/*/metrics.json"),
        *root.glob("runs/*/report/index.html"),
        *root.glob("runs/*/manifest.json"),
        *root.glob("runs/tiny/*/manifest.json"),
        *root.glob("runs/tiny/stages.json"),
    ]
    return {str(p.relative_to(root)): p.stat().st_mtime_ns for p in files}


@pytest.fixture(scope="module")
def done(tmp_path_factory) -> tuple[Path, Path, dict[str, int]]:
    root = tmp_path_factory.mktemp("experiment")
    page = run_experiment(_write(root), log=lambda _: None)
    return root, page, _outputs(root)


def _section(text: str, title: str) -> list[str]:
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"## {title}"))
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
    return lines[start:end]


def _table_rows(lines: list[str]) -> tuple[list[str], list[list[str]]]:
    """The first markdown table in `lines`: its header cells and body rows."""
    rows = [line for line in lines if line.startswith("| ")]
    cells = [[c.strip() for c in line.strip("|").split("|")] for line in rows]
    return cells[0], [r for r in cells[2:]]


def _parse(cell: str) -> tuple[float, float | None, int]:
    """'0.913 ± 0.032' -> (0.913, 0.032, decimals)."""
    match = re.fullmatch(r"(-?\d+\.(\d+))(?: ± (\d+\.\d+))?", cell)
    assert match, f"not a mean ± std cell: {cell!r}"
    std = float(match.group(3)) if match.group(3) else None
    return float(match.group(1)), std, len(match.group(2))


def _seed_metrics(root: Path, run: str, method_id: str) -> dict[str, float]:
    data = json.loads((root / "runs" / run / "metrics.json").read_text())
    return next(r["metrics"] for r in data["results"] if r["method_id"] == method_id)


def test_page_and_figures_exist(done):
    root, page, _ = done
    assert page == root / "docs" / "results-tiny.md" and page.is_file()
    text = page.read_text()
    links = re.findall(r"!\[[^]]*\]\(([^)]+)\)", text)
    assert len(links) >= 4  # Figure 3, Figure 4 fronts, Figure 5
    for link in links:
        assert not link.startswith("/") and (page.parent / link).is_file(), link
        assert link.endswith(".png")
    for title in ("Table 1", "Figure 3", "Figure 4", "Figure 5", "Table 2", "Table 5"):
        assert f"## {title}" in text


def test_table1_is_mean_and_std_of_the_seed_runs(done):
    root, page, _ = done
    header, rows = _table_rows(_section(page.read_text(), "Table 1"))
    by_name = {r[0]: r for r in rows}
    names = {
        "Recall ↑": "recall",
        "Vendi score ↑": "vendi",
        "Precision ↑": "precision",
        "Coverage ↑": "coverage",
        "Class score ↑": "class_score",
    }
    checked = 0
    for label, method_id in (("none", "none"), ("SPELL", "spell-r2-l1.6")):
        assert by_name[label][1] == f"`{method_id}`"
        for column, key in names.items():
            values = [_seed_metrics(root, f"tiny-seed{s}", method_id)[key] for s in (0, 1)]
            mean, std, places = _parse(by_name[label][header.index(column)])
            tolerance = 0.5 * 10**-places + 1e-12
            assert abs(mean - statistics.fmean(values)) <= tolerance, (label, key)
            assert std is not None and abs(std - statistics.stdev(values)) <= tolerance
            checked += 1
    assert checked == 10
    # the paired difference row: SPELL - none per seed
    diffs = [
        _seed_metrics(root, f"tiny-seed{s}", "spell-r2-l1.6")["vendi"]
        - _seed_metrics(root, f"tiny-seed{s}", "none")["vendi"]
        for s in (0, 1)
    ]
    mean, _, places = _parse(by_name["SPELL − none"][header.index("Vendi score ↑")])
    assert abs(mean - statistics.fmean(diffs)) <= 0.5 * 10**-places + 1e-12


def test_claims_section_has_a_verdict_per_claim_decided_by_the_numbers(done):
    root, page, _ = done
    lines = _section(page.read_text(), "Claims")
    verdicts = [line for line in lines if line.startswith("- ")]
    assert len(verdicts) == len(CLAIMS)
    for line in verdicts:
        assert re.search(r"\*\*(Holds|Does not hold)\.\*\*", line), line
    summary = json.loads((page.parent / "results-tiny" / "results.json").read_text())
    claims = {c["key"]: c for c in summary["claims"]}
    assert set(claims) == set(CLAIMS)
    # Table 2's verdict follows the protection rates, which we recompute from the samples.
    from bench.data.digits import load_split
    from metrics.protection import nearest_distances

    train = load_split("train").images.reshape(-1, 64)
    rates = {}
    for run, method_id in (("tiny-seed{}", "none"), ("tiny-protect-seed{}", None)):
        per_seed = []
        for seed in (0, 1):
            samples = root / "runs" / run.format(seed) / "samples"
            mid = method_id or next(p.name for p in samples.iterdir() if p.name.startswith("spell"))
            latents = np.concatenate(
                [
                    np.load(f)["latents"].reshape(-1, 64)
                    for f in sorted((samples / mid).glob("*.npz"))
                ]
            )
            per_seed.append(float((nearest_distances(latents, train) < 1.5).mean()))
        rates[mid] = statistics.fmean(per_seed)
    (none_id, none_rate), (spell_id, spell_rate) = rates.items()
    assert summary["protection"][none_id]["mean"] == pytest.approx(none_rate)
    assert summary["protection"][spell_id]["mean"] == pytest.approx(spell_rate)
    assert claims["table2"]["holds"] == (spell_rate < none_rate)
    # Table 1's verdict: diversity up on all three and precision within 5%.
    cfg = summary["configs"]
    mean = {
        k: (cfg["none"]["metrics"][k]["mean"], cfg["spell-r2-l1.6"]["metrics"][k]["mean"])
        for k in ("recall", "vendi", "coverage", "precision")
    }
    expected = all(mean[k][1] > mean[k][0] for k in ("recall", "vendi", "coverage")) and (
        mean["precision"][0] - mean["precision"][1] <= 0.05 * mean["precision"][0]
    )
    assert claims["table1"]["holds"] == expected


def test_table2_has_the_copy_rate_ct_and_auth_pct_of_every_row(done):
    root, page, _ = done
    header, rows = _table_rows(_section(page.read_text(), "Table 2"))
    for name in ("Copy rate (digits) (%) ↓", "CT (data-copying) ↑", "AuthPct ↑"):
        assert name in header, header
    # the protection run's SPELL row: the scorer measured it (it shields the set)
    at = header.index("AuthPct ↑")
    per_seed = []
    for seed in (0, 1):
        data = json.loads((root / "runs" / f"tiny-protect-seed{seed}" / "metrics.json").read_text())
        per_seed += [r["metrics"]["auth_pct"] for r in data["results"] if r["method"] == "spell"]
    mean, _, places = _parse(rows[-1][at])
    assert abs(mean - statistics.fmean(per_seed)) <= 0.5 * 10**-places + 1e-12


def test_rerun_skips_completed_work(done):
    root, page, before = done
    text = page.read_text()
    messages: list[str] = []
    run_experiment(root / "tiny.toml", log=messages.append)
    assert _outputs(root) == before, "a complete rerun rewrote stage outputs"
    assert sum("complete, skipped" in m for m in messages) == 4
    assert not any(m.endswith((": generate", ": score", ": report")) for m in messages)
    assert page.read_text() == text


def test_rerun_resumes_only_what_is_missing(done):
    root, page, _ = done
    gone = root / "runs" / "tiny-seed1" / "samples" / "spell-r2-l1.6" / "1.npz"
    gone.unlink()
    before = _outputs(root)
    messages: list[str] = []
    run_experiment(root / "tiny.toml", log=messages.append)
    after = _outputs(root)
    assert gone.is_file()
    changed = {k for k in after if after[k] != before.get(k)}
    samples = {k for k in changed if k.endswith(".npz")}
    assert samples == {str(gone.relative_to(root))}
    assert "runs/tiny-seed1/metrics.json" in changed
    assert "runs/tiny-seed0/metrics.json" not in changed
    assert "tiny-seed1: generate" in messages and "tiny-seed0: complete, skipped" in messages


def test_bad_experiment_files_are_one_line_errors(tmp_path):
    with pytest.raises(BenchError, match="seeds"):
        load_experiment(_write(tmp_path / "a", TINY.replace("[run]", "[run]\nseed = 3")))
    with pytest.raises(BenchError, match="distinct"):
        load_experiment(_write(tmp_path / "b", TINY.replace("seeds = [0, 1]", "seeds = [1, 1]")))
    with pytest.raises(BenchError, match="radius"):
        load_experiment(_write(tmp_path / "c", TINY.replace("radius = [1.0, 2.0]", "radius = -1")))
    with pytest.raises(BenchError, match="not found"):
        load_experiment(tmp_path / "missing.toml")


def test_page_states_the_machine_of_the_manifests(done):
    root, page, _ = done
    text = page.read_text()
    hardware = RunDir(root / "runs" / "tiny-seed0").manifest()["hardware"]
    line = next(x for x in _section(text, "Protocol") if x.startswith("- Machine"))
    assert describe_machine(hardware) in line


def test_table5_pools_the_wall_times_of_every_seed(done):
    root, page, _ = done
    header, rows = _table_rows(_section(page.read_text(), "Table 5"))
    times = []
    for seed in (0, 1):
        run = RunDir(root / "runs" / f"tiny-seed{seed}")
        for prompt in run.prompt_ids():
            times += run.wall_times("spell-r2-l1.6", prompt)
    mean, std, places = _parse(next(r for r in rows if r[0] == "spell")[2])
    tolerance = 0.5 * 10**-places + 1e-12
    assert abs(mean - statistics.fmean(times)) <= tolerance
    assert abs(std - statistics.stdev(times)) <= tolerance


def test_paired_statistics_keep_seeds_with_both_values():
    pair = paired([(1.0, 2.0), (None, 5.0), (2.0, 1.0), (4.0, 6.0)])
    assert pair.n == 3 and pair.a == (1.0, 2.0, 4.0)
    assert pair.differences().mean == pytest.approx(statistics.fmean([1.0, -1.0, 2.0]))
    assert pair.ratios().values == (2.0, 0.5, 1.5)
    assert pair.wins(higher_is_better=True) == (2, 3)
    assert pair.wins(higher_is_better=False) == (1, 3)
    groups = [[1.0, 2.0, 4.0], [3.0, 7.0]]
    union = pooled((len(g), statistics.fmean(g), statistics.stdev(g)) for g in groups)
    assert union.mean == pytest.approx(statistics.fmean(groups[0] + groups[1]))
    assert union.std == pytest.approx(statistics.stdev(groups[0] + groups[1]))


def test_the_method_under_test_comes_from_the_file(tmp_path):
    text = TINY.replace('name = "tiny"', 'name = "tiny"\nmethod = "pg"')
    with pytest.raises(BenchError, match=r"only \[protection\.pg\]"):
        load_experiment(_write(tmp_path / "a", text))
    text = text.replace('methods = ["none", "spell"]', 'methods = ["none", "spell", "pg"]')
    text = text.replace("[protection.spell]", "[protection.pg]")
    with pytest.raises(BenchError, match="bad parameters for method .pg."):  # SPELL's params
        load_experiment(_write(tmp_path / "b", text))
    text = text[: text.index("[protection]")] + text[text.index("[run]") :]
    exp = load_experiment(_write(tmp_path / "c", text))
    assert (exp.method, exp.label, exp.baseline) == ("pg", "PG", "none")
    assert exp.seed_config(0).run.methods == ["none", "spell", "pg"]


def test_claims_name_the_method_of_the_file(done):
    root, _, before = done
    text = TINY.replace('name = "tiny"', 'name = "tiny"\nlabel = "REP"')
    text = text.replace("results-tiny.md", "results-rep.md")
    (root / "rep.toml").write_text(text)
    messages: list[str] = []
    page = run_experiment(root / "rep.toml", log=messages.append)
    assert sum("complete, skipped" in m for m in messages) == 4  # the same runs
    lines = _section(page.read_text(), "Claims") + _section(page.read_text(), "Table 1")
    assert not any("SPELL" in line for line in lines)
    assert any("REP better in" in line for line in lines)
    assert any(line.startswith("| REP − none | paired |") for line in lines)


def test_the_default_config_keeps_its_old_name(tmp_path):
    text = TINY.replace('name = "tiny"', 'name = "tiny"\nspell_default = "spell-r1-l1.6"')
    assert load_experiment(_write(tmp_path, text)).spec.experiment.default == "spell-r1-l1.6"


# --- paired tests over seeds --------------------------------------------------------


def test_sign_test_matches_hand_computed_binomial_tails():
    from bench.experiment.stats import sign_test_p

    # n = 10, 9 up: P(X <= 1) = (1 + 10) / 1024, two-sided doubles it
    assert sign_test_p(9, 1) == pytest.approx(22 / 1024)
    assert sign_test_p(1, 9) == pytest.approx(22 / 1024)
    # n = 4, all up: 2 * 1/16
    assert sign_test_p(4, 0) == pytest.approx(0.125)
    # n = 20, 15 up: 2 * (1 + 20 + 190 + 1140 + 4845 + 15504) / 2^20
    assert sign_test_p(15, 5) == pytest.approx(2 * 21700 / 2**20)
    assert sign_test_p(15, 5) < 0.05 < sign_test_p(14, 6)
    # balanced, or nothing left after the ties: p = 1 (capped)
    assert sign_test_p(5, 5) == 1.0 and sign_test_p(0, 0) == 1.0
    # ties are dropped: 3 up, 1 down, 1 tie is n = 4, P(X <= 1) = 5/16
    result = paired([(0.0, 1.0), (0.0, 2.0), (1.0, 1.0), (0.0, -1.0), (0.0, 3.0)]).sign_test()
    assert (result.p, result.side, result.n) == (pytest.approx(0.625), 1, 4)
    assert result.supports(higher=True, alpha=0.7) and not result.supports(False, 0.7)
    assert not result.supports(higher=True, alpha=0.05)


def test_paired_bootstrap_of_the_mean_difference():
    pair = paired([(0.0, d) for d in (0.5, 1.0, 1.5, 2.0, 2.5)])
    result = pair.bootstrap(resamples=999, seed=0)
    # every resampled mean is > 0: p = 2 * 1 / (B + 1)
    assert result.p == pytest.approx(2 / 1000) and result.side == 1
    low, high = result.interval
    assert 0.5 <= low < 1.5 < high <= 2.5
    assert pair.bootstrap(resamples=999, seed=0) == result  # seeded
    symmetric = paired([(0.0, d) for d in (-2.0, -1.0, 1.0, 2.0)]).bootstrap(999, seed=0)
    assert symmetric.p > 0.5 and symmetric.side == 0


def _claims(page: Path) -> dict[str, dict]:
    summary = json.loads((page.with_suffix("") / "results.json").read_text())
    return {c["key"]: c for c in summary["claims"]}


def test_digits_verdicts_compare_seed_means_without_significance(done):
    """Without [claims] significance the verdicts are today's: seed means and
    thresholds, no p-values on the page."""
    root, page, _ = done
    text = page.read_text()
    assert "sign test" not in text and "p (two-sided)" not in text and " p = " not in text
    assert "comparisons of the seed means" in text
    summary = json.loads((page.parent / "results-tiny" / "results.json").read_text())
    cfg, claims = summary["configs"], _claims(page)

    def mean(mid: str, key: str) -> float:
        return cfg[mid]["metrics"][key]["mean"]

    lo, hi = "spell-r1-l1.6", "spell-r2-l1.6"
    expected = mean(hi, "vendi") > mean(lo, "vendi") and mean(hi, "precision") <= mean(
        lo, "precision"
    )
    assert claims["figure3"]["holds"] == expected
    from reports.pareto import dominates

    for x, y in (("precision", "recall"), ("density", "coverage")):
        front = next(
            f for f in claims["figure4"]["text"].split("; ") if "vs" in f and x in f.lower()
        )
        spell = [m for m in cfg if m.startswith("spell")]
        undominated = sum(
            not dominates(
                (mean("none", x), mean("none", y)), (mean(s, x), mean(s, y)), (True, True)
            )
            for s in spell
        )
        assert f"{undominated}/{len(spell)} SPELL points undominated" in front


def test_significance_makes_every_comparison_a_sign_test(done):
    """The same digits runs with `significance`: with 2 seeds the sign test's smallest
    p-value is 0.5, so no comparison can hold; the page shows the p-values."""
    root, _, _ = done
    text = TINY.replace("[run]", "[claims]\nsignificance = 0.05\n\n[run]")
    text = text.replace("results-tiny.md", "results-signed.md")
    (root / "signed.toml").write_text(text)
    messages: list[str] = []
    page = run_experiment(root / "signed.toml", log=messages.append)
    assert sum("complete, skipped" in m for m in messages) == 4  # the same runs
    claims = _claims(page)
    for key in ("table1", "figure3", "table2", "table5"):
        assert claims[key]["holds"] is False, key
        assert "exact sign test p = " in claims[key]["text"]
    header, rows = _table_rows(_section(page.read_text(), "Table 1"))
    p_row = next(r for r in rows if r[0] == "p (two-sided)")
    assert p_row[1] == "exact sign test"
    assert all(float(v) >= 0.5 for v in p_row[2:])


TOY = """
[experiment]
name = "toy"
seeds = [0, 1, 2]
out = "runs"
results = "docs/results-toy.md"
default = "spell-r0.05-l1.6"
run_reports = "first"
metrics = ["exact_log_density", "exact_precision", "mode_coverage", "exact_recall"]

[claims]
significance = 0.05
diversity = ["mode_coverage", "exact_recall"]
quality = "exact_precision"
context = ["exact_log_density"]
sweep_diversity = "mode_coverage"
fronts = [["exact_log_density", "mode_coverage"], ["exact_precision", "exact_recall"]]

[protection]
images = "toy2d-train"
count = 8
radius = 0.02
[protection.spell]
radius = 0.02
intra_batch = false
inter_batch = false

[run]
model = "toy2d"
methods = ["none", "spell", "cfg"]
prompts = 2
samples = 8
batch_size = 4
steps = 8
threads = 1

[method.spell]
radius = [0.02, 0.05]
overcompensation = 1.6

[method.cfg]
weight = 1.0
"""


@pytest.fixture(scope="module")
def toy(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("toy")
    page = run_experiment(_write(root, TOY), log=lambda _: None)
    return root, page


def test_toy2d_experiment_decides_with_the_sign_test(toy):
    from bench.experiment.stats import sign_test_p

    root, page = toy
    text = page.read_text()
    for title in ("Claims", "Table 1", "Figure 3", "Figure 4", "Figure 5", "Table 2", "Table 5"):
        assert f"## {title}" in text
    claims = _claims(page)
    assert set(claims) == set(CLAIMS)
    # Table 1's p-values are the sign test of the per-seed metrics.json values
    header, rows = _table_rows(_section(text, "Table 1"))
    assert header[2:] == [
        "Exact log-density ↑",
        "Exact precision ↑",
        "Mode coverage ↑",
        "Exact recall ↑",
    ]
    p_row = next(r for r in rows if r[0] == "p (two-sided)")
    for column, key in (("Exact recall ↑", "exact_recall"), ("Mode coverage ↑", "mode_coverage")):
        values = [
            (
                _seed_metrics(root, f"toy-seed{s}", "none")[key],
                _seed_metrics(root, f"toy-seed{s}", "spell-r0.05-l1.6")[key],
            )
            for s in (0, 1, 2)
        ]
        up, down = sum(b > a for a, b in values), sum(b < a for a, b in values)
        assert float(p_row[header.index(column)]) == pytest.approx(sign_test_p(up, down), abs=1e-3)
        assert f"exact sign test p = {sign_test_p(up, down):.3g}" in claims["table1"]["text"]
    # 3 seeds: the smallest two-sided sign-test p is 0.25, so no comparison holds
    for key in ("table1", "figure3", "table2", "table5"):
        assert claims[key]["holds"] is False, key
    assert "the exact two-sided sign test" in "\n".join(_section(text, "Claims"))
    # Table 2 protects toy2d training points, and the page says so
    assert "2-D point space" in text and "training point" in text
    # only the first seed's runs get a per-run report
    assert (root / "runs" / "toy-seed0" / "report" / "index.html").is_file()
    assert not (root / "runs" / "toy-seed1" / "report" / "index.html").exists()


def test_unknown_claim_keys_are_one_line_errors(toy):
    root, _ = toy
    text = TOY.replace('sweep_diversity = "mode_coverage"', 'sweep_diversity = "modes"')
    text = text.replace("results-toy.md", "results-bad.md")
    with pytest.raises(BenchError, match=r"\[claims\] names \['modes'\]"):
        run_experiment(_write(root / "bad", text).rename(root / "bad.toml"), log=lambda _: None)
