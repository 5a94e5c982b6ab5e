"""Feature maps (bench/feature_maps.py) and the feature-space methods spell-feature and
pg-feature: exactness on linear / identity maps, sparsity, end-to-end runs."""

import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch

import bench.feature_maps as fm
from bench.errors import BenchError
from bench.models.toy2d import load_toy2d
from bench.sampler import SamplingSettings, generate_prompt, to_uint8
from methods.base import BatchContext, PromptContext, Step
from methods.none import NoMethod
from methods.pg import kernel_gradient
from methods.pg_feature import PGFeature, PGFeatureConfig
from methods.registry import get_method_class
from methods.spell_feature import SpellFeature, SpellFeatureConfig
from metrics.extractors import get_extractor
from metrics.extractors.dinov2 import Dinov2Extractor

CPU = torch.device("cpu")
STEP = Step(index=0, num_steps=10, timestep=0, t=0.5, alpha=0.5, sigma=0.8)  # s_t = 1.6


def _ctx(phi, n: int) -> BatchContext:
    return BatchContext("p", 0, list(range(n)), list(range(n)), CPU, feature_map=phi)


def _on_grid(n: int, seed: int = 0) -> torch.Tensor:
    """Digits x0 whose decoded images are exactly uint8 values (k / 255)."""
    k = torch.randint(0, 256, (n, 1, 8, 8), generator=torch.Generator().manual_seed(seed))
    return k.float() / 127.5 - 1.0


@pytest.fixture(scope="module")
def toy2d():
    return load_toy2d()


def _run(model, method, steps=10, samples=8, batch=4):
    settings = SamplingSettings(guidance=model.default_guidance, steps=steps)
    return generate_prompt(model, method, model.prompts()[1], samples, batch, 3, settings)


# --- feature maps ------------------------------------------------------------------------


def test_digits_map_equals_the_extractors_features(random_digits):
    x0 = _on_grid(16)
    phi = fm.feature_map_for(random_digits)
    expected = get_extractor("digits").extract(to_uint8(random_digits.decode(x0)))["features"]
    assert phi.space == "digits" and phi.dim == expected.shape[1]
    np.testing.assert_allclose(phi(x0).detach().numpy(), expected, atol=1e-5)


def test_toy2d_map_is_the_identity(toy2d):
    x0 = torch.randn(5, 2)
    assert torch.equal(fm.feature_map_for(toy2d)(x0), x0)


def test_gradients_flow_from_a_map_built_in_inference_mode(random_digits):
    fm._extractor.cache_clear()  # the sampler builds the map under inference mode
    with torch.inference_mode():
        phi = fm.feature_map_for(random_digits)
    x = (torch.rand(3, 1, 8, 8) * 1.6 - 0.8).requires_grad_(True)
    phi(x).square().sum().backward()
    assert x.grad.abs().sum() > 0


class TinyBackbone(torch.nn.Module):
    num_features = 4

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 16, stride=16)

    def forward(self, x):
        return self.conv(x).mean(dim=(2, 3))


def test_dinov2_map_follows_the_extractor(random_digits):
    torch.manual_seed(0)
    extractor = Dinov2Extractor(TinyBackbone().requires_grad_(False))
    x0 = _on_grid(3, seed=1)
    phi = fm.dinov2_feature_map(random_digits.decode, extractor)
    expected = extractor.extract(to_uint8(random_digits.decode(x0)))["features"]
    np.testing.assert_allclose(phi(x0).detach().numpy(), expected, atol=1e-5)


def test_feature_methods_run_through_a_timm_dinov2(random_digits):
    """The fused attention kernels have no forward-mode derivative: spell-feature's JVPs
    must run through timm's ViT anyway."""
    import timm

    torch.manual_seed(0)
    arch = dict(depth=1, embed_dim=64, num_heads=2, img_size=224, num_classes=0)
    net = timm.create_model("vit_small_patch14_dinov2", pretrained=False, **arch)
    phi = fm.dinov2_feature_map(random_digits.decode, Dinov2Extractor(net.eval()))
    x0 = torch.rand(3, 1, 8, 8) * 1.6 - 0.8
    gaps = torch.pdist(phi(x0))
    spell = SpellFeature(SpellFeatureConfig(radius=2.0 * gaps.max().item()))
    with torch.inference_mode():
        spell = spell.correct(STEP, x0, x0, _ctx(phi, 3))
        pg = PGFeature().correct(STEP, x0, x0, _ctx(phi, 3))
    assert torch.isfinite(spell).all() and torch.isfinite(pg).all() and pg.abs().sum() > 0
    assert torch.pdist(phi(x0 + spell)).mean() > gaps.mean()


def test_other_models_need_local_dinov2_weights(monkeypatch, tmp_path):
    monkeypatch.setattr("metrics.extractors.weights.torch_hub_checkpoints", lambda: tmp_path)
    model = SimpleNamespace(name="ldm", device=CPU, decode=lambda x: x)
    with pytest.raises(BenchError, match="DINOv2 weights not found"):
        fm.feature_map_for(model)


# --- spell-feature -----------------------------------------------------------------------


def _linear(features: int = 3, dim: int = 6, seed: int = 0):
    a = torch.randn(features, dim, generator=torch.Generator().manual_seed(seed)).double()
    return a, lambda x: x @ a.T


def test_spell_feature_on_a_linear_map_lands_on_the_shield_with_least_norm():
    a, phi = _linear()
    method = SpellFeature(SpellFeatureConfig(radius=1.0, intra_batch=False))
    method.begin_prompt(PromptContext("p", CPU))
    earlier = 10.0 * torch.randn(2, 6, dtype=torch.float64)  # shields far apart
    method.end_batch(earlier, _ctx(phi, 2))
    z = method.earlier.data.double()
    offsets = torch.tensor([0.3, 0.7, 3.0], dtype=torch.float64)
    push = torch.linalg.pinv(a) @ torch.randn(3, 3, dtype=torch.float64)  # row-space moves
    push = push / (a @ push).norm(dim=0) * offsets
    x0 = earlier[[0, 1, 0]] + push.T  # samples 0, 1 inside a shield, sample 2 outside
    with torch.inference_mode():
        delta = method.correct(STEP, x0, x0, _ctx(phi, 3))
    moved = phi(x0 + delta)
    dist = torch.stack([(moved[0] - z[0]).norm(), (moved[1] - z[1]).norm()])
    torch.testing.assert_close(dist, torch.ones(2, dtype=torch.float64), atol=1e-6, rtol=0)
    g = (phi(x0) - z[[0, 1, 0]]) * (1.0 / offsets - 1.0)[:, None]
    least = (torch.linalg.pinv(a) @ g[:2].T).T
    torch.testing.assert_close(delta[:2], least, atol=1e-6, rtol=0)
    assert torch.equal(delta[2], torch.zeros(6, dtype=torch.float64))


def test_spell_feature_intra_batch_pushes_each_out_of_the_others_shield():
    _, phi = _linear(features=2, dim=2)
    method = SpellFeature(SpellFeatureConfig(radius=1.0))
    x0 = torch.tensor([[0.1, 0.2], [0.3, 0.1], [5.0, 5.0]], dtype=torch.float64)
    f = phi(x0)
    assert (f[0] - f[1]).norm() < 1.0 and (f[2] - f[:2]).norm(dim=1).min() > 2.0
    with torch.inference_mode():
        delta = method.correct(STEP, x0, x0, _ctx(phi, 3))
    moved = phi(x0 + delta)
    gaps = torch.stack([(moved[0] - f[1]).norm(), (moved[1] - f[0]).norm()])
    torch.testing.assert_close(gaps, torch.ones(2, dtype=torch.float64), atol=1e-6, rtol=0)
    assert torch.equal(delta[2], torch.zeros(2, dtype=torch.float64))


def test_spell_feature_outside_every_shield_is_bit_identical_to_none(random_digits):
    plain = _run(random_digits, NoMethod())
    method = SpellFeature(SpellFeatureConfig(radius=1e-6))
    spelled = _run(random_digits, method)
    assert np.array_equal(plain["latents"], spelled["latents"])
    assert not spelled["trace_active"].any() and method.calls > 0


def _recording(method):
    """Wraps method._correct to keep (x0_hat, delta) of every call."""
    calls, correct = [], method._correct

    def record(x0_hat, phi):
        delta = correct(x0_hat, phi)
        calls.append((x0_hat.clone(), None if delta is None else delta.clone()))
        return delta

    method._correct = record
    return calls


def test_spell_feature_is_sparse_on_toy2d(toy2d):
    method = SpellFeature(SpellFeatureConfig(radius=0.05, inter_batch=False))
    calls = _recording(method)
    out = _run(toy2d, method, steps=20)
    assert np.isfinite(out["latents"]).all()
    hit_rows = 0
    for x0_hat, delta in calls:
        dist = torch.cdist(x0_hat.double(), x0_hat.double())
        dist.fill_diagonal_(math.inf)
        hit = (dist < 0.05).any(1)
        hit_rows += int(hit.sum())
        if delta is None:
            assert not hit.any()
        else:
            assert not delta[~hit].any()
    assert 0 < hit_rows < len(calls) * 4
    assert out["trace_active"].any() and not out["trace_active"].all()


def test_spell_feature_runs_on_digits_with_default_radius(random_digits):
    method = get_method_class("spell-feature")()
    out = _run(random_digits, method)
    assert np.isfinite(out["latents"]).all() and out["trace_active"].any()
    assert method.seconds > 0 and method.id == "spell-feature-l1"


def test_spell_feature_needs_a_radius_where_the_space_has_none():
    with torch.inference_mode(), pytest.raises(ValueError, match="set radius"):
        SpellFeature().correct(STEP, torch.zeros(2, 2), torch.zeros(2, 2), _ctx(lambda x: x, 2))


# --- pg-feature --------------------------------------------------------------------------


def test_pg_feature_with_the_identity_is_pgs_formula_on_x0():
    x0 = torch.randn(5, 7, dtype=torch.float64)
    with torch.inference_mode():
        delta = PGFeature(PGFeatureConfig(strength=3.0)).correct(STEP, x0, x0, _ctx(lambda x: x, 5))
    expected = 3.0 * STEP.edm_sigma**2 * kernel_gradient(x0)
    torch.testing.assert_close(delta, expected, atol=1e-10, rtol=1e-10)


def test_pg_feature_is_minus_the_gradient_of_each_particles_kernel_sum():
    a = torch.randn(3, 4, generator=torch.Generator().manual_seed(1)).double()

    def phi(x):
        return torch.tanh(x @ a.T)

    x0 = torch.randn(4, 4, dtype=torch.float64)
    with torch.inference_mode():
        delta = PGFeature(PGFeatureConfig(strength=1.0)).correct(STEP, x0, x0, _ctx(phi, 4))
    feats = phi(x0)
    dist = torch.cdist(feats, feats)
    h = torch.stack([dist[i][torch.arange(4) != i].median() ** 2 for i in range(4)]) / math.log(3)

    def potential(i, xi):  # sum_j k_ij with the others' features and h_i fixed
        others = feats[torch.arange(4) != i]
        return torch.exp(-((phi(xi[None]) - others) ** 2).sum(1) / h[i]).sum()

    eps, numeric = 1e-6, torch.zeros_like(x0)
    for i in range(4):
        for d in range(4):
            e = torch.zeros(4, dtype=torch.float64)
            e[d] = eps
            numeric[i, d] = (potential(i, x0[i] + e) - potential(i, x0[i] - e)) / (2 * eps)
    torch.testing.assert_close(delta / STEP.edm_sigma**2, -numeric, atol=1e-7, rtol=1e-6)


def test_pg_feature_strength_zero_and_low_noise_are_off(random_digits):
    x0 = torch.randn(3, 2)
    low = Step(index=9, num_steps=10, timestep=0, t=0.1, alpha=0.9, sigma=0.5)
    with torch.inference_mode():
        assert PGFeature().correct(low, x0, x0, _ctx(lambda x: x, 3)) is None
    plain = _run(random_digits, NoMethod())
    off = _run(random_digits, PGFeature(PGFeatureConfig(strength=0.0)))
    assert np.array_equal(plain["latents"], off["latents"])


@pytest.mark.parametrize("model_name", ["digits", "toy2d"])
def test_pg_feature_runs_end_to_end(model_name, random_digits, toy2d):
    model = random_digits if model_name == "digits" else toy2d
    method = get_method_class("pg-feature")(PGFeatureConfig(strength=0.05))
    out = _run(model, method)
    assert np.isfinite(out["latents"]).all() and out["trace_active"].any()
