"""Autoguidance: x0_weak + w (x0 - x0_weak) with each model's weaker network, on digits
(the committed weak UNet), toy2d (the toy2d-weak MLP) and EDM2 (its guide network)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from test_models_edm2 import GaussianDenoiser, TinyEDM2

from bench.errors import BenchError
from bench.models.digits import (
    WEAK_CHANNELS,
    WEAK_SETTINGS,
    WEAK_WEIGHTS,
    DigitsAdapter,
    condition_labels,
    load_denoiser,
)
from bench.models.edm2 import EDM2Adapter
from bench.models.registry import load_model
from bench.models.toy2d import Toy2DWeakAdapter, load_toy2d
from bench.sampler import Evaluation, PromptConditions, SamplingSettings, generate_prompt, guided_x0
from bench.schedules import noise_level
from methods.base import BatchContext, Step
from methods.registry import expand

STEPS = 5


@pytest.fixture(scope="module")
def digits() -> DigitsAdapter:
    return DigitsAdapter()


@pytest.fixture(scope="module")
def toy2d():
    return load_toy2d()


def _generate(model, name, w, params=None, prompt=1, steps=STEPS):
    method = expand(name, params)[0]
    settings = SamplingSettings(guidance=w, steps=steps)
    return generate_prompt(model, method, model.prompts()[prompt], 4, 2, 3, settings)


def _one_evaluation(model, w, n=3, index=2):
    """(guided x0 and its calls, main x0, weak x0) at one step, from the same inputs."""
    prompt = model.prompts()[1]
    cond, guide = PromptConditions.of(model, prompt).rows(n)
    scheduler = model.make_scheduler()
    model.set_timesteps(scheduler, 10)
    t = scheduler.timesteps[index]
    alpha, sigma = noise_level(scheduler, index, t)
    x = torch.randn(n, *model.latent_shape, generator=torch.Generator().manual_seed(0))
    at = Evaluation(x, t, scheduler, index, alpha, sigma)
    step = Step(index, 10, t, 0.5, alpha, sigma)
    ctx = BatchContext(prompt.id, 0, list(range(n)), list(range(n)), model.device)
    with torch.inference_mode():
        guided = guided_x0(model, expand("autoguidance")[0], step, at, cond, guide, w, ctx)
        main = model.x0(x, t, cond, scheduler, index)
        weak = model.weak_x0(x, t, cond, guide, scheduler, index)
    return guided, main, weak, (x, t, scheduler, index, prompt)


@pytest.mark.parametrize("name", ["digits", "toy2d"])
def test_the_guided_x0_is_weak_plus_w_times_main_minus_weak(name, digits, toy2d):
    model = digits if name == "digits" else toy2d
    (x0, calls), main, weak, _ = _one_evaluation(model, 2.5)
    assert calls == 2 and not torch.allclose(main, weak)
    torch.testing.assert_close(x0, weak + 2.5 * (main - weak), rtol=0, atol=0)


def test_the_weak_digits_net_sees_its_own_embedding_of_the_label(digits):
    _, _, weak, (x, t, scheduler, index, prompt) = _one_evaluation(digits, 2.0)
    alone = DigitsAdapter(load_denoiser(WEAK_WEIGHTS, WEAK_CHANNELS))
    with torch.inference_mode():
        cond = alone.condition([prompt] * len(x))
        expected = alone.x0(x, t, cond, scheduler, index)
    torch.testing.assert_close(weak, expected, rtol=0, atol=0)


def test_cads_noise_leaves_the_label_the_weak_net_reads(digits):
    prompt = digits.prompts()[7]
    cond = digits.condition([prompt] * 2)
    parts = digits.condition_parts(cond)
    ctx = BatchContext("7", 0, [0, 1], [4, 5], digits.device, condition_parts=parts)
    cads = expand("cads", {"tau1": 0.0, "tau2": 0.5, "noise_scale": 1.0})[0]
    noised = cads.condition(Step(0, 10, 999, 1.0, 0.0, 1.0), cond, ctx)
    assert not torch.allclose(noised[:, :-1], cond[:, :-1])
    assert torch.equal(condition_labels(noised), torch.tensor([7, 7]))
    with pytest.raises(BenchError, match="last column must hold class indices"):
        condition_labels(cond + 0.5)


def test_toy2d_guides_with_the_toy2d_weak_mlp(toy2d):
    _, _, weak, (x, t, scheduler, index, prompt) = _one_evaluation(toy2d, 2.0)
    alone = Toy2DWeakAdapter()
    with torch.inference_mode():
        expected = alone.x0(x, t, alone.condition([prompt] * len(x)), scheduler, index)
    torch.testing.assert_close(weak, expected, rtol=0, atol=0)


@pytest.mark.parametrize("name", ["digits", "toy2d"])
def test_w_one_is_none_and_other_w_costs_two_calls_per_step(name, digits, toy2d):
    model = digits if name == "digits" else toy2d
    plain = _generate(model, "none", 1.0)
    auto = _generate(model, "autoguidance", 1.0)
    for key in ("latents", "images", "nfe"):
        assert np.array_equal(auto[key], plain[key]), key
    assert (auto["nfe"] == STEPS).all()
    guided = _generate(model, "autoguidance", 2.0)
    assert (guided["nfe"] == 2 * STEPS).all() and np.isfinite(guided["latents"]).all()
    assert not np.array_equal(guided["latents"], _generate(model, "none", 2.0)["latents"])
    # its own weight replaces the run's
    own = _generate(model, "autoguidance", 1.0, {"weight": 2.0})
    assert np.array_equal(own["latents"], guided["latents"])


def test_on_edm2_with_a_guide_net_it_equals_none():
    for net, guide in ((TinyEDM2(seed=0), TinyEDM2(cemb=6, seed=1)),
                       (GaussianDenoiser(), GaussianDenoiser(label_dim=0, seed=1))):  # fmt: skip
        model = EDM2Adapter(net, guide_net=guide)
        plain = _generate(model, "none", 1.5, steps=4)
        auto = _generate(model, "autoguidance", 1.5, steps=4)
        assert np.array_equal(auto["latents"], plain["latents"])
        assert np.array_equal(auto["nfe"], plain["nfe"]) and (auto["nfe"] == 2 * 7).all()


@pytest.mark.parametrize("name", ["edm2", "toy2d-exact", "toy2d-weak"])
def test_a_model_without_a_weak_network_is_a_one_line_error(name):
    model = EDM2Adapter(GaussianDenoiser()) if name == "edm2" else load_model(name)
    with pytest.raises(BenchError, match="has no weaker network for autoguidance") as err:
        _generate(model, "autoguidance", 2.0, steps=2)
    assert "\n" not in str(err.value)
    assert (_generate(model, "autoguidance", 1.0, steps=2)["nfe"] > 0).all()


def test_missing_weak_digits_weights_name_the_command(digits, tmp_path):
    model = DigitsAdapter(digits.net, weak_path=tmp_path / "absent.safetensors")
    with pytest.raises(BenchError, match="`bench train digits --weak`") as err:
        _generate(model, "autoguidance", 2.0, steps=2)
    assert "\n" not in str(err.value)


def test_the_weak_digits_net_is_smaller_and_its_loss_higher():
    summary = json.loads(WEAK_SETTINGS.read_text())
    main, weak = summary["networks"]["digits_unet"], summary["networks"]["digits_unet_weak"]
    assert weak["parameters"] < main["parameters"] / 2
    for split in ("train", "held_out"):
        assert weak["fixed_noise_loss"][split] > main["fixed_noise_loss"][split], split
    net = load_denoiser(WEAK_WEIGHTS, WEAK_CHANNELS)
    assert sum(p.numel() for p in net.parameters()) == weak["parameters"]
    assert summary["architecture"]["block_out_channels"] == list(WEAK_CHANNELS)
    assert net.label_embedding.weight.shape == (11, 4 * WEAK_CHANNELS[0])
