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
