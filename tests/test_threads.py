"""The default intra-op thread count: the idle cores, at least 1, at most 4."""

import json

import pytest
import torch

import bench.environment as environment
from bench.config import BenchConfig
from bench.generate import generate


@pytest.mark.parametrize(("idle", "cores", "expected"), [
    (None, 2, 1), (0.0, 2, 1), (0.4, 2, 1), (0.6, 2, 1), (1.6, 2, 2), (7.9, 16, 4), (1.9, 1, 1),
])  # fmt: skip
def test_default_threads_follow_the_idle_cores(monkeypatch, idle, cores, expected):
    monkeypatch.setattr(environment, "idle_cores", lambda window=0.1: idle)
    monkeypatch.setattr(environment.os, "cpu_count", lambda: cores)
    assert environment.default_threads() == expected


def test_idle_cores_reads_this_machine():
    idle = environment.idle_cores(window=0.05)
    assert idle is None or 0.0 <= idle <= (environment.os.cpu_count() or 1) + 1e-6


def test_a_run_records_the_threads_it_chose(tmp_path, monkeypatch):
    monkeypatch.setattr("bench.generate.default_threads", lambda: 3)
    config = BenchConfig(run={"model": "toy2d-exact", "methods": ["none"], "prompts": 1,
                              "samples": 2, "batch_size": 2, "steps": 2, "out": tmp_path,
                              "name": "t"})  # fmt: skip
    assert config.run.threads is None
    before = torch.get_num_threads()
    try:
        run = generate(config, progress=False)
    finally:
        torch.set_num_threads(before)
    assert json.loads(run.manifest_file.read_text())["threads"] == 3
    assert "threads = 3" in run.config_file.read_text()
