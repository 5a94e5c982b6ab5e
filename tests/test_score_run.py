"""score_run on a fabricated run directory made from digits images (no generator needed)."""

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from bench.data.digits import load_split
from bench.errors import BenchError
from metrics.digits_classifier import unit_to_uint8
from metrics.extractors.base import FeatureExtractor
from metrics.score import format_table, score_run

PER_IMAGE = 12


def _write_method(run: Path, method_id: str, shift: int, times_in_npz: bool, sizes=None):
    d = run / "samples" / method_id
    d.mkdir(parents=True)
    info = {"id": method_id, "method": "fake", "params": {"shift": shift}}
    (d / "method.json").write_text(json.dumps(info))
    train = load_split("train")
    for c in range(10):
        n = (sizes or {}).get(c, PER_IMAGE)
        images = unit_to_uint8(train.of_class((c + shift) % 10)[:n])
        arrays = {"images": images, "latents": np.zeros((n, 1, 8, 8), np.float32)}
        arrays["nfe"] = np.full(n, 20 + shift, np.int64)
        seconds = np.full(n, 0.5)
        if times_in_npz:
            arrays["seconds"] = seconds
        else:
            (d / f"{c}.time.json").write_text(json.dumps({"seconds_per_image": seconds.tolist()}))
        np.savez(d / f"{c}.npz", **arrays)


def make_run(root: Path) -> Path:
    run = root / "run"
    (run / "samples").mkdir(parents=True)
    (run / "config.toml").write_text('[run]\nmodel = "digits"\nseed = 0\n')
    (run / "manifest.json").write_text("{}")
    _write_method(run, "faithful", 0, times_in_npz=True)
    _write_method(run, "swapped", 1, times_in_npz=False, sizes={3: 4})
    return run


@pytest.fixture(scope="module")
def scored(tmp_path_factory):
    run = make_run(tmp_path_factory.mktemp("score"))
    return run, score_run(run)


def _by_id(result: dict) -> dict:
    return {r["method_id"]: r for r in result["results"]}


def test_schema_and_files(scored):
    run, result = scored
    assert set(result) == {"partial", "prompts", "protocol", "results"}
    assert result["partial"] is False and result["prompts"] == [str(c) for c in range(10)]
    assert json.loads((run / "metrics.json").read_text()) == result
    for r in result["results"]:
        assert {"method_id", "method", "params", "metrics", "ci", "per_prompt", "cost"} <= set(r)
        assert list(r["per_prompt"]) == [str(c) for c in range(10)]
        for key in ("recall", "precision", "density", "coverage", "vendi", "class_score"):
            assert key in r["metrics"] and key in r["ci"]
        assert "fd_digits" in r["metrics"] and "fd_pixels" in r["metrics"]
    assert _by_id(result)["swapped"]["params"] == {"shift": 1}
    protocol = result["protocol"]
    assert protocol["prdc"]["k"] == 5 and protocol["bootstrap"]["resamples"] == 1000
    assert protocol["feature_dims"] == {"digits": 32, "pixels": 64}
    assert "held_out" in protocol["reference"]["per_prompt"]


def test_csv_has_one_row_per_method_and_scope(scored):
    run, _ = scored
    rows = list(csv.DictReader((run / "metrics.csv").open()))
    assert len(rows) == 2 * 11
    scopes = [(r["method_id"], r["scope"]) for r in rows]
    assert ("faithful", "all") in scopes and ("swapped", "9") in scopes
    row = next(r for r in rows if r["method_id"] == "faithful" and r["scope"] == "all")
    assert float(row["recall_ci_lo"]) <= float(row["recall"]) <= float(row["recall_ci_hi"])


def test_faithful_classes_beat_swapped_classes(scored):
    _, result = scored
    good, bad = _by_id(result)["faithful"]["metrics"], _by_id(result)["swapped"]["metrics"]
    assert good["precision"] > 0.8 and good["recall"] > 0.5
    assert bad["precision"] < 0.1 and bad["recall"] < 0.1
    assert good["class_score"] > 90 and bad["class_score"] < 10
    lo, hi = _by_id(result)["faithful"]["ci"]["precision"]
    assert lo <= good["precision"] <= hi


def test_too_few_images_is_null_with_a_reason(scored):
    _, result = scored
    swapped = _by_id(result)["swapped"]
    prompt = swapped["per_prompt"]["3"]
    assert prompt["n_generated"] == 4
    assert prompt["recall"] is None and prompt["coverage"] is None
    assert "k=5 needs at least 6" in swapped["notes"]["3"]["recall"]
    assert prompt["vendi"] is not None
    assert "9 of 10" in swapped["notes"]["all"]["recall"]
    table = format_table(result)
    assert "faithful" in table and "swapped" in table


def test_fd_is_null_when_fewer_samples_than_dims(tmp_path):
    run = tmp_path / "run"
    (run / "samples").mkdir(parents=True)
    (run / "config.toml").write_text('[run]\nmodel = "digits"\n')
    _write_method(run, "tiny", 0, times_in_npz=True, sizes={c: 3 for c in range(10)})
    r = score_run(run)["results"][0]
    assert r["metrics"]["fd_pixels"] is None and r["metrics"]["fd_digits"] is None
    assert "more samples than dimensions" in r["notes"]["all"]["fd_pixels"]
    assert (
        r["metrics"]["recall"] is None
        and "undefined for every prompt" in r["notes"]["all"]["recall"]
    )
    assert "n/a" in format_table(score_run(run))


def test_cost_from_npz_or_time_json(scored):
    _, result = scored
    for method_id, nfe in (("faithful", 20.0), ("swapped", 21.0)):
        cost = _by_id(result)[method_id]["cost"]
        assert cost == {
            "seconds_per_image": pytest.approx(0.5),
            "seconds_per_image_std": pytest.approx(0.0),
            "nfe_per_image": nfe,
        }


def test_rerun_reuses_cached_features_and_recomputes_changed_prompts(tmp_path, monkeypatch, scored):
    run = tmp_path / "run"
    shutil.copytree(scored[0], run)
    calls = []
    original = FeatureExtractor.extract

    def counting(self, images, batch_size=None):
        calls.append((self.name, len(images)))
        return original(self, images, batch_size)

    monkeypatch.setattr(FeatureExtractor, "extract", counting)
    again = score_run(run)
    assert calls == []
    assert again["results"] == scored[1]["results"]
    npz = run / "samples" / "faithful" / "5.npz"
    with np.load(npz) as f:
        arrays = dict(f)
    arrays["images"] = arrays["images"][::-1].copy()
    np.savez(npz, **arrays)
    score_run(run)
    assert sorted(calls) == [("digits", PER_IMAGE), ("pixels", PER_IMAGE)]
    assert not list(run.rglob("*.tmp"))


def test_pixels_only_uses_pixels_for_per_prompt_metrics(scored):
    run, result = scored
    pixels = score_run(run, extractors=["pixels"])
    r = _by_id(pixels)["faithful"]
    assert pixels["protocol"]["per_prompt_extractor"] == "pixels"
    assert "fd_digits" not in r["metrics"] and "fd_pixels" in r["metrics"]
    assert r["metrics"]["recall"] != _by_id(result)["faithful"]["metrics"]["recall"]
    assert r["metrics"]["class_score"] == _by_id(result)["faithful"]["metrics"]["class_score"]


def test_bad_runs_are_one_line_errors(tmp_path):
    with pytest.raises(BenchError, match="config.toml"):
        score_run(tmp_path)
    (tmp_path / "config.toml").write_text('[run]\nmodel = "digits"\n')
    with pytest.raises(BenchError, match="bench generate"):
        score_run(tmp_path)
    (tmp_path / "config.toml").write_text('[run]\nmodel = "no-such-model"\n')
    with pytest.raises(BenchError, match="no reference set"):
        score_run(tmp_path)
    assert not (tmp_path / "metrics.json").exists()


class _StubClip(FeatureExtractor):
    """Stands in for CLIP: image 'embedding' = mean of the two halves; text = fixed vector."""

    name, dim, threads = "clip", 2, 1

    def _batch(self, images):
        x = images.float().flatten(1)
        half = x.shape[1] // 2
        return {"features": torch.stack([x[:, :half].mean(1), x[:, half:].mean(1)], 1)}

    def text_features(self, prompts):
        return np.array([[1.0, 0.0]] * len(prompts))


def test_text_model_plugs_in_with_clip_score(tmp_path, monkeypatch):
    from metrics import extractors, references

    stubbed = extractors.EXTRACTORS.with_entry("clip", lambda **_: _StubClip())
    monkeypatch.setattr(extractors, "EXTRACTORS", stubbed)
    provider = references.ReferenceProvider(
        name="toy",
        images=lambda pid: unit_to_uint8(load_split("held_out").of_class(int(pid))),
        extractors=("pixels",),
        quality="clip_score",
        quality_extractor="clip",
        prompt_text=lambda pid: f"a {pid}",
    )
    monkeypatch.setattr(
        references, "REFERENCES", references.REFERENCES.with_entry("toy", lambda run_dir: provider)
    )
    run = tmp_path / "run"
    (run / "samples").mkdir(parents=True)
    (run / "config.toml").write_text('[run]\nmodel = "toy"\n')
    _write_method(run, "m", 0, times_in_npz=True)
    result = score_run(run)
    r = result["results"][0]
    assert result["protocol"]["quality"]["metric"] == "clip_score"
    assert 0 < r["metrics"]["clip_score"] <= 100 and "class_score" not in r["metrics"]
    assert set(result["protocol"]["extractors"]) == {"pixels", "clip"}
