"""float16 shield storage states how far rounding moved the shields: SPELL's distance
guarantee holds for the stored vectors, so for the originals it holds up to that."""

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from bench.cli_tools import protect_app
from bench.errors import BenchError
from bench.models.digits_gmm import DigitsGMMAdapter
from bench.protect import build_protected_set
from bench.shields import ShieldWriter, describe_shields, load_vectors, save_shields
from bench.shields.store import read_manifest


def vectors(n: int = 300, d: int = 64, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    scale = torch.logspace(-2, 2, n)[:, None]  # norms from ~0.1 to ~800
    return scale * torch.randn(n, d, generator=gen)


def rounding_of(source: torch.Tensor, out) -> np.ndarray:
    """Per-row L2 distance between the stored rows and the float32 source."""
    stored = load_vectors(out).double().numpy()
    return np.linalg.norm(stored - source.double().numpy(), axis=1)


def test_float16_build_records_the_rounding_it_did(tmp_path):
    source = vectors()
    out = tmp_path / "index"
    with ShieldWriter(out, dtype=torch.float16) as writer:
        for part in source.split(64):  # several batches: max and mean over all of them
            writer.append(part)
    error = rounding_of(source, out)
    assert error.max() > 0
    rounding = read_manifest(out)["rounding"]
    assert rounding["source_dtype"] == "float32"
    assert rounding["max_l2"] == pytest.approx(error.max(), rel=1e-12)
    assert rounding["mean_l2"] == pytest.approx(error.mean(), rel=1e-9)


def test_float32_build_records_no_rounding(tmp_path):
    out = save_shields(tmp_path / "index", vectors())
    assert read_manifest(out)["rounding"]["max_l2"] == 0.0
    assert "rounding" not in describe_shields(out)


def test_float64_vectors_stored_as_float32_are_measured(tmp_path):
    source = vectors().double() * (1 + 1e-9)
    out = save_shields(tmp_path / "index", source)
    error = rounding_of(source, out)
    assert 0 < error.max() == pytest.approx(read_manifest(out)["rounding"]["max_l2"], rel=1e-12)


def test_vectors_beyond_the_float16_range_are_refused(tmp_path):
    source = vectors()
    source[3, 0] = 7e4
    with pytest.raises(BenchError, match="float16 range"):
        save_shields(tmp_path / "index", source, dtype=torch.float16)
    assert not (tmp_path / "index").exists()


def test_summary_line_states_the_tolerance(tmp_path):
    out = save_shields(tmp_path / "index", vectors(), dtype=torch.float16)
    error = rounding_of(vectors(), out)
    line = describe_shields(out)
    assert "\n" not in line
    assert f"at most {error.max():.3g} L2 (mean {error.mean():.3g})" in line
    assert "300 vectors of dim 64, float16" in line


def test_protect_build_dtype_is_checked():
    result = CliRunner().invoke(protect_app, ["build", "--images", "x", "--out", "y",
                                              "--dtype", "float64"])
    assert result.exit_code != 0 and "float32 or float16" in str(result.exception or result.output)


def test_protect_build_prints_the_tolerance_of_a_float16_build(tmp_path, monkeypatch):
    """Images stored as float16: the printed tolerance is the one recomputed from the
    float32 encodings. (The digits splits have 17 grey levels, exact in float16.)"""
    gmm = DigitsGMMAdapter()
    folder = tmp_path / "images"
    folder.mkdir()
    pixels = np.random.default_rng(0).integers(0, 256, size=(12, 8, 8), dtype=np.uint8)
    for i, image in enumerate(pixels):
        Image.fromarray(image, mode="L").save(folder / f"{i}.png")
    monkeypatch.setattr("bench.models.registry.load_model", lambda name, **kw: gmm)
    out = tmp_path / "index"
    args = ["build", "--images", str(folder), "--out", str(out), "--dtype", "float16"]
    result = CliRunner().invoke(protect_app, args)
    assert result.exit_code == 0, result.output
    reference = build_protected_set(gmm, folder, tmp_path / "fp32", progress=False)
    error = rounding_of(load_vectors(reference), out)
    assert 0 < error.max() < 64**0.5 * 2**-12  # half a float16 ulp per value in [-1, 1]
    assert result.stdout.strip() == describe_shields(out)
    assert f"at most {error.max():.3g} L2 (mean {error.mean():.3g})" in result.stdout
