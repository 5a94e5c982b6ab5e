"""The paper's tables from a fabricated scored run: rows, best values, formats."""

import csv
import io
import json

import pytest

from reports.cost import cost_from_result
from reports.rundata import MethodConfig, RunData, load_run
from reports.sweeps import default_config, swept_params
from reports.synthetic import DEFAULT_CONFIGS, FakeConfig, make_run
from reports.table_io import to_csv, to_json, to_markdown, to_pipe_table
from reports.tables import (
    Cell,
    cost_table,
    defaults_table,
    fmt_number,
    metric_cell,
    protection_table,
    run_costs,
    sweep_table,
)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    path = make_run(
        tmp_path_factory.mktemp("tables") / "run",
        prompts=2,
        samples=8,
        steps=6,
        protection=True,
        nulls={"spell-r2-l1.6": ["density"]},
    )
    return load_run(path)


def spell(radius: float, lam: float = 1.6) -> MethodConfig:
    return MethodConfig(f"spell-r{radius:g}", "spell", {"radius": radius, "overcompensation": lam})


def test_default_config_matches_class_defaults_on_swept_params():
    configs = [spell(1.0), spell(2.0), spell(3.0)]
    assert swept_params(configs) == ["radius"]
    assert default_config(configs, {"radius": 3.0, "overcompensation": 1.0}).id == "spell-r3"


def test_default_config_falls_back_to_the_middle_sweep_point():
    configs = [spell(4.0), spell(1.0), spell(3.0), spell(2.0)]
    assert default_config(configs, {"radius": 9.0}).id == "spell-r2"
    assert default_config(configs, None).id == "spell-r2"
    assert default_config([spell(5.0)], None).id == "spell-r5"


def test_table1_is_none_then_each_methods_default(run):
    table = defaults_table(run)
    assert [r["id"] for r in table.rows] == ["none", "spell-r2-l1.6"]  # radius 2 = class default
    best = {k: [r["id"] for r in table.rows if r[k].best] for k in ("recall", "fd_digits")}
    assert best == {"recall": ["spell-r2-l1.6"], "fd_digits": ["spell-r2-l1.6"]}
    assert table.rows[1]["density"].text() == "n/a"
    assert table.rows[1]["density"].reason == "fewer than k + 1 samples"
    assert not table.rows[0]["density"].best  # a lone number has nothing to beat


def test_best_is_bold_in_markdown_with_its_interval(run):
    md = to_markdown(defaults_table(run))
    row = next(line for line in md.splitlines() if line.startswith("| spell"))
    assert "**0.310 [0.302, 0.318]**" in row and "n/a" in row


def test_table4_lists_every_sweep_point(run):
    table = sweep_table(run)
    assert [r["id"] for r in table.rows] == [c.id for c in DEFAULT_CONFIGS]
    assert table.rows[1]["params"] == "radius=1"


def test_csv_splits_value_and_interval(run):
    rows = list(csv.DictReader(io.StringIO(to_csv(sweep_table(run)))))
    assert float(rows[1]["recall"]) == pytest.approx(0.28)
    assert float(rows[1]["recall_low"]) < 0.28 < float(rows[1]["recall_high"])
    assert rows[2]["density"] == ""


def test_json_keeps_numbers_and_flags(run):
    data = json.loads(to_json(defaults_table(run)))
    cell = data["rows"][1]["recall"]
    assert cell["best"] is True and cell["value"] == pytest.approx(0.31) and len(cell["ci"]) == 2
    assert data["rows"][1]["density"]["value"] is None


def test_table5_cost_as_scoring_measured_it(run):
    table = cost_table(run, run_costs(run))
    none = table.rows[0]
    assert none["nfe"].value == 40  # metrics.json's cost, not a second tally of the samples
    assert none["seconds"].value == pytest.approx(0.05)
    assert none["seconds"].std == pytest.approx(0.002)
    assert none["relative"].value == pytest.approx(1.0)
    assert "±" in none["seconds"].text()


def test_table2_only_with_protection(run, tmp_path):
    table = protection_table(run, run_costs(run))
    assert [k for k, _ in table.columns][2:] == [
        "protection_rate",
        "precision",
        "recall",
        "seconds",
    ]
    assert [r["id"] for r in table.rows if r["protection_rate"].best] == ["spell-r3-l1.6"]
    from reports.tables import all_tables

    plain = load_run(
        make_run(
            tmp_path / "plain", prompts=1, samples=4, steps=3, configs=[FakeConfig("none", "none")]
        )
    )
    assert [t.name for t in all_tables(plain)] == [
        "table1-defaults",
        "table4-sweeps",
        "table5-cost",
    ]
    assert "table2-protection" in [t.name for t in all_tables(run)]


def test_number_format():
    values = (0.31234, 12.345, 105.97, 0.0069, 0.0004, 0)
    assert [fmt_number(v) for v in values] == [
        "0.312",
        "12.35",
        "106.0",
        "0.0069",
        "4.00e-04",
        "0.000",
    ]
    assert Cell(None).text() == "n/a" and Cell(2.0, std=0.5).text() == "2.000 ± 0.500"
    assert Cell(0.05, std=0.00167).text() == "0.050 ± 0.002"
    assert Cell(0.051, std=0.0004).text() == "0.0510 ± 0.0004"  # the spread stays visible
    assert Cell(0.0069, 0.0018, 0.012).text() == "0.0069 [0.0018, 0.0120]"


def test_scoring_reads_cost_from_legacy_npz_seconds_and_time_files(tmp_path):
    import numpy as np

    from bench.atomic import atomic_save_npz
    from bench.run_dir import RunDir
    from metrics.method_scores import _CostTally
    from metrics.run_reader import MethodDir

    run = RunDir(tmp_path)
    images = np.zeros((2, 8, 8, 1), np.uint8)
    atomic_save_npz(
        run.sample_file("m", "a"), {"images": images, "nfe": [10, 10], "seconds": [1.0, 3.0]}
    )
    atomic_save_npz(run.sample_file("m", "b"), {"images": images, "nfe": [20, 20]})
    run.time_file("m", "b").write_text(json.dumps({"seconds_per_image": [2.0, 2.0]}))
    atomic_save_npz(run.sample_file("m", "c"), {"images": images[:1], "nfe": [30]})  # untimed
    tally = _CostTally()
    for prompt_id in "abc":
        tally.add(MethodDir(run, "m", "m", {}).load(prompt_id))
    cost = tally.summary()
    assert cost["seconds_per_image"] == pytest.approx(2.0)
    assert cost["seconds_per_image_std"] == pytest.approx(np.std([1.0, 3.0, 2.0, 2.0], ddof=1))
    assert cost["nfe_per_image"] == pytest.approx(18.0)


def test_a_seed_spread_is_shown_as_std(run, tmp_path):
    assert all(run.spread(c.id, k) is None for c in run.configs for k in run.metric_keys())
    results = {"a": {"metrics": {"recall": 0.5, "vendi": 1.2}, "std": {"recall": 0.02}}}
    means = RunData(run.run, tmp_path, {}, "", [MethodConfig("a", "a")], [], results, {})
    assert means.spread("a", "recall") == pytest.approx(0.02)
    assert metric_cell(means, "a", "recall").text() == "0.500 ± 0.020"
    assert metric_cell(means, "a", "vendi").text() == "1.200"


def test_pipe_table_has_no_title_note_or_bold(run):
    table = defaults_table(run)
    lines = to_pipe_table(table).splitlines()
    assert lines[0] == "| " + " | ".join(h for _, h in table.columns) + " |"
    assert lines[1] == "| " + " | ".join(["---"] * len(table.columns)) + " |"
    assert len(lines) == 2 + len(table.rows)
    assert "**" not in lines[3] and "0.310 [0.302, 0.318]" in lines[3]


def test_cost_counts_the_images_scoring_counted():
    result = {"cost": {"seconds_per_image": 0.1, "nfe_per_image": 8}, "counts": {"n_generated": 12}}
    assert cost_from_result(result).images == 12
    assert cost_from_result({"cost": {"seconds_per_image": 0.1}}).images is None


def test_a_paper_model_gets_table1s_row_pair_beside_the_run(tmp_path):
    """An EDMv2 run's report shows the paper's EDMv2 pair, then its own none and SPELL."""
    import tomllib

    import tomli_w

    from bench.run_dir import RunDir
    from reports.paper_table1 import PAPER_TABLE1, paper_key, paper_table
    from reports.tables import all_tables

    path = make_run(tmp_path / "run", prompts=2, samples=4, steps=3)
    config_file = RunDir(path).config_file
    config = tomllib.loads(config_file.read_text())
    config["run"]["model"] = "edm2"
    config_file.write_text(tomli_w.dumps(config))
    run = load_run(path)
    table = paper_table(run)
    assert table is not None and table.name == "table1-paper"
    paper = PAPER_TABLE1["edm2"]
    first, second, *ours = table.rows
    assert first["recall"].value == 0.589 and first["recall"].std == 0.002
    assert second["fd_dinov2"].value == paper.spell["fd_dinov2"][0] == 68.909
    assert [r["method"] for r in ours] == ["this run: none", "this run: spell"]
    assert ours[0]["recall"].value == run.metric("none", "recall")
    assert [t.name for t in all_tables(run)][:2] == ["table1-defaults", "table1-paper"]
    assert paper_key("sd3", "imagenet") == "sd3-imagenet" and paper_key("sd3", "cc12m:d") == "sd3"
    assert paper_key("simple-diffusion", None) == "mdm" and paper_key("digits", None) is None
