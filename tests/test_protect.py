"""Protected sets from images, and SPELL's guarantee against a static shield set."""

import numpy as np
import pytest
import torch
from PIL import Image

from bench.data.digits import load_split
from bench.errors import BenchError
from bench.models.digits_gmm import DigitsGMMAdapter
from bench.perf.timing import pinned_threads
from bench.protect import BackendSpec, build_protected_set, evaluate_protection, parse_backends
from bench.sampler import SamplingSettings, generate_prompt
from bench.shields import ExactShieldSet, load_shields, load_vectors
from methods.none import NoMethod
from methods.spell import Spell, SpellConfig

RADIUS = 2.0


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny tensors: threads only add waiting, a lot of it on a busy machine."""
    with pinned_threads(1):
        yield


@pytest.fixture(scope="module")
def gmm() -> DigitsGMMAdapter:
    return DigitsGMMAdapter()


def disjoint_training_images(radius: float) -> torch.Tensor:
    """Greedy subset of the training digits whose shields do not overlap (>= 2r apart)."""
    train = torch.from_numpy(load_split("train").images).flatten(1)
    apart = (torch.cdist(train, train) >= 2 * radius).numpy()
    keep = [0]
    for i in range(1, len(train)):
        if apart[i, keep].all():
            keep.append(i)
    return train[keep]


def final_distances(model, method, shields: torch.Tensor) -> torch.Tensor:
    settings = SamplingSettings(guidance=1.0, steps=8)
    latents = [
        generate_prompt(model, method, p, 16, 8, 0, settings)["latents"] for p in model.prompts()
    ]
    flat = torch.from_numpy(np.concatenate(latents)).flatten(1).double()
    return torch.cdist(flat, shields.double()).min(1).values


def test_spell_keeps_every_final_sample_out_of_disjoint_shields(gmm):
    shields = disjoint_training_images(RADIUS)
    plain = final_distances(gmm, NoMethod(), shields)
    assert (plain < RADIUS).sum() >= 3  # without SPELL samples do land inside
    config = SpellConfig(radius=RADIUS, overcompensation=1.0, intra_batch=False, inter_batch=False)
    spell = Spell(config, static=ExactShieldSet(shields))
    repelled = final_distances(gmm, spell, shields)
    assert repelled.min() >= RADIUS * (1 - 1e-5)


def test_build_from_the_digits_training_split(gmm, tmp_path):
    out = build_protected_set(gmm, "digits-train", tmp_path / "digits", progress=False)
    expected = torch.from_numpy(load_split("train").images).flatten(1)
    torch.testing.assert_close(load_vectors(out), expected, atol=1e-6, rtol=0)
    assert len(load_shields(out)) == len(expected)


def test_build_from_a_folder_resizes_to_the_model(gmm, tmp_path):
    folder = tmp_path / "images"
    folder.mkdir()
    for i, value in enumerate((0, 128, 255)):
        Image.new("RGB", (32, 20), (value, value, value)).save(folder / f"{i}.png")
    out = build_protected_set(gmm, folder, tmp_path / "index", batch_size=2, progress=False)
    v = load_vectors(out)
    assert v.shape == (3, 64)
    torch.testing.assert_close(v[:, 0], torch.tensor([-1.0, 128 / 255 * 2 - 1, 1.0]))


def test_interrupted_encoding_leaves_no_index(gmm, tmp_path, monkeypatch):
    calls = {"n": 0}
    encode = gmm.encode

    def flaky(images):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return encode(images)

    monkeypatch.setattr(gmm, "encode", flaky)
    out = tmp_path / "index"
    with pytest.raises(KeyboardInterrupt):
        build_protected_set(gmm, "digits-train", out, batch_size=100, progress=False)
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(BenchError, match="not found"):
        load_shields(out)


def test_unknown_sources_are_one_line_errors(gmm, tmp_path):
    with pytest.raises(BenchError, match="neither a dataset"):
        build_protected_set(gmm, "imagenet-train", tmp_path / "x", progress=False)
    (tmp_path / "empty").mkdir()
    with pytest.raises(BenchError, match="no PNG or JPG"):
        build_protected_set(gmm, tmp_path / "empty", tmp_path / "x", progress=False)


def test_evaluate_protection_reports_every_variant_and_backend(gmm):
    shields = disjoint_training_images(RADIUS)
    report = evaluate_protection(
        gmm, shields, radius=RADIUS, backends=[BackendSpec("exact"), BackendSpec("faiss-ivf", 1)],
        prompts=gmm.prompts()[:2], samples_per_prompt=8, steps=6, guidance=1.0, progress=False,
    )
    labels = [(r.method, r.backend) for r in report.rows]
    assert labels[0] == ("none", "-") and len(labels) == 5
    static_exact = report.rows[1]
    assert static_exact.within == 0.0 and report.rows[0].images == 16
    assert "| spell-static | exact |" in report.to_markdown()


def test_backend_specs_parse_and_reject():
    specs = parse_backends("exact, faiss-ivf:10")
    assert specs == [BackendSpec("exact"), BackendSpec("faiss-ivf", 10)]
    assert specs[1].label == "faiss-ivf(nprobe=10)"
    with pytest.raises(BenchError, match="bad backend"):
        parse_backends("hnsw")
