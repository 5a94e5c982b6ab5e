"""Frechet distance: closed forms, scipy's sqrtm, sample-size guard, batch-size invariance."""

import numpy as np
import pytest
import scipy.linalg

from bench.data.digits import load_split
from metrics.digits_classifier import unit_to_uint8
from metrics.extractors import get_extractor
from metrics.frechet import (
    GaussianAccumulator,
    frechet_distance,
    frechet_distance_features,
    gaussian_stats,
)
from metrics.values import Undefined


def test_unit_mean_shift_in_2048_dims_gives_2048():
    d = 2048
    eye = np.eye(d)
    assert frechet_distance(np.zeros(d), eye, np.ones(d), eye) == pytest.approx(2048.0, rel=1e-12)


def test_diagonal_covariances_closed_form():
    rng = np.random.default_rng(0)
    a, b = rng.uniform(0.1, 3, 20), rng.uniform(0.1, 3, 20)
    mu1, mu2 = rng.standard_normal(20), rng.standard_normal(20)
    want = ((mu1 - mu2) ** 2).sum() + ((np.sqrt(a) - np.sqrt(b)) ** 2).sum()
    got = frechet_distance(mu1, np.diag(a), mu2, np.diag(b))
    assert got == pytest.approx(want, rel=1e-10)


def _sqrtm_fd(mu1, s1, mu2, s2):
    covmean = scipy.linalg.sqrtm(s1 @ s2).real
    return ((mu1 - mu2) ** 2).sum() + np.trace(s1 + s2 - 2 * covmean)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_agrees_with_scipy_sqrtm_on_well_conditioned_covariances(seed):
    rng = np.random.default_rng(seed)
    d = 64
    a = rng.standard_normal((d, d)) / np.sqrt(d)
    b = rng.standard_normal((d, d)) / np.sqrt(d)
    s1, s2 = a @ a.T + 0.5 * np.eye(d), b @ b.T + 0.5 * np.eye(d)
    mu1, mu2 = rng.standard_normal(d), rng.standard_normal(d)
    want = _sqrtm_fd(mu1, s1, mu2, s2)
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(want, rel=1e-6)


def test_identical_sets_give_zero_and_stats_are_float64():
    x = np.random.default_rng(0).standard_normal((200, 5)).astype(np.float32)
    mu, sigma = gaussian_stats(x)
    assert mu.dtype == np.float64 and sigma.dtype == np.float64
    assert abs(frechet_distance_features(x, x)) < 1e-10


@pytest.mark.parametrize("n", [10, 16])
def test_not_more_samples_than_dims_is_undefined(n):
    rng = np.random.default_rng(0)
    got = frechet_distance_features(rng.standard_normal((n, 16)), rng.standard_normal((500, 16)))
    assert isinstance(got, Undefined)
    assert "more samples than dimensions" in got.reason


def test_running_statistics_match_the_whole_set():
    rng = np.random.default_rng(4)
    real, fake = rng.standard_normal((100, 6)), rng.standard_normal((90, 6)) * 3 + 50.0
    stream, whole = GaussianAccumulator(), GaussianAccumulator()
    for chunk in np.array_split(fake, 4):
        stream.update(chunk)
    whole.update(fake)
    mu, cov = gaussian_stats(fake)
    assert stream.count == 90
    np.testing.assert_allclose(stream.mean(), mu, rtol=1e-12)
    np.testing.assert_allclose(stream.covariance(), cov, rtol=1e-10, atol=1e-12)
    reference = GaussianAccumulator()
    reference.update(real)
    assert stream.frechet(reference) == pytest.approx(
        frechet_distance_features(fake, real), rel=1e-10
    )
    assert "more samples than dimensions" in GaussianAccumulator(dim=6).frechet(reference).reason


def test_invariant_to_feature_extraction_batch_size():
    extractor = get_extractor("digits")
    train, held = load_split("train"), load_split("held_out")
    gen, ref = unit_to_uint8(train.images[:300]), unit_to_uint8(held.images)
    ref_feats = extractor.extract(ref)["features"]
    values = [
        frechet_distance_features(extractor.extract(gen, batch_size=b)["features"], ref_feats)
        for b in (1, 7, 64, 512)
    ]
    assert values[0] > 0
    assert values == pytest.approx([values[0]] * 4, rel=1e-6)


def test_running_statistics_survive_a_round_trip_through_their_state():
    rng = np.random.default_rng(3)
    acc = GaussianAccumulator()
    for _ in range(3):
        acc.update(rng.normal(size=(20, 5)) + 100.0)
    back = GaussianAccumulator.from_state(acc.state())
    assert back.count == 60 and np.array_equal(back.mean(), acc.mean())
    assert np.array_equal(back.covariance(), acc.covariance())
    assert GaussianAccumulator.from_state(GaussianAccumulator().state()).count == 0


def test_reference_statistics_are_computed_once_for_every_run(tmp_path, monkeypatch):
    """Two runs with the same references: the second reads the first's statistics."""
    from metrics.references import get_reference
    from metrics.spaces import FeatureSpaces

    monkeypatch.setenv("SPELLBENCH_CACHE", str(tmp_path / "cache"))
    reference = get_reference("digits", tmp_path)
    first = FeatureSpaces(tmp_path / "a", ["digits"], reference)
    stats = first.reference_statistics("digits", ["0", "1"])
    direct = GaussianAccumulator()
    for pid in ("0", "1"):
        images = reference.images(pid)
        direct.update(get_extractor("digits").extract(images)["features"])
    assert np.allclose(stats.mean(), direct.mean()) and stats.count == direct.count

    second = FeatureSpaces(tmp_path / "b", ["digits"], reference)
    monkeypatch.setattr(second, "_statistics", lambda *_: pytest.fail("recomputed"))
    again = second.reference_statistics("digits", ["0", "1"])
    assert np.array_equal(again.covariance(), stats.covariance())
    # another prompt set is another key
    monkeypatch.undo()
    monkeypatch.setenv("SPELLBENCH_CACHE", str(tmp_path / "cache"))
    assert second.reference_statistics("digits", ["1"]).count < stats.count
