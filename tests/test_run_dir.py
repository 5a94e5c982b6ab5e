"""RunDir: a prompt is complete only when all of it is on disk, and the metrics pair
is marked scored only once both files are written."""

import builtins
import errno
import io
import json
import os
from pathlib import Path

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


class _FillsUp:
    """A file that takes half of its first write, then finds the disk full."""

    def __init__(self, f) -> None:
        self._f = f

    def write(self, data) -> int:
        self._f.write(bytes(data)[: len(data) // 2])
        self._f.flush()
        raise OSError(errno.ENOSPC, "No space left on device")

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self._f.close()

    def __getattr__(self, name):
        return getattr(self._f, name)


def _file_name(file) -> str:
    """The name of what `open` was given: a path, or a descriptor's target."""
    if isinstance(file, int):
        return os.readlink(f"/proc/self/fd/{file}")
    return os.fspath(file)


def _disk_full_for(monkeypatch, marker: str) -> None:
    """Every way of opening a file (open, Path.write_*, os.fdopen, zipfile) gives a file
    that fills the disk once its name contains `marker`: whatever writer save_prompt
    uses, in place or through a temporary, the write itself fails half-way."""
    real = io.open

    def opener(file, mode="r", *args, **kwargs):
        f = real(file, mode, *args, **kwargs)
        writing = any(c in mode for c in "wax+")
        return _FillsUp(f) if writing and marker in Path(_file_name(file)).name else f

    monkeypatch.setattr(io, "open", opener)
    monkeypatch.setattr(builtins, "open", opener)


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc (Linux)")
@pytest.mark.parametrize("marker", [".npz", ".time.json"])
def test_a_disk_that_fills_mid_write_leaves_the_prompt_incomplete(tmp_path, monkeypatch, marker):
    """The .npz must go through a temporary file and be written after its time file: a
    failure while writing either leaves no file that reads as complete."""
    run = RunDir(tmp_path)
    _disk_full_for(monkeypatch, marker)
    with pytest.raises(OSError, match="No space left"):
        run.save_prompt("none", "0", ARRAYS)
    monkeypatch.undo()
    assert not run.is_complete("none", "0") and run.sample_files() == []
    assert not [p for p in run.method_dir("none").iterdir() if p.suffix in (".tmp", ".npz")]
    run.save_prompt("none", "0", ARRAYS)  # the rerun writes it whole
    assert run.is_complete("none", "0") and run.load_samples("none", "0")["images"].shape[0] == 2
