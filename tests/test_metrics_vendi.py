"""Vendi score against the vendi-score package and its README."""

import numpy as np
import pytest
from vendi_score import vendi

from metrics.values import Undefined
from metrics.vendi import vendi_from_kernel, vendi_score


def test_identity_kernel_gives_n():
    assert vendi_from_kernel(np.eye(7)) == pytest.approx(7.0, rel=1e-12)


def test_all_ones_kernel_gives_one():
    assert vendi_from_kernel(np.ones((9, 9))) == pytest.approx(1.0, rel=1e-12)


def test_two_orthogonal_clusters_give_two():
    x = np.array([[1.0, 0.0]] * 5 + [[0.0, 3.0]] * 5)
    assert vendi_score(x) == pytest.approx(2.0, rel=1e-12)


def test_readme_kernel_example():
    k = np.array([[1.0, 0.9, 0.0], [0.9, 1.0, 0.0], [0.0, 0.0, 1.0]])
    assert vendi_from_kernel(k) == pytest.approx(2.1573004833739833, rel=1e-12)


def test_readme_similarity_function_example():
    samples = np.array([0, 0, 10, 10, 20, 20], dtype=np.float64)
    kernel = np.exp(-np.abs(samples[:, None] - samples[None, :]))
    assert vendi_from_kernel(kernel) == pytest.approx(2.999999995877713, rel=1e-12)


@pytest.mark.parametrize("n,d", [(20, 50), (80, 12), (30, 30)])
def test_matches_package_score_x_both_forms(n, d):
    x = np.random.default_rng(n * d).standard_normal((n, d)) + 0.5
    assert vendi_score(x) == pytest.approx(vendi.score_X(x), rel=1e-10)
    if n > d:
        assert vendi_score(x) == pytest.approx(vendi.score_dual(x), rel=1e-10)


def test_unnormalised_rows_are_normalised():
    x = np.random.default_rng(0).standard_normal((15, 6))
    scaled = x * np.random.default_rng(1).uniform(0.1, 10, size=(15, 1))
    assert vendi_score(scaled) == pytest.approx(vendi_score(x), rel=1e-12)


def test_empty_set_is_undefined():
    assert isinstance(vendi_score(np.zeros((0, 4))), Undefined)
