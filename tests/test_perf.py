"""`bench perf`: the suites' plumbing on the CPU (their figures are benchmarks, not
tested here): the gpu suite times the harness against each pipeline doing the same
work, the lookup suite's exact backends find every shield, and bad flags are one line."""

from __future__ import annotations

import json
import math
import sys

import pytest
import torch

from bench.cli import main
from bench.errors import BenchError
from bench.perf import gpu
from bench.perf.lookup import lookup_rows
from bench.perf.sd_unet import sd15_size_pipeline

MODEL_PATH_VARS = (
    "SPELLBENCH_SD15_PATH",
    "SPELLBENCH_LDM_PATH",
    "SPELLBENCH_DIT_PATH",
    "SPELLBENCH_SD3_PATH",
)


@pytest.fixture()
def no_weights(monkeypatch, tmp_path):
    """No model weights anywhere: the suite falls back to tiny random components."""
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    for name in MODEL_PATH_VARS:
        monkeypatch.delenv(name, raising=False)


def test_gpu_suite_times_the_harness_against_each_pipelines_own_call(no_weights, monkeypatch):
    # SPELL's extra work per step made known (1 us per shield): each K column must be
    # (plain step + that) / plain step, for its own K
    def known_extra(method, x0, reps):
        return 1e-6 * len(method.static or [])

    monkeypatch.setattr("bench.perf.overhead.extra_step_seconds", known_extra)
    rows = gpu.gpu_suite("cpu", "float32", quick=True)
    assert [row["model"] for row in rows] == [f"{n} (tiny random)" for n in gpu.PIPELINE_MODELS]
    for row in rows:
        # the two calls made the same images: the ratio compares like with like
        assert row["max_abs_diff"] < 1e-4, row
        assert row["harness_over_pipeline"] > 0 and math.isfinite(row["harness_over_pipeline"])
        assert row["images_per_s"] == pytest.approx(row["batch"] / row["harness_s"])
        plain = row["plain_step_ms"] / 1e3
        for k in gpu.SPELL_SHIELDS:
            expected = (plain + 1e-6 * k) / plain
            assert row[f"spell_over_plain_K{k}"] == pytest.approx(expected, rel=1e-9), row


def test_gpu_suite_runs_the_pipelines_in_half_precision(no_weights):
    """bfloat16 end to end (the GPU default is float16): the harness and the pipeline
    round differently (CFG in x0 against CFG on epsilon), so they agree to ~1e-2."""
    rows = gpu.gpu_suite("cpu", "bfloat16", quick=True, models=("sd15", "sd3"))
    for row in rows:
        assert row["dtype"] == "bfloat16"
        assert 0 < row["max_abs_diff"] < 0.1, row


def test_gpu_suite_uses_real_weights_when_they_load(monkeypatch, tmp_path):
    tiny, _ = gpu.model_under_test("sd15", "cpu", "float32", tmp_path, real=False)
    monkeypatch.setattr("bench.models.registry.load_model", lambda name, **kw: tiny)
    assert gpu.model_under_test("sd15", "cpu", "float32", tmp_path)[1] == "sd15"

    def missing(name, **kw):
        raise BenchError(f"weights for model {name!r} not found")

    monkeypatch.setattr("bench.models.registry.load_model", missing)
    assert gpu.model_under_test("sd15", "cpu", "float32", tmp_path)[1] == "sd15 (tiny random)"


def test_sd15_size_pipeline_has_sd15s_networks(tmp_path):
    with torch.device("meta"):  # shapes only: nothing is allocated
        pipe = sd15_size_pipeline(tmp_path)
    assert sum(p.numel() for p in pipe.unet.parameters()) == 859_520_964
    assert sum(p.numel() for p in pipe.vae.parameters()) == 83_653_863
    assert pipe.text_encoder.config.hidden_size == 768
    assert pipe.text_encoder.config.num_hidden_layers == 12
    assert pipe.scheduler.config.skip_prk_steps and pipe.scheduler.config.steps_offset == 1
    assert len(pipe.tokenizer(["a cat"], padding="max_length").input_ids[0]) == 77


def test_lookup_rows_exact_backends_find_every_shield():
    rows = lookup_rows(3000, dim=32, batches=2, nprobes=(1, 1024), step_seconds=0.01)
    by_backend = {row["backend"]: row for row in rows}
    assert {"exact", "exact-bf16", "exact-fp16"} <= set(by_backend)
    assert rows[0]["in_range_per_query"] > 1  # shields are in range: recall means something
    for row in rows[:4]:  # exact in three dtypes, and the projected filter
        assert row["recall"] == 1.0, row
    ivf = [row for row in rows if row["backend"].startswith("faiss-ivf")]
    assert ivf[-1]["recall"] == 1.0  # nprobe >= nlist: every list searched
    assert ivf[0]["recall"] <= 1.0
    for row in rows:
        assert row["lookup_over_unet_step"] == pytest.approx(row["lookup_ms"] / 1e3 / 0.01)


def run_perf_cli(monkeypatch, capsys, *args) -> tuple[int, str]:
    monkeypatch.setattr(sys, "argv", ["bench", "perf", *args])
    try:
        main()
    except SystemExit as exit_info:
        return exit_info.code, capsys.readouterr().err
    return 0, capsys.readouterr().err


def test_bench_perf_suite_gpu_writes_its_table(monkeypatch, capsys, tmp_path, no_weights):
    code, _ = run_perf_cli(monkeypatch, capsys, "--suite", "gpu", "--quick", "--out", str(tmp_path))
    assert code == 0
    report = json.loads((tmp_path / "perf.json").read_text())
    assert len(report["suites"]["gpu"]) == len(gpu.PIPELINE_MODELS)
    assert report["machine"]["device"] == "cpu" and report["machine"]["dtype"] == "float32"
    assert "harness_over_pipeline" in (tmp_path / "perf.md").read_text()


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--suite", "nope"], "unknown perf suites ['nope']"),
        (["--suite", ","], "name at least one perf suite"),
        (["--suite", "gpu", "--dtype", "float8"], "unknown dtype 'float8'"),
        (["--suite", "gpu", "--device", "tpu:x"], "unknown device 'tpu:x'"),
    ],
)
def test_bad_perf_flags_are_one_line(monkeypatch, capsys, args, expected):
    code, err = run_perf_cli(monkeypatch, capsys, *args)
    assert code == 2
    assert expected in err and len(err.strip().splitlines()) == 1
