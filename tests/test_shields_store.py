"""Protected sets on disk: round trips, and never a half-written index that loads."""

import json

import pytest
import torch

import bench.shields.store as store
from bench.errors import BenchError
from bench.shields import load_shields, load_vectors, save_shields
from bench.shields.ivf import FaissIVFShieldSet


def vectors(n: int = 300, shape=(1, 4, 4), seed: int = 0) -> torch.Tensor:
    return torch.randn(n, *shape, generator=torch.Generator().manual_seed(seed))


def test_round_trip_keeps_vectors_and_shape(tmp_path):
    v = vectors()
    out = save_shields(tmp_path / "index", v, meta={"model": "test"})
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["count"] == 300 and manifest["item_shape"] == [1, 4, 4]
    torch.testing.assert_close(load_vectors(out), v.flatten(1))
    shields = load_shields(out)
    assert shields.backend == "exact" and len(shields) == 300


def test_float16_storage_round_trip(tmp_path):
    v = vectors()
    out = save_shields(tmp_path / "index", v, dtype=torch.float16)
    assert load_vectors(out).dtype == torch.float16
    torch.testing.assert_close(load_vectors(out).float(), v.flatten(1).half().float())


def test_ivf_index_is_stored_and_reloads_without_training(tmp_path, monkeypatch):
    v = vectors(2000)
    out = save_shields(tmp_path / "index", v, backend="faiss-ivf", nlist=8)
    import bench.shields.ivf as ivf

    def no_training(*args, **kwargs):
        raise AssertionError("a stored index must not be retrained")

    monkeypatch.setattr(ivf, "train_ivf", no_training)
    monkeypatch.setattr(ivf, "assign_lists", no_training)
    shields = load_shields(out, nprobe=8)
    assert isinstance(shields, FaissIVFShieldSet) and shields.nlist == 8
    exact = load_shields(out, backend="exact")
    q = v[:5].flatten(1) + 0.1
    assert shields.within(q, 3.0).pairs() == exact.within(q, 3.0).pairs()


def test_interrupted_build_leaves_nothing_that_loads(tmp_path, monkeypatch):
    out = tmp_path / "index"

    def crash(*args, **kwargs):
        raise RuntimeError("killed mid-build")

    monkeypatch.setattr(store, "_install", crash)  # after every file is written
    with pytest.raises(RuntimeError, match="killed"):
        save_shields(out, vectors())
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(BenchError, match="not found"):
        load_shields(out)


def test_exception_while_appending_cleans_up(tmp_path):
    out = tmp_path / "index"
    with pytest.raises(BenchError, match="differs"):
        with store.ShieldWriter(out) as writer:
            writer.append(vectors(4))
            writer.append(torch.zeros(2, 3))
    assert list(tmp_path.iterdir()) == []


def test_directory_without_manifest_is_rejected(tmp_path):
    partial = tmp_path / "index"
    partial.mkdir()
    (partial / "vectors.bin").write_bytes(b"\0" * 64)
    with pytest.raises(BenchError, match="not a complete protected set"):
        load_shields(partial)


def test_truncated_vectors_are_rejected(tmp_path):
    out = save_shields(tmp_path / "index", vectors())
    data = (out / "vectors.bin").read_bytes()
    (out / "vectors.bin").write_bytes(data[:-4])
    with pytest.raises(BenchError, match="wrong size"):
        load_shields(out)


def test_rebuild_replaces_an_index_but_not_other_folders(tmp_path):
    out = save_shields(tmp_path / "index", vectors(10))
    save_shields(out, vectors(20, seed=1))
    assert len(load_vectors(out)) == 20
    assert sorted(p.name for p in tmp_path.iterdir()) == ["index"]
    other = tmp_path / "photos"
    other.mkdir()
    (other / "a.txt").write_text("mine")
    with pytest.raises(BenchError, match="not a protected set"):
        save_shields(other, vectors(10))
    assert (other / "a.txt").read_text() == "mine"


def test_empty_source_is_an_error(tmp_path):
    with pytest.raises(BenchError, match="empty"):
        with store.ShieldWriter(tmp_path / "index"):
            pass
    assert list(tmp_path.iterdir()) == []
