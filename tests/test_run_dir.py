"""RunDir: a prompt is complete only when all of it is on disk, and the metrics pair
is marked scored only once both files are written."""

import json

import numpy as np
import pytest

import bench.run_dir as run_dir_module
from bench.config import BenchConfig
from bench.run_dir import RunDir

ARRAYS = {"images": np.zeros((2, 8, 8, 1), np.uint8), "seconds": np.array([0.1, 0.2])}


class Boom(RuntimeError):
    pass


def _half_written_then_boom(f, array, **kwargs):
    f.write(b"\x93NUMPY partial")
    raise Boom("disk went away")


def test_a_failing_array_writer_leaves_the_prompt_incomplete(tmp_path, monkeypatch):
    run = RunDir(tmp_path)
    monkeypatch.setattr(np.lib.format, "write_array", _half_written_then_boom)
    with pytest.raises(Boom):
        run.save_prompt("none", "0", ARRAYS)
    assert not run.is_complete("none", "0")
    assert run.complete_prompt_ids("none") == [] and run.sample_files() == []


def test_a_failing_time_writer_leaves_the_prompt_incomplete(tmp_path, monkeypatch):
    run = RunDir(tmp_path)

    def boom(path, text):
        raise Boom(f"cannot write {path}")

    monkeypatch.setattr(run_dir_module, "atomic_write_text", boom)
    with pytest.raises(Boom):
        run.save_prompt("none", "0", ARRAYS)
    assert not run.is_complete("none", "0")


def test_a_saved_prompt_has_its_times_beside_it(tmp_path):
    run = RunDir(tmp_path)
    run.save_prompt("none", "0", ARRAYS)
    assert run.is_complete("none", "0") and run.wall_times("none", "0") == [0.1, 0.2]
    assert "seconds" not in run.load_samples("none", "0")


def test_metrics_are_scored_only_once_both_files_are_written(tmp_path, monkeypatch):
    config = BenchConfig(run={"out": tmp_path, "name": "r"})
    run = RunDir(tmp_path / "r")
    run.prepare(config)
    run.write_manifest(config, "generated", method_ids=["none"], prompt_ids=["0"])
    run.save_prompt("none", "0", ARRAYS)
    written = []
    real = run_dir_module.atomic_write_text

    def second_write_fails(path, text):
        if path == run.metrics_file:
            written.append(run.status())
            raise Boom("killed between the two files")
        real(path, text)

    monkeypatch.setattr(run_dir_module, "atomic_write_text", second_write_fails)
    with pytest.raises(Boom):
        run.write_metrics(json.dumps({"results": [{"method_id": "none"}]}), "csv")
    assert written == ["scoring"] and run.status() == "scoring" and not run.is_scored()
    monkeypatch.setattr(run_dir_module, "atomic_write_text", real)
    run.write_metrics(json.dumps({"results": [{"method_id": "none"}]}), "csv")
    assert run.status() == "scored" and run.is_scored()
