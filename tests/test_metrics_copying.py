"""Copy similarity, AuthPct and CT: against dgm-eval's numbers, streaming and edge cases."""

from __future__ import annotations

import numpy as np
import pytest

from metrics.copying import (
    AUTH_PCT_SPEC,
    CT_SPEC,
    SPECS,
    Authenticity,
    DataCopyingTest,
    best_cosine,
    copy_rate,
    copy_rate_key,
    copy_rate_spec,
    nearest,
)
from metrics.values import Undefined

SEPARATION = 20.0  # between mixture centres, std 1: the k-means partition is unique


def _mixture(rng: np.random.Generator, n: int, dim: int) -> tuple[np.ndarray, np.ndarray]:
    """n points from three unit Gaussians centred at SEPARATION * e_0, e_1, e_2."""
    component = rng.integers(3, size=n)
    centres = SEPARATION * np.eye(3, dim)
    return centres[component] + rng.standard_normal((n, dim)), component


def _case(dim: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """train 300, test 200, gen = 150 train rows + N(0, 0.05^2) noise, then 150 fresh."""
    rng = np.random.default_rng(seed)
    train, component = _mixture(rng, 300, dim)
    test, _ = _mixture(rng, 200, dim)
    source = rng.choice(300, 150, replace=False)
    copies = train[source] + 0.05 * rng.standard_normal((150, dim))
    fresh, _ = _mixture(rng, 150, dim)
    return train, test, np.vstack([copies, fresh]), component


def _same_partition(a: np.ndarray, b: np.ndarray) -> bool:
    """The two labellings agree up to a permutation of the labels."""
    pairs = set(zip(a.tolist(), b.tolist(), strict=True))
    return len(pairs) == len(set(a.tolist())) == len(set(b.tolist()))


# dgm-eval (layer6ai-labs/dgm-eval, commit 74c79f7), dgm_eval/metrics/ct.py and authpct.py
# extracted with `git show` and run once beside the project on `_case(dim)` (seed 0): train
# 300 and test 200 from the three-Gaussian mixture, gen = 150 train rows + N(0, 0.05^2)
# noise, then 150 fresh; dim 100 takes the PCA-to-64 path. compute_CTscore ran after
# np.random.seed(0), (1) and (2) (its KMeans has no random_state) and gave the same CT each
# time (to 1e-15); its k-means partition of train equalled the mixture components for
# every seed, as ours does (checked below). One shim: numpy 2.4 refuses to store the
# shape-(1,) U that ct.Zu gets from its (m, 1) columns, so mannwhitneyu's U and p were
# unwrapped to scalars, values unchanged. compute_authpct works in float32, so it prints
# 91/300 as 30.33333396911621 (dim 8) and 114/300 as 38.0 (dim 100): the same counts as ours.
DGM_EVAL = {
    8: {"ct": -5.170332917867611, "auth_pct": 30.33333396911621, "authentic": 91},
    100: {"ct": -5.600683401433244, "auth_pct": 38.0, "authentic": 114},
}


@pytest.mark.parametrize("dim", [8, 100])
def test_ct_and_auth_pct_match_dgm_eval(dim):
    train, test, gen, component = _case(dim)
    want = DGM_EVAL[dim]
    ct = DataCopyingTest(train, test)
    cells = ct.statistics(train)[:, 0]
    assert _same_partition(cells, component)  # the partition dgm-eval's KMeans found too
    assert ct.score(ct.statistics(gen)) == pytest.approx(want["ct"], abs=1e-6)
    auth = Authenticity(train)
    flags = auth.authentic(gen)
    assert flags.sum() == want["authentic"]
    assert auth.auth_pct(flags) == pytest.approx(100 * want["authentic"] / 300, abs=1e-12)
    assert np.float32(auth.auth_pct(flags)) == np.float32(want["auth_pct"])


def _batches(x: np.ndarray) -> list[np.ndarray]:
    return [x[:7], x[7:151], x[151:]]  # three uneven batches


@pytest.mark.parametrize("dim", [8, 100])
def test_statistics_do_not_depend_on_batches(dim):
    train, test, gen, _ = _case(dim)
    ct, auth = DataCopyingTest(train, test), Authenticity(train, chunk=64)
    stats = np.vstack([ct.statistics(b) for b in _batches(gen)])
    np.testing.assert_array_equal(stats, ct.statistics(gen))
    assert stats.shape == (300, 2) and stats.dtype == np.float64
    flags = np.concatenate([auth.authentic(b) for b in _batches(gen)])
    np.testing.assert_array_equal(flags, auth.authentic(gen))
    assert ct.score(stats) == ct.score(ct.statistics(gen))


@pytest.mark.parametrize("dim", [8, 100])
def test_exact_copies_are_caught_and_fresh_samples_pass(dim):
    train, test, _, _ = _case(dim)
    ct, auth = DataCopyingTest(train, test), Authenticity(train)
    rng = np.random.default_rng(5)
    copies = train[rng.choice(300, 200, replace=False)]
    assert auth.auth_pct(auth.authentic(copies)) == 0.0
    assert ct.score(ct.statistics(copies)) < -8
    fresh, _ = _mixture(rng, 300, dim)
    assert abs(ct.score(ct.statistics(fresh))) < 2
    assert auth.auth_pct(auth.authentic(fresh)) > 50


def test_authenticity_ties_and_duplicate_training_points():
    auth = Authenticity(np.array([[0.0], [1.0], [5.0]]))  # nearest other: 1, 1, 4
    gen = np.array([[0.0], [-1.0], [-1.5], [6.0], [9.5]])
    # exact copy, tie (1 < 1 fails), farther than 1, 1 < 4 fails, 4 < 4.5
    np.testing.assert_array_equal(auth.authentic(gen), [False, False, True, False, True])
    duplicated = Authenticity(np.array([[0.0], [0.0], [5.0]]))  # nearest other of 0: 0
    np.testing.assert_array_equal(duplicated.authentic(np.array([[0.0], [0.1]])), [False, True])


def test_nearest_matches_brute_force_with_chunks_ties_and_self():
    rng = np.random.default_rng(3)
    ref = rng.standard_normal((23, 5))
    ref[9] = ref[4]  # a duplicate
    queries = np.vstack([rng.standard_normal((11, 5)), ref[4:5]])
    brute = np.linalg.norm(queries[:, None] - ref[None], axis=2)
    for chunk in (4096, 5):
        d, i = nearest(queries, ref, chunk=chunk)
        np.testing.assert_allclose(d, brute.min(axis=1), rtol=1e-12, atol=0)
        np.testing.assert_array_equal(i, brute.argmin(axis=1))  # the tie goes to row 4
        d_self, i_self = nearest(ref, ref, chunk=chunk, skip_self=True)
        assert d_self[4] == d_self[9] == 0.0 and (i_self[4], i_self[9]) == (9, 4)
        assert (i_self != np.arange(23)).all()


def test_best_cosine_finds_copies_near_copies_and_their_sources():
    rng = np.random.default_rng(7)
    protected = rng.standard_normal((50, 32))
    exact, near = [3, 17, 29], [5, 40]
    gen = np.vstack(
        [
            protected[exact] * np.array([[1.0], [2.5], [0.1]]),  # copies, rescaled
            protected[near] + 0.01 * rng.standard_normal((2, 32)),
            rng.standard_normal((10, 32)),  # unrelated
        ]
    )
    for chunk in (4096, 7):
        sim, index = best_cosine(gen, protected, chunk=chunk)
        np.testing.assert_allclose(sim[:3], 1.0, atol=1e-12)
        assert (sim[3:5] > 0.99).all() and (sim[5:] < 0.9).all()
        np.testing.assert_array_equal(index[:5], exact + near)
        assert copy_rate(sim, 0.95) == pytest.approx(5 / 15)


def test_best_cosine_zero_norm_rows():
    protected = np.array([[1.0, 0.0], [0.0, 0.0]])
    gen = np.array([[-1.0, 0.0], [0.0, 0.0], [2.0, 0.0]])
    sim, index = best_cosine(gen, protected)
    # cosine with a zero row is 0, so it beats -1; a zero generated row has no source
    np.testing.assert_array_equal(sim, [0.0, 0.0, 1.0])
    np.testing.assert_array_equal(index, [1, -1, 0])
    assert copy_rate(sim, 0.5) == pytest.approx(1 / 3)
    assert copy_rate(sim, 1.0) == 0.0  # strictly above


@pytest.mark.parametrize("threshold", [1.5, -1.01, float("nan")])
def test_copy_rate_undefined_thresholds(threshold):
    assert copy_rate(np.array([0.5]), threshold) == Undefined(
        f"copy threshold {threshold} is outside [-1, 1]"
    )


def test_copy_rate_and_auth_pct_without_samples():
    assert copy_rate(np.empty(0), 0.9) == Undefined("no generated samples")
    auth = Authenticity(_case(8)[0])
    assert auth.auth_pct(auth.authentic(np.empty((0, 8)))) == Undefined("no generated samples")


@pytest.mark.parametrize("n", [0, 1])
def test_auth_pct_undefined_with_fewer_than_two_training_points(n):
    auth = Authenticity(np.zeros((n, 4)))
    flags = auth.authentic(np.ones((5, 4)))
    assert flags.shape == (5,) and not flags.any()
    assert auth.auth_pct(flags) == Undefined(f"AuthPct needs at least 2 training samples, got {n}")


def _ct_undefined(train, test, gen, cells=3):
    ct = DataCopyingTest(train, test, cells=cells)
    return ct.score(ct.statistics(gen))


def test_ct_undefined_with_fewer_training_points_than_cells():
    ct = DataCopyingTest(np.zeros((2, 8)), np.zeros((5, 8)))
    stats = ct.statistics(np.ones((4, 8)))
    assert stats.shape == (4, 2) and (stats[:, 0] == -1).all() and np.isnan(stats[:, 1]).all()
    assert ct.score(stats) == Undefined("CT needs at least 3 training samples, got 2")


def test_ct_undefined_when_pca_lacks_training_points():
    rng = np.random.default_rng(0)
    got = _ct_undefined(*(rng.standard_normal((n, 100)) for n in (50, 30, 30)))
    assert got == Undefined("CT's PCA to 64 dims needs 64 training samples, got 50")


def test_ct_undefined_for_a_cell_without_training_samples():
    train = np.repeat(np.array([[0.0, 0.0], [10.0, 0.0]]), 10, axis=0)  # 2 distinct points
    got = _ct_undefined(train, train[::2] + 0.1, train + 0.2)
    assert isinstance(got, Undefined)
    assert got.reason.endswith("of 3 holds no training samples"), got.reason


def test_ct_undefined_for_a_cell_without_test_samples():
    train, test, gen, _ = _case(8)
    one_cluster = test[np.linalg.norm(test - test[0], axis=1) < 8]
    got = _ct_undefined(train, one_cluster, gen)
    assert isinstance(got, Undefined)
    assert got.reason.endswith("of 3 holds no test samples"), got.reason


def test_ct_needs_a_cell_with_more_than_20_generated_samples():
    train, test, _, _ = _case(8)
    rng = np.random.default_rng(11)
    fresh, component = _mixture(rng, 600, 8)
    twenty = np.vstack([fresh[component == c][:20] for c in range(3)])
    ct = DataCopyingTest(train, test)
    assert ct.score(ct.statistics(twenty)) == Undefined(
        "no k-means cell holds more than 20 generated samples (most: 20)"
    )
    one_more = np.vstack([twenty, fresh[component == 0][20:21]])
    assert isinstance(ct.score(ct.statistics(one_more)), float)
    assert ct.score(np.empty((0, 2))) == Undefined("no generated samples")
    assert ct.statistics(np.empty((0, 8))).shape == (0, 2)


def test_specs():
    assert [s.key for s in SPECS] == ["auth_pct", "ct_score"]
    assert AUTH_PCT_SPEC.label == "AuthPct (% authentic) ↑"
    assert CT_SPEC.higher_is_better and "data-copying" in CT_SPEC.definition
    spec = copy_rate_spec(copy_rate_key("dinov2"))
    assert (spec.key, spec.name, spec.unit) == (
        "copy_rate_dinov2",
        "Copy rate (dinov2)",
        "share of generated",
    )
    assert not spec.higher_is_better and "threshold" in spec.definition
