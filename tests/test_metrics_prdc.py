"""Precision / recall / density / coverage against the prdc package and the spec's values."""

import contextlib
import io

import numpy as np
import pytest
from prdc import compute_prdc as prdc_package

from metrics.prdc import compute_prdc
from metrics.values import Undefined


def _package(real, fake, k):
    with contextlib.redirect_stdout(io.StringIO()):  # prdc prints the set sizes
        return prdc_package(real, fake, nearest_k=k)


@pytest.mark.parametrize(
    "n_real,n_fake,dim,k", [(40, 30, 8, 5), (100, 120, 16, 3), (25, 60, 64, 5)]
)
def test_matches_prdc_package_on_random_features(n_real, n_fake, dim, k):
    rng = np.random.default_rng(n_real + dim)
    real = rng.standard_normal((n_real, dim))
    fake = rng.standard_normal((n_fake, dim)) * 1.2 + 0.3
    ours, theirs = compute_prdc(real, fake, k), _package(real, fake, k)
    for key in ("precision", "recall", "density", "coverage"):
        assert ours[key] == pytest.approx(float(theirs[key]), abs=1e-9), key


def test_reference_values_default_rng_1000x64():
    rng = np.random.default_rng(0)
    real = rng.standard_normal((1000, 64))
    fake = rng.standard_normal((1000, 64))
    got = compute_prdc(real, fake, 5)
    want = {"precision": 0.714, "recall": 0.736, "density": 0.9618, "coverage": 0.969}
    assert got == pytest.approx(want, abs=1e-12)


def test_reference_values_prdc_readme_10000x1000():
    np.random.seed(0)
    real = np.random.normal(size=(10000, 1000))
    fake = np.random.normal(size=(10000, 1000))
    got = compute_prdc(real, fake, 5)
    want = {"precision": 0.4910, "recall": 0.4746, "density": 1.15124, "coverage": 0.9799}
    assert got == pytest.approx(want, abs=1e-9)


def test_same_array_gives_all_ones_with_strict_comparison():
    x = np.random.default_rng(1).standard_normal((50, 10))
    assert compute_prdc(x, x.copy(), 5) == {
        "precision": 1.0,
        "recall": 1.0,
        "density": 1.0,
        "coverage": 1.0,
    }


def test_constant_identical_features_give_zeros():
    x = np.full((20, 7), 0.3)
    got = compute_prdc(x, x.copy(), 5)
    assert got == {"precision": 0.0, "recall": 0.0, "density": 0.0, "coverage": 0.0}


@pytest.mark.parametrize("n_real,n_fake", [(5, 30), (30, 5), (0, 10)])
def test_fewer_than_k_plus_one_images_is_undefined(n_real, n_fake):
    rng = np.random.default_rng(0)
    got = compute_prdc(rng.standard_normal((n_real, 4)), rng.standard_normal((n_fake, 4)), 5)
    assert isinstance(got, Undefined)
    assert got.value is None and "needs at least 6" in got.reason


def test_k_plus_one_images_is_defined():
    rng = np.random.default_rng(0)
    got = compute_prdc(rng.standard_normal((6, 4)), rng.standard_normal((6, 4)), 5)
    assert not isinstance(got, Undefined)


def test_mismatched_dims_raise():
    with pytest.raises(ValueError, match="feature dims"):
        compute_prdc(np.zeros((10, 3)), np.zeros((10, 4)))
