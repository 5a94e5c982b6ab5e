"""Exact metrics of ground-truth models on hand-made mixtures with known answers."""

import math

import numpy as np
import pytest
from scipy.stats import chi2

from bench.models.digits_gmm import ClassMixtures, GaussianMixture, class_weights_from_condition
from bench.models.ground_truth import (
    OUTLIER,
    GroundTruth,
    Mixture,
)
from metrics import exact as E
from metrics.values import Undefined
from metrics.vendi import vendi_score

WEIGHTS = np.array([0.5, 0.3, 0.2])
MEANS = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])


@pytest.fixture(scope="module")
def mix() -> Mixture:
    """Three far-apart unit Gaussians: overlap is negligible (exp(-50))."""
    return Mixture.from_parameters(WEIGHTS, MEANS, np.tile(np.eye(2), (3, 1, 1)))


def test_weights_are_normalised_and_parameters_round_trip():
    covs = np.array([[[2.0, 0.5], [0.5, 1.0]], [[1.0, 0.0], [0.0, 3.0]]])
    m = Mixture.from_parameters([2.0, 6.0], MEANS[:2], covs)
    np.testing.assert_allclose(m.weights, [0.25, 0.75])
    np.testing.assert_allclose(m.covariances, covs, atol=1e-12)
    assert m.dim == 2 and m.num_components == 2


def test_log_density_at_the_means(mix):
    lp = mix.log_prob(MEANS)
    np.testing.assert_allclose(lp, np.log(WEIGHTS) - math.log(2 * math.pi), atol=1e-12)
    assert E.exact_log_density(MEANS[:2], mix, None) == pytest.approx(lp[:2].mean(), abs=1e-12)


def test_log_density_of_a_correlated_gaussian_matches_scipy():
    from scipy.stats import multivariate_normal

    cov = np.array([[1.0, 0.8], [0.8, 1.0]])
    m = Mixture.from_parameters([1.0], [[1.0, -1.0]], cov[None])
    x = np.random.default_rng(0).normal(size=(5, 2))
    expected = multivariate_normal([1.0, -1.0], cov).logpdf(x)
    np.testing.assert_allclose(m.log_prob(x), expected, atol=1e-12)


def test_assignment_and_outliers(mix):
    points = np.concatenate([MEANS, [[5.0, 5.0]]])
    np.testing.assert_array_equal(mix.assign(points), [0, 1, 2, OUTLIER])
    post = mix.component_posteriors(points[:3])
    np.testing.assert_allclose(post, np.eye(3), atol=1e-12)


def test_assignment_uses_the_99_percent_ellipse_of_the_component():
    # Long along x (std 3), thin along y (std 0.1): Mahalanobis, not Euclidean, decides.
    m = Mixture.from_parameters([1.0], [[0.0, 0.0]], np.diag([9.0, 0.01])[None])
    r = math.sqrt(chi2.ppf(0.99, 2))
    inside = [[3.0 * r * 0.999, 0.0], [0.0, 0.1 * r * 0.999]]
    outside = [[3.0 * r * 1.001, 0.0], [0.0, 0.1 * r * 1.001]]
    np.testing.assert_array_equal(m.assign(np.array(inside + outside)), [0, 0, -1, -1])


def test_mode_coverage_and_its_weighted_version(mix):
    points = np.array([[0.1, 0.0], [0.0, -0.2], [9.8, 0.3], [50.0, 50.0]])
    assert E.mode_coverage(points, mix, None) == pytest.approx(2 / 3)
    assert E.mode_coverage_weighted(points, mix, None) == pytest.approx(0.8)
    # an outlier next to an unhit component does not count for it
    far = np.array([[0.0, 4.0 + 10.0]])
    assert E.mode_coverage(far, mix, None) == 0.0


def test_mode_entropy_kl_and_outlier_share(mix):
    points = np.array([MEANS[0], MEANS[0], MEANS[1], MEANS[1], [5.0, 5.0]])
    assert E.mode_entropy(points, mix, None) == pytest.approx(math.log(2))
    assert E.outlier_share(points, mix, None) == pytest.approx(0.2)
    assert E.mode_kl(points, mix, None) == pytest.approx(0.5 * math.log(0.5 / 0.3))
    true_h = -(WEIGHTS * np.log(WEIGHTS)).sum()
    assert E.true_mode_entropy(mix, None) == pytest.approx(true_h)
    # samples in the true proportions: histogram entropy = that of pi, KL = 0
    exact = np.repeat(MEANS, [5, 3, 2], axis=0)
    assert E.mode_entropy(exact, mix, None) == pytest.approx(true_h)
    assert E.mode_kl(exact, mix, None) == pytest.approx(0.0, abs=1e-12)


def test_every_sample_an_outlier_has_no_entropy(mix):
    points = np.array([[5.0, 5.0], [-20.0, 3.0]])
    assert isinstance(E.mode_entropy(points, mix, None), Undefined)
    assert isinstance(E.mode_kl(points, mix, None), Undefined)
    assert E.mode_coverage(points, mix, None) == 0.0
    assert E.outlier_share(points, mix, None) == 1.0


def test_distinct_modes_per_batch_counts_full_batches_only(mix):
    m0, m1, m2 = MEANS
    out = [5.0, 5.0]
    points = np.array([m0, m1, m2, out, m0, m0, m0, m0, m1])  # batches {0,1,2}, {0}, short
    assert E.distinct_modes_per_batch(points, mix, None, 4) == pytest.approx(2.0)
    assert E.distinct_modes_per_batch(points, mix, None, 1) == pytest.approx(8 / 9)
    assert isinstance(E.distinct_modes_per_batch(points, mix, None, 10), Undefined)
    with pytest.raises(ValueError):
        E.distinct_modes_per_batch(points, mix, None, 0)


def test_no_or_non_finite_samples_are_undefined(mix):
    empty = np.zeros((0, 2))
    nan = np.array([[0.0, 0.0], [np.nan, 1.0]])
    for fn in (E.exact_log_density, E.mode_coverage, E.mode_coverage_weighted, E.mode_entropy):
        assert isinstance(fn(empty, mix, None), Undefined)
        assert isinstance(fn(nan, mix, None), Undefined)


def test_iid_expectations_closed_form(mix):
    q = np.array([0.5, 0.3, 0.2])
    n = 4
    hit = 1 - (1 - q) ** n
    assert E.expected_mode_coverage(mix, None, n, hit_probs=q) == pytest.approx(hit.mean())
    assert E.expected_mode_coverage_weighted(mix, None, n, q) == pytest.approx(WEIGHTS @ hit)
    assert E.expected_distinct_modes(mix, None, n, q) == pytest.approx(hit.sum())
    # the default q is pi times the ellipse mass (overlap ignored)
    np.testing.assert_allclose(mix.hit_probabilities(), 0.99 * WEIGHTS)
    assert E.expected_distinct_modes(mix, None, 1) == pytest.approx(0.99)
    assert E.expected_mode_coverage(mix, None, 1) == pytest.approx(0.33)


def test_iid_expectations_match_simulation(mix):
    rng = np.random.default_rng(0)
    n, reps = 3, 4000
    x = mix.sample(n * reps, rng)
    cov = [E.mode_coverage(x[i * n : (i + 1) * n], mix, None) for i in range(reps)]
    distinct = E.distinct_modes_per_batch(x, mix, None, n)
    assert np.mean(cov) == pytest.approx(E.expected_mode_coverage(mix, None, n), abs=0.01)
    assert distinct == pytest.approx(E.expected_distinct_modes(mix, None, n), abs=0.03)
    # Monte-Carlo hit probabilities agree with pi * 0.99 when components do not overlap
    np.testing.assert_allclose(mix.hit_probabilities(n_mc=200_000), 0.99 * WEIGHTS, atol=0.005)


def test_sampling_is_exact(mix):
    x, comp = mix.sample(100_000, np.random.default_rng(1), return_components=True)
    np.testing.assert_allclose(np.bincount(comp) / len(comp), WEIGHTS, atol=0.005)
    np.testing.assert_allclose(x[comp == 1].mean(0), MEANS[1], atol=0.02)
    np.testing.assert_allclose(np.cov(x[comp == 1].T), np.eye(2), atol=0.03)


def two_class_truth() -> GroundTruth:
    gmm = GaussianMixture.from_covariances(
        [0.5, 0.5, 1.0], [[0.0, 0.0], [4.0, 0.0], [0.0, 4.0]], np.tile(np.eye(2), (3, 1, 1))
    )
    return GroundTruth("two", ClassMixtures(gmm, np.array([0, 0, 1]), np.array([0.75, 0.25])))


def test_ground_truth_classes_and_marginal():
    truth = two_class_truth()
    assert truth.of_class(0).num_components == 2 and truth.of_class(1).num_components == 1
    np.testing.assert_allclose(truth.weights(None), [0.375, 0.375, 0.25])
    x = np.array([[0.0, 0.0], [1.0, 3.0]])
    marginal = np.logaddexp(
        np.log(0.75) + truth.log_prob(x, 0), np.log(0.25) + truth.log_prob(x, 1)
    )
    np.testing.assert_allclose(truth.log_prob(x, None), marginal, atol=1e-12)
    with pytest.raises(ValueError):
        truth.of_class(2)
    with pytest.raises(ValueError):
        E.mode_coverage(x, truth.of_class(0), 0)  # a single Mixture takes label None


def test_condition_rows_to_class_weights():
    freq = np.array([0.75, 0.25])
    cond = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [2.0, -1.0, 0.0], [-1.0, -1.0, -1.0]])
    np.testing.assert_allclose(
        class_weights_from_condition(cond, freq), [[1, 0], [0.75, 0.25], [1, 0], [0.75, 0.25]]
    )
    with pytest.raises(ValueError):
        class_weights_from_condition(np.zeros((1, 2)), freq)


def test_exact_reference_is_seeded_per_class():
    truth = two_class_truth()
    a = E.exact_reference(truth, 0, 20, seed=3)
    assert a.shape == (200, 2)
    np.testing.assert_array_equal(a, E.exact_reference(truth, 0, 20, seed=3))
    assert not np.array_equal(a, E.exact_reference(truth, 0, 20, seed=4))
    assert not np.array_equal(a, E.exact_reference(truth, 1, 20, seed=3))
    assert E.exact_reference(truth, 1, 20, seed=3, factor=2).shape == (40, 2)


def test_exact_sample_metrics_against_the_reference_itself():
    x = np.random.default_rng(0).normal(size=(50, 2))
    out = E.exact_sample_metrics(x, x)
    for key in ("precision", "recall", "density", "coverage"):
        assert out[f"exact_{key}"] == pytest.approx(1.0)
    assert out["exact_vendi"] == pytest.approx(vendi_score(x))
    few = E.exact_sample_metrics(x[:3], x)
    assert isinstance(few["exact_precision"], Undefined)


def test_exact_scores_has_every_metric_and_its_iid_expectation():
    truth = two_class_truth()
    x = truth.sample(40, np.random.default_rng(0), 0)
    out = E.exact_scores(x, truth, 0, batch_size=8, seed=0)
    assert set(out) >= {s.key for s in E.SPECS} | {
        "mode_coverage_iid",
        "distinct_modes_per_batch_iid",
        "true_mode_entropy",
        "exact_recall",
    }
    assert out["mode_coverage"] == 1.0
    assert out["distinct_modes_per_batch_iid"] == pytest.approx(2 * (1 - (1 - 0.495) ** 8))


def test_rbf_vendi_counts_clusters_at_its_length_scale(mix):
    assert E.vendi_rbf(np.zeros((5, 2)), 0.1) == pytest.approx(1.0)
    far = np.arange(4)[:, None] * np.array([[100.0, 0.0]])
    assert E.vendi_rbf(far, 0.1) == pytest.approx(4.0)
    pairs = np.repeat(far, 2, axis=0)  # 4 clusters of 2 identical points
    assert E.vendi_rbf(pairs, 0.1) == pytest.approx(4.0)
    assert E.component_scale(mix, None) == pytest.approx(1.0)
    with pytest.raises(ValueError):
        E.vendi_rbf(far, 0.0)


def test_digits_gmm_mixture_wraps_as_a_ground_truth():
    import torch

    from bench.models.digits_gmm import DigitsGMMAdapter
    from bench.models.ground_truth import digits_gmm_ground_truth

    truth, adapter = digits_gmm_ground_truth(), DigitsGMMAdapter()
    assert truth.num_classes == 10 and truth.dim == 64
    x_t = torch.randn(5, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    cond = adapter.condition(adapter.prompts()[:5])
    abar = adapter.alphas_cumprod[400]
    want = adapter.predict(x_t, torch.tensor(400), cond).double().reshape(5, -1).numpy()
    got = truth.posterior_mean(
        x_t.double().reshape(5, -1).numpy(), abar**0.5, (1 - abar) ** 0.5, cond.double().numpy()
    )
    np.testing.assert_allclose(got, want, atol=1e-6)
    # exact samples of a class, as (N, 1, 8, 8) latents, hit its components
    x = truth.sample(50, np.random.default_rng(0), 3).reshape(50, 1, 8, 8)
    assert E.outlier_share(x, truth, 3) < 0.1 and E.mode_coverage(x, truth, 3) == 1.0
