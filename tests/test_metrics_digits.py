"""The embedded digits classifier: accuracy, features, and metrics on the digits data itself."""

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from bench.data.digits import load_split
from bench.errors import BenchError
from metrics.digits_classifier import (
    FEATURE_DIM,
    WEIGHTS,
    load_digits_classifier,
    uint8_to_input,
    unit_to_uint8,
)
from metrics.extractors import get_extractor
from metrics.frechet import frechet_distance_features
from metrics.prdc import compute_prdc
from metrics.train_digits import held_out_accuracy, train_digits_classifier


@pytest.fixture(scope="module")
def extractor():
    return get_extractor("digits")


def _features(extractor, split: str, label: int) -> np.ndarray:
    return extractor.extract(unit_to_uint8(load_split(split).of_class(label)))["features"]


def test_committed_weights_reach_97_percent_on_held_out():
    assert WEIGHTS.exists()
    assert held_out_accuracy(load_digits_classifier()) >= 0.97


def test_uint8_round_trip_and_input_range():
    x = load_split("held_out").images[:5]
    u8 = unit_to_uint8(x)
    assert u8.dtype == np.uint8 and u8.shape == (5, 8, 8, 1)
    back = uint8_to_input(torch.from_numpy(u8))
    assert back.shape == (5, 1, 8, 8)
    assert float(back.min()) >= -1.0 and float(back.max()) <= 1.0
    assert np.abs(back.numpy() - x).max() <= 1 / 255 + 1e-6


def test_rejects_non_uint8_or_wrong_shape(extractor):
    with pytest.raises(BenchError, match="uint8"):
        extractor.extract(np.zeros((2, 8, 8, 1), np.float32))
    with pytest.raises(BenchError, match=r"\(N, 8, 8, 1\)"):
        extractor.extract(np.zeros((2, 16, 16, 1), np.uint8))


def test_features_and_probabilities(extractor):
    images = unit_to_uint8(load_split("held_out").images[:20])
    out = extractor.extract(images, batch_size=6)
    assert out["features"].shape == (20, FEATURE_DIM) == (20, extractor.dim)
    assert out["features"].dtype == np.float32
    assert out["probs"].shape == (20, 10)
    assert out["probs"].sum(1) == pytest.approx(np.ones(20), abs=1e-5)


def test_held_out_vs_train_of_same_class_beats_a_different_class(extractor):
    """Same class: precision and recall near 1, FD near 0; class 1 vs class 7: far worse."""
    for label, other in [(1, 7), (3, 8), (0, 6)]:
        ref = _features(extractor, "held_out", label)
        same, wrong = _features(extractor, "train", label), _features(extractor, "train", other)
        good, bad = compute_prdc(ref, same, 5), compute_prdc(ref, wrong, 5)
        assert good["precision"] > 0.9 and good["recall"] > 0.9
        assert bad["precision"] < 0.2 and bad["recall"] < 0.2
        fd_same = frechet_distance_features(same, ref)
        fd_wrong = frechet_distance_features(wrong, ref)
        assert fd_wrong > 20 * fd_same


def test_shuffled_labels_control_scores_far_worse(extractor):
    train, held = load_split("train"), load_split("held_out")
    feats = extractor.extract(unit_to_uint8(train.images))["features"]
    shuffled = np.random.default_rng(0).permutation(train.labels)
    precision_true, precision_shuffled = [], []
    for label in range(10):
        ref = extractor.extract(unit_to_uint8(held.of_class(label)))["features"]
        precision_true.append(compute_prdc(ref, feats[train.labels == label], 5)["precision"])
        precision_shuffled.append(compute_prdc(ref, feats[shuffled == label], 5)["precision"])
    assert np.mean(precision_true) > 0.9
    assert np.mean(precision_shuffled) < 0.3


def test_training_writes_loadable_weights_atomically(tmp_path):
    out = tmp_path / "clf.safetensors"
    accuracy = train_digits_classifier(out, seed=0, epochs=1)
    assert 0.0 <= accuracy <= 1.0
    assert [p.name for p in tmp_path.iterdir()] == ["clf.safetensors"]
    net = load_digits_classifier(out)
    assert held_out_accuracy(net) == pytest.approx(accuracy)


def test_training_is_reproducible_for_a_seed(tmp_path):
    train_digits_classifier(tmp_path / "a.safetensors", seed=3, epochs=1)
    train_digits_classifier(tmp_path / "b.safetensors", seed=3, epochs=1)
    a, b = (load_file(str(tmp_path / f"{n}.safetensors")) for n in "ab")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_missing_weights_is_a_one_line_bench_error(tmp_path):
    with pytest.raises(BenchError, match="bench train digits-features") as err:
        load_digits_classifier(tmp_path / "nope.safetensors")
    assert "\n" not in str(err.value)
