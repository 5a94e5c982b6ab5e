"""Protection measured in every space of a scored run: the L2 rate, the copy rate, CT and
AuthPct, the neighbours file behind Figure 7, and KID / IS / FD-infinity beside FD."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from bench.cli import app, main
from bench.data.digits import load_split
from bench.run_dir import RunDir
from bench.shields.store import save_shields
from metrics.copying import Authenticity, DataCopyingTest, best_cosine
from metrics.digits_classifier import unit_to_uint8
from metrics.extractors import get_extractor
from metrics.protected_set import open_protected_set
from metrics.protection import nearest_distances
from metrics.score import score_run
from reports.build import build_report

RADIUS = 1.5


def test_the_digits_copy_threshold_calls_five_percent_of_held_out_digits_copies():
    """0.998 is calibrated: the held-out digits, never trained on, are the false copies."""
    extractor = get_extractor("digits")
    train = extractor.extract(unit_to_uint8(load_split("train").images))["features"]
    held_out = extractor.extract(unit_to_uint8(load_split("held_out").images))["features"]
    similarity, _ = best_cosine(held_out, train)
    rate = float((similarity > extractor.copy_threshold).mean())
    assert 0.03 <= rate <= 0.07


@pytest.fixture(scope="module")
def copied_run(tmp_path_factory):
    """A digits run whose first 8 `none` samples of class 0 are replaced by training
    digits: they are copies, in every space, of the protected training split."""
    root = tmp_path_factory.mktemp("protection")
    runner = CliRunner()
    index = root / "train"
    built = runner.invoke(
        app, ["protect", "build", "--images", "digits-train", "--out", str(index)]
    )
    assert built.exit_code == 0, built.output
    args = ["run", "--methods", "none,spell", "--protect", str(index), "--radius", str(RADIUS)]
    args += ["--prompts", "0,1", "--samples", "24", "--batch-size", "8", "--steps", "5"]
    args += ["--out", str(root), "--name", "run", "--threads", "1"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    run = RunDir(root / "run")
    split = load_split("train")
    sources = np.flatnonzero(split.labels == 0)[:8]
    arrays = dict(run.load_samples("none", "0"))
    arrays["latents"][:8] = split.images[sources]
    arrays["images"][:8] = unit_to_uint8(split.images[sources])
    arrays["seconds"] = np.asarray(run.wall_times("none", "0"))
    run.save_prompt("none", "0", arrays)
    score_run(run.path)
    return run, index, sources


def _result(run: RunDir, method: str) -> dict:
    metrics = json.loads(run.metrics_file.read_text())
    return next(r for r in metrics["results"] if r["method"] == method)


def test_copies_are_found_in_every_space(copied_run):
    run, _, sources = copied_run
    none = _result(run, "none")
    assert none["per_prompt"]["0"]["copy_rate_digits"] >= 8 / 24
    found = run.read_neighbours()
    first = (found["none/prompt"] == "0") & (found["none/sample"] < 8)
    for space in ("latent", "digits", "pixels"):
        assert (found[f"none/{space}/index"][first] == sources).all(), space
    assert np.allclose(found["none/latent/value"][first], 0.0)
    assert np.allclose(found["none/digits/value"][first], 1.0)
    assert none["metrics"]["protection_rate"] >= 8 / 48  # the copies sit inside r
    assert _result(run, "spell")["metrics"]["protection_rate"] == 0.0


def test_ct_and_auth_pct_equal_the_metrics_on_the_run_features(copied_run):
    run, index, _ = copied_run
    extractor = get_extractor("digits")
    gen = np.concatenate(
        [extractor.extract(run.load_samples("none", p)["images"])["features"] for p in "01"]
    )
    train = extractor.extract(unit_to_uint8(load_split("train").images))["features"]
    held_out = extractor.extract(unit_to_uint8(load_split("held_out").images))["features"]
    ct = DataCopyingTest(train, held_out, seed=0)
    auth = Authenticity(train)
    none = _result(run, "none")
    assert none["metrics"]["ct_score"] == pytest.approx(ct.score(ct.statistics(gen)), abs=1e-9)
    assert none["metrics"]["auth_pct"] == pytest.approx(auth.auth_pct(auth.authentic(gen)))
    # the 8 exact copies are not authentic
    assert not auth.authentic(gen[:8]).any()
    latents = np.concatenate([run.load_samples("none", p)["latents"] for p in "01"])
    vectors = open_protected_set(index, RADIUS).vectors()
    rate = float((nearest_distances(latents.reshape(48, -1), vectors) < RADIUS).mean())
    assert none["metrics"]["protection_rate"] == rate


def test_subset_metrics_sit_beside_fd_in_every_space(copied_run):
    run, _, _ = copied_run
    none = _result(run, "none")
    for key in ("kid_digits", "kid_pixels", "inception_score_digits"):
        assert isinstance(none["metrics"][key], float), key
        assert none["spread"][key] >= 0.0
    # subsets of 4 cannot carry a 32-d Gaussian: FD-infinity says so instead of a number
    assert none["metrics"]["fd_inf_digits"] is None
    assert "more samples than dimensions" in none["notes"]["all"]["fd_inf_digits"]
    assert "inception_score_pixels" not in none["metrics"]  # pixels have no classes


def test_protocol_and_ci_of_the_copy_rate(copied_run):
    run, index, _ = copied_run
    metrics = json.loads(run.metrics_file.read_text())
    protocol = metrics["protocol"]["protection"]
    assert protocol["copy_thresholds"] == {"digits": 0.998}
    assert protocol["copying_space"] == "digits"
    assert protocol["ct"]["held_out"] == "the digits-held_out split"
    lo, hi = _result(run, "none")["ci"]["copy_rate_digits"]
    assert lo <= _result(run, "none")["metrics"]["copy_rate_digits"] <= hi


def test_figure7_grids_are_drawn_per_space(copied_run):
    run, _, _ = copied_run
    index = build_report(run.path)
    page = index.read_text()
    assert "Nearest protected images" in page
    for space in ("latent", "digits", "pixels"):
        assert (run.report / "grids" / f"neighbours-{space}.png").is_file()
    assert "copy_rate_digits" in (run.report / "tables" / "table2-protection.csv").read_text()


def test_a_copy_threshold_from_the_command_line(copied_run, monkeypatch, capsys):
    run, _, _ = copied_run
    result = CliRunner().invoke(app, ["score", str(run.path), "--copy-threshold", "digits=-1"])
    assert result.exit_code == 0, result.output
    assert _result(run, "none")["metrics"]["copy_rate_digits"] == 1.0  # every cosine > -1
    monkeypatch.setattr("sys.argv", ["bench", "score", str(run.path), "--copy-threshold", "x=2"])
    with pytest.raises(SystemExit) as exit_info:
        main()
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.splitlines() == [err] and "bad --copy-threshold 'x=2'" in err
    score_run(run.path)  # back to the default for the other tests


def test_a_set_without_images_gets_only_its_l2_rate(tmp_path, copied_run):
    run, _, _ = copied_run
    index = tmp_path / "iterable"
    save_shields(index, torch.zeros((3, 64)), meta={"source": "iterable"})
    protected = open_protected_set(index, RADIUS)
    with pytest.raises(Exception, match="only its L2 protection rate"):
        protected.images((8, 8, 1))
