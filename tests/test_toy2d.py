"""The toy2d testbed: the true mixture, the exact denoiser, the committed MLPs, and the
exact metrics on real sampler output."""

import numpy as np
import pytest
import torch

from bench.errors import BenchError
from bench.models.ground_truth import Mixture
from bench.models.toy2d import (
    NUM_CLASSES,
    Toy2DAdapter,
    Toy2DExactAdapter,
    Toy2DWeakAdapter,
    centroid_points,
    render_points,
    toy2d_ground_truth,
)
from bench.sampler import SamplingSettings, generate_prompt, to_uint8
from methods.registry import expand
from metrics import exact as E


@pytest.fixture(scope="module")
def exact() -> Toy2DExactAdapter:
    return Toy2DExactAdapter()


@pytest.fixture(scope="module")
def learned() -> Toy2DAdapter:
    return Toy2DAdapter()


def sample(model, label, n, batch, w, method="none", params=None, seed=0, steps=None):
    settings = SamplingSettings(guidance=w, steps=steps or model.default_steps)
    meth = expand(method, params)[0]
    return generate_prompt(model, meth, model.prompts()[label], n, batch, seed, settings)


# --- the true distribution -------------------------------------------------------------


def test_the_mixture_is_fixed_and_non_trivial():
    truth = toy2d_ground_truth()
    assert truth.num_classes == NUM_CLASSES and truth.dim == 2
    for c in range(NUM_CLASSES):
        mix = truth.of_class(c)
        assert mix.num_components >= 12
        np.testing.assert_allclose(mix.weights.sum(), 1.0)
        assert mix.weights.min() < 0.02 < 0.15 < mix.weights.max()  # unequal masses
        ratio = mix.gmm.eigvals.max(1) / mix.gmm.eigvals.min(1)
        assert (ratio > 4).all()  # anisotropic
    # rebuilt from its seed, bit for bit
    rebuilt = toy2d_ground_truth.__wrapped__()
    np.testing.assert_array_equal(rebuilt.classes.mixture.means, truth.classes.mixture.means)


def test_classes_overlap_in_part():
    truth = toy2d_ground_truth()
    rng = np.random.default_rng(0)
    # share of each class's samples where another class is at least 1% as likely
    shares = []
    for c in range(NUM_CLASSES):
        x = truth.sample(20_000, rng, c)
        lp = np.stack([truth.log_prob(x, k) for k in range(NUM_CLASSES)])
        others = np.delete(lp, c, axis=0).max(0)
        shares.append(np.mean(others > lp[c] + np.log(0.01)))
    assert all(0.01 < s < 0.3 for s in shares), shares


@pytest.mark.parametrize("label", [0, 1, 2, 3, None])
def test_log_density_integrates_to_one(label):
    truth = toy2d_ground_truth()
    # thinnest std 0.008: a grid step of h = 0.008 puts the Riemann sum of each
    # Gaussian within exp(-2 pi^2) ~ 3e-9 of its integral
    h = 0.008
    g = np.arange(-1.6, 1.6, h) + h / 2
    xx, yy = np.meshgrid(g, g)
    pts = np.stack([xx.ravel(), yy.ravel()], 1)
    total = (
        sum(np.exp(truth.log_prob(chunk, label)).sum() for chunk in np.array_split(pts, 8)) * h * h
    )
    assert total == pytest.approx(1.0, abs=1e-4)


# --- the exact denoiser -----------------------------------------------------------------


@pytest.mark.parametrize("cond_kind", ["class", "null"])
def test_exact_denoiser_equals_monte_carlo_posterior_mean(exact, cond_kind):
    truth = exact.ground_truth()
    label = 2 if cond_kind == "class" else None
    rng = np.random.default_rng(1)
    prior = truth.sample(300_000, rng, label)
    cond_row = (
        exact.condition([exact.prompts()[2]]) if label is not None else exact.null_condition(1)
    )
    abar = exact.make_scheduler().alphas_cumprod.double().numpy()  # the sampler's levels
    for t in (250, 500, 750):
        alpha, sigma = np.sqrt(abar[t]), np.sqrt(1.0 - abar[t])
        x_t = alpha * truth.sample(3, rng, label) + sigma * rng.standard_normal((3, 2))
        got = exact.predict(torch.from_numpy(x_t), torch.tensor(t), cond_row.expand(3, -1).double())
        for i in range(3):
            log_w = -0.5 * np.sum((x_t[i] - alpha * prior) ** 2, axis=1) / sigma**2
            w = np.exp(log_w - log_w.max())
            mc = (w[:, None] * prior).sum(0) / w.sum()
            se = np.sqrt((w[:, None] ** 2 * (prior - mc) ** 2).sum(0)) / w.sum()
            assert np.all(np.abs(got[i].numpy() - mc) <= 4 * se + 1e-6), (t, got[i], mc, se)


def test_soft_condition_is_the_mixture_of_classes(exact):
    truth = exact.ground_truth()
    x_t = torch.randn(4, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    soft = torch.zeros(4, NUM_CLASSES + 1, dtype=torch.float64)
    soft[:, 0], soft[:, 3] = 0.5, 0.5
    got = exact.predict(x_t, torch.tensor(600), soft).numpy()
    mix = truth.classes.mixture
    sel = np.isin(truth.classes.owner, [0, 3])
    both = Mixture.from_parameters(
        np.exp(mix.log_weights[sel]), mix.means[sel], truth.of_class(None).covariances[sel]
    )
    want = both.posterior_mean(x_t.numpy(), exact.alphas[600], exact.sigmas[600])
    np.testing.assert_allclose(got, want, atol=1e-10)
    # a condition with no positive weight is the null condition
    neg = -torch.ones(4, NUM_CLASSES + 1, dtype=torch.float64)
    null = exact.null_condition(4).double()
    torch.testing.assert_close(exact.predict(x_t, 600, neg), exact.predict(x_t, 600, null))


def test_adapters_reject_bad_shapes(exact):
    with pytest.raises(BenchError):
        exact.predict(torch.zeros(2, 3), 10, exact.null_condition(2))
    with pytest.raises(BenchError):
        exact.predict(torch.zeros(2, 2), 10, torch.zeros(2, NUM_CLASSES))


# --- rendering ----------------------------------------------------------------------------


def test_images_render_the_points_and_encode_back(exact):
    pts = torch.tensor([[0.0, 0.0], [0.7, -0.4], [-1.0, 0.9], [5.0, 5.0]])
    img = exact.decode(pts)
    assert img.shape == (4, *exact.image_shape) and 0 <= img.min() and img.max() == 1.0
    u8 = to_uint8(img)
    assert u8.shape == (4, 16, 16, 1) and u8.dtype == np.uint8
    # y grows upwards: the point (0.7, -0.4) is lit in the lower right quadrant
    assert img[1, 0, 8:, 8:].sum() > img[1, 0, :8, :8].sum()
    back = exact.encode(img)
    np.testing.assert_allclose(back[:3].numpy(), pts[:3].numpy(), atol=0.03)
    assert torch.allclose(back[3], torch.tensor([1.6, 1.6]), atol=0.2)  # drawn at the edge
    assert torch.equal(render_points(pts), img) and torch.equal(centroid_points(img), back)


# --- the sampler on the exact model: coverage as i.i.d. sampling predicts ------------------


def test_exact_model_coverage_matches_iid_expectation(exact):
    """At n = 32 per prompt coverage is far from saturated, so it discriminates. 200 steps:
    at the default 50, DDPM's discretisation under-samples the lightest beads a little
    (coverage about 0.02 low here), which is the sampler's error, not the model's."""
    truth = exact.ground_truth()
    n, seeds, steps = 32, range(8), 200
    measured, expected, var = [], [], []
    for c in range(NUM_CLASSES):
        q = truth.of_class(c).hit_probabilities(n_mc=200_000, seed=c)
        for s in seeds:
            x = sample(exact, c, n, 32, 1.0, seed=s, steps=steps)["latents"]
            assert x.shape == (n, 2)
            measured.append(E.mode_coverage(x, truth, c))
        expected.append(E.expected_mode_coverage(truth, c, n, hit_probs=q))
        var.append(E.mode_coverage_std(truth, c, n, hit_probs=q) ** 2)
    mean_expected = np.mean(expected)
    se = np.sqrt(np.mean(var) / len(measured))
    assert 0.5 < mean_expected < 0.9  # a discriminating regime, not saturated
    assert abs(np.mean(measured) - mean_expected) < 3 * se, (np.mean(measured), mean_expected, se)


def test_spell_hits_more_components_per_batch_than_none(exact):
    truth = exact.ground_truth()
    spell = {"radius": 0.15, "inter_batch": False}
    none_d, spell_d = [], []
    for c in range(NUM_CLASSES):
        a = sample(exact, c, 64, 8, 1.0)
        b = sample(exact, c, 64, 8, 1.0, "spell", spell)
        assert b["trace_active"].any()
        none_d.append(E.distinct_modes_per_batch(a["latents"], truth, c, 8))
        spell_d.append(E.distinct_modes_per_batch(b["latents"], truth, c, 8))
    assert np.mean(spell_d) > np.mean(none_d) + 0.5, (spell_d, none_d)


# --- the committed learned models ---------------------------------------------------------


def test_guidance_on_the_learned_model_trades_coverage_for_density(learned):
    truth = learned.ground_truth()
    rows = {}
    for w in (1.0, 3.0):
        stats = []
        for c in range(NUM_CLASSES):
            x = sample(learned, c, 128, 64, w)["latents"]
            stats.append(
                [
                    E.exact_log_density(x, truth, c),
                    E.mode_coverage(x, truth, c),
                    E.outlier_share(x, truth, c),
                ]
            )
        rows[w] = np.mean(stats, axis=0)
    (ld1, cov1, out1), (ld3, cov3, out3) = rows[1.0], rows[3.0]
    assert ld3 > ld1 + 0.3
    assert cov3 < cov1 - 0.2
    assert out1 > 0.01 and out3 < out1  # unguided outliers, removed by guidance


def test_weak_model_is_worse_than_the_main_one(learned):
    weak = Toy2DWeakAdapter()
    truth = learned.ground_truth()
    main_p = sum(p.numel() for p in learned.net.parameters())
    weak_p = sum(p.numel() for p in weak.net.parameters())
    assert weak_p < main_p
    x_main = sample(learned, 1, 128, 128, 1.0)["latents"]
    x_weak = sample(weak, 1, 128, 128, 1.0)["latents"]
    assert E.exact_log_density(x_weak, truth, 1) < E.exact_log_density(x_main, truth, 1)
