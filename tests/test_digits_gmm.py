import numpy as np
import pytest
import torch

from bench.data.digits import NUM_CLASSES, load_split
from bench.errors import BenchError
from bench.models.base import Prompt
from bench.models.digits_gmm import (
    DigitsGMMAdapter,
    GaussianMixture,
    class_weights_from_condition,
    posterior_mean,
)


@pytest.fixture(scope="module")
def gmm() -> DigitsGMMAdapter:
    return DigitsGMMAdapter()


def class_mean(adapter: DigitsGMMAdapter, c: int) -> np.ndarray:
    mix, owner = adapter.mixtures.mixture, adapter.mixtures.owner
    w = np.exp(mix.log_weights[owner == c])
    return (w / w.sum()) @ mix.means[owner == c]


def test_single_gaussian_matches_analytic_posterior():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(3, 3))
    cov, mean = a @ a.T + 0.1 * np.eye(3), np.array([0.5, -1.0, 2.0])
    mix = GaussianMixture.from_covariances([1.0], mean[None], cov[None])
    x_t, alpha, sigma = rng.normal(size=(4, 3)), 0.7, 0.6
    gain = alpha * cov @ np.linalg.inv(alpha**2 * cov + sigma**2 * np.eye(3))
    expected = mean + (x_t - alpha * mean) @ gain.T
    np.testing.assert_allclose(posterior_mean(mix, x_t, alpha, sigma), expected, atol=1e-10)


def test_degenerate_gaussian_returns_its_mean():
    mean = np.array([0.3, -0.2])
    mix = GaussianMixture.from_covariances([1.0], mean[None], 1e-12 * np.eye(2)[None])
    x_t = np.array([[5.0, -7.0], [0.0, 0.0]])
    np.testing.assert_allclose(posterior_mean(mix, x_t, 0.9, 0.4), np.tile(mean, (2, 1)), atol=1e-8)


def test_two_component_mixture_matches_importance_estimate():
    means = np.array([[1.0, 0.0], [-1.0, 0.5]])
    # Very different spreads, so responsibilities depend on the covariances' determinants.
    covs = np.array([[[0.05, 0.02], [0.02, 0.08]], [[1.0, -0.3], [-0.3, 0.8]]])
    weights = np.array([0.3, 0.7])
    mix = GaussianMixture.from_covariances(weights, means, covs)
    alpha, sigma = 0.8, 0.5
    x_t = np.array([[0.1, 0.2], [0.9, -0.3], [-0.7, 0.6], [0.6, 0.1]])
    # Self-normalised importance estimate with the prior as proposal.
    rng = np.random.default_rng(0)
    n = 400_000
    comp = rng.choice(2, size=n, p=weights)
    chol = np.linalg.cholesky(covs)
    x0 = means[comp] + np.einsum("nij,nj->ni", chol[comp], rng.normal(size=(n, 2)))
    for x in x_t:
        log_w = -0.5 * np.sum((x - alpha * x0) ** 2, axis=1) / sigma**2
        w = np.exp(log_w - log_w.max())
        estimate = (w[:, None] * x0).sum(0) / w.sum()
        exact = posterior_mean(mix, x[None], alpha, sigma)[0]
        np.testing.assert_allclose(exact, estimate, atol=1e-2)


def test_small_noise_returns_the_input(gmm):
    x = torch.from_numpy(load_split("train").images[:20])
    cond = gmm.condition([Prompt(str(int(c)), "", int(c)) for c in load_split("train").labels[:20]])
    out = gmm.predict(x, 0, cond)
    assert out.dtype == x.dtype and out.shape == x.shape
    torch.testing.assert_close(out, x, atol=1e-2, rtol=0)


def test_pure_noise_returns_the_class_mean(gmm):
    x_t = torch.randn(NUM_CLASSES, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    out = gmm.predict(x_t, torch.tensor(999), gmm.condition(gmm.prompts())).double()
    for c in range(NUM_CLASSES):
        np.testing.assert_allclose(out[c].flatten().numpy(), class_mean(gmm, c), atol=1e-3)


def test_null_condition_is_the_frequency_weighted_mixture(gmm):
    x_t = torch.randn(3, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    freq = torch.from_numpy(gmm.mixtures.class_freq)
    soft = torch.cat([freq, torch.zeros(1)]).float().expand(3, -1)
    null = gmm.predict(x_t, 500, gmm.null_condition(3))
    torch.testing.assert_close(null, gmm.predict(x_t, 500, soft))
    pure_noise = gmm.predict(x_t, 999, gmm.null_condition(3)).double()[0].flatten().numpy()
    overall = sum(f * class_mean(gmm, c) for c, f in enumerate(gmm.mixtures.class_freq))
    np.testing.assert_allclose(pure_noise, overall, atol=1e-3)


def test_condition_weights_clip_and_renormalise():
    freq = np.full(NUM_CLASSES, 0.1)
    cond = np.zeros((3, NUM_CLASSES + 1))
    cond[0, [2, 3]] = [2.0, -1.0]  # negative weight counts as zero
    cond[1, :] = -1.0  # nothing positive: the null condition
    cond[2, [0, NUM_CLASSES]] = [0.5, 0.5]
    weights = class_weights_from_condition(cond, freq)
    np.testing.assert_allclose(weights.sum(1), 1.0)
    assert weights[0, 2] == 1.0
    np.testing.assert_allclose(weights[1], freq)
    assert weights[2, 0] == pytest.approx(0.55) and weights[2, 1] == pytest.approx(0.05)


def test_rejects_a_badly_shaped_condition(gmm):
    with pytest.raises(BenchError):
        gmm.predict(torch.zeros(2, 1, 8, 8), 10, torch.zeros(2, NUM_CLASSES))
