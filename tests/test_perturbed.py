"""pag, seg, slg: guidance by a perturbed forward pass through diffusers' guiders and
hooks, on tiny sd15 and sd3 components and the digits UNet."""

from __future__ import annotations

import inspect

import numpy as np
import pytest
import torch
from diffusers import guiders
from diffusers.hooks import LayerSkipConfig

from bench.errors import BenchError
from bench.generate import check_methods_fit
from bench.models.registry import load_model
from bench.models.sd3 import SD3Adapter, unpack
from bench.models.sd15 import SD15Adapter
from bench.perf.tiny_pipelines import tiny_dit, tiny_sd3, tiny_sd15
from bench.sampler import SamplingSettings, sample_batch
from methods.base import BatchContext, DiversityMethod, Step
from methods.perturbed import quiet_guiders
from methods.registry import expand

PREFIX = {"pag": "perturbed_guidance", "seg": "seg_guidance", "slg": "skip_layer_guidance"}
GUIDERS = {
    "pag": guiders.PerturbedAttentionGuidance,
    "seg": guiders.SmoothedEnergyGuidance,
    "slg": guiders.SkipLayerGuidance,
}
W, STEPS, SEEDS = 3.0, 3, [5, 6]


def on(name: str, **extra) -> dict:
    """Perturbed on every step the guider allows (all but step 0)."""
    return {f"{PREFIX[name]}_start": 0.0, f"{PREFIX[name]}_stop": 1.0, **extra}


def method(name: str, **params):
    return expand(name, params)[0]


@pytest.fixture(scope="module")
def models(tmp_path_factory, random_digits) -> dict:
    tmp = tmp_path_factory.mktemp("perturbed")
    return {
        "sd15": SD15Adapter(tiny_sd15(tmp / "sd15")),
        "sd3": SD3Adapter(tiny_sd3(tmp / "sd3")),
        "digits": random_digits,
    }


@pytest.fixture(scope="module")
def plain(models) -> dict:
    return {name: run(model, method("none")) for name, model in models.items()}


def run(model, m):
    prompt = model.prompts()[1]
    ctx = BatchContext(prompt.id, 0, [0, 1], SEEDS, model.device)
    return sample_batch(model, m, prompt, ctx, SamplingSettings(W, STEPS))


def forward(model) -> torch.Tensor:
    """One conditional network call of the adapter, on fixed inputs."""
    x = torch.randn(2, *model.latent_shape, generator=torch.Generator().manual_seed(3))
    cond = model.condition([model.prompts()[1]] * 2)
    with torch.inference_mode():
        return model.predict(x, torch.tensor(500), cond)


def hooks_left(network: torch.nn.Module) -> list[str]:
    return [
        f"{name}:{hook}"
        for name, m in network.named_modules()
        for hook in getattr(getattr(m, "_diffusers_hook", None), "hooks", {})
    ]


@pytest.mark.parametrize("model_name", ["sd15", "sd3", "digits"])
@pytest.mark.parametrize("name", sorted(PREFIX))
def test_guides_on_each_model_and_scale_zero_is_none(models, plain, name, model_name):
    model, none = models[model_name], plain[model_name]
    out = run(model, method(name, **on(name)))
    assert torch.isfinite(out.x0).all() and not torch.equal(out.x0, none.x0)
    assert (out.nfe > none.nfe).all()  # the perturbed calls come on top of CFG's
    if model_name == "digits":  # one call per step: cond + uncond, perturbed from step 1
        assert (out.nfe == 2 * STEPS + STEPS - 1).all()
    off = run(model, method(name, **on(name), **{f"{PREFIX[name]}_scale": 0.0}))
    assert torch.equal(off.x0, none.x0) and np.array_equal(off.nfe, none.nfe)


@pytest.mark.parametrize("name", sorted(PREFIX))
def test_combine_is_the_guiders_forward(name):
    scale = 1.7
    m = method(name, **on(name), **{f"{PREFIX[name]}_scale": scale})
    kwargs = {**m.config.guider_kwargs(), "guidance_scale": 1.0}
    with quiet_guiders():
        guider = GUIDERS[name](**kwargs)
    gen = torch.Generator().manual_seed(0)
    c, u, p = (torch.randn(2, 4, 8, 8, generator=gen) for _ in range(3))
    formulas = {
        (W, 1): u + W * (c - u) + scale * (c - p),
        (1.0, 1): p + scale * (c - p),
        (W, 0): u + W * (c - u),
        (1.0, 0): c,
    }
    for (w, index), formula in formulas.items():
        step = Step(index, 4, torch.tensor(999), 0.9, 0.5, 0.8)
        names = m.predictions(step, w)
        preds = {"cond": c, **{k: {"uncond": u, "perturbed": p}[k] for k in names}}
        ours = m.combine(step, preds, w, None)
        guider.guidance_scale = w
        guider.set_state(index, 4, step.timestep)
        assert len(names) + 1 == guider.num_conditions
        expected = guider.forward(c, preds.get("uncond"), preds.get("perturbed")).pred
        torch.testing.assert_close(ours, expected, atol=1e-6, rtol=0)
        torch.testing.assert_close(ours, formula, atol=1e-6, rtol=0)
        if "perturbed" not in names:  # the loop's own CFG, bit for bit
            assert torch.equal(ours, DiversityMethod.combine(m, step, preds, w, None))
    assert m.combine_space == "output"


@pytest.mark.parametrize("model_name", ["sd15", "sd3", "digits"])
@pytest.mark.parametrize("name", sorted(PREFIX))
def test_the_hooks_act_and_are_removed(models, name, model_name):
    model = models[model_name]
    network = model.perturbable()
    before = forward(model)
    with method(name).perturb(network):
        assert hooks_left(network)
        perturbed = forward(model)
    assert not hooks_left(network)
    assert (perturbed - before).abs().max() > 1e-4
    assert torch.equal(forward(model), before)


def _guider_perturbed(guider, unet, call) -> torch.Tensor:
    """The perturbed prediction as a diffusers pipeline gets it: the guider's
    prepare_models / cleanup_models around each of its conditions' calls."""
    guider.set_state(1, 10, torch.tensor(500))
    outs = []
    for _ in range(guider.num_conditions):
        guider.prepare_models(unet)
        outs.append(call())
        guider.cleanup_models(unet)
    return outs[-1]


@pytest.mark.parametrize(
    ("name", "config"),
    [
        ("pag", {"perturbed_guidance_config": LayerSkipConfig(
            [0], fqn="mid_block.attentions", skip_attention=False,
            skip_attention_scores=True, skip_ff=False)}),
        ("slg", {"skip_layer_config": LayerSkipConfig(
            [0], fqn="mid_block.attentions.0.transformer_blocks")}),
    ],
)  # fmt: skip
def test_the_perturbed_forward_is_the_guiders_on_sd15(models, name, config):
    model = models["sd15"]
    with quiet_guiders():
        guider = GUIDERS[name](guidance_scale=W, **config)
    expected = _guider_perturbed(guider, model.perturbable(), lambda: forward(model))
    with method(name).perturb(model.perturbable()):
        ours = forward(model)
    torch.testing.assert_close(ours, expected, atol=1e-6, rtol=0)
    assert not torch.equal(ours, forward(model))


def test_slg_on_sd3_is_the_transformers_own_skip_layers(models):
    model = models["sd3"]
    x = torch.randn(2, *model.latent_shape, generator=torch.Generator().manual_seed(3))
    embeds, pooled = unpack(model.condition([model.prompts()[1]] * 2), model.pooled_dim)
    transformer = model.perturbable()
    with torch.inference_mode():
        expected = transformer(
            x, embeds, pooled, torch.tensor([500, 500]), return_dict=False, skip_layers=[1]
        )[0]
        with method("slg").perturb(transformer):
            ours = forward(model)
    torch.testing.assert_close(ours, expected, atol=1e-6, rtol=0)


def test_the_default_layers_resolve_on_each_network_type(models):
    networks = {
        "UNet2DConditionModel": models["sd15"].perturbable(),
        "SD3Transformer2DModel": models["sd3"].perturbable(),
        "UNet2DModel": models["digits"].perturbable(),
        "DiTTransformer2DModel": tiny_dit().transformer,
    }
    for kind, network in networks.items():
        assert type(network).__name__ == kind
        for name in PREFIX:
            with method(name).perturb(network):
                assert hooks_left(network), (kind, name)
            assert not hooks_left(network)


@pytest.mark.parametrize(
    ("name", "params", "words"),
    [
        ("pag", {"perturbed_guidance_layers": [5]}, ["no block [5]"]),
        ("seg", {"fqn": "nowhere"}, ["no block list 'nowhere'"]),
        ("slg", {"fqn": "down_blocks", "skip_layer_guidance_layers": [1]}, ["CrossAttnDown"]),
        ("pag", {"fqn": "down_blocks"}, ["down_blocks block 0 has no self-attention"]),
    ],
)
def test_a_layer_spec_that_matches_nothing_is_a_one_line_value_error(models, name, params, words):
    network = models["sd15"].perturbable()
    with pytest.raises(ValueError) as err, method(name, **params).perturb(network):
        pass
    message = str(err.value)
    assert "\n" not in message and message.startswith(f"{name}: UNet2DConditionModel")
    assert all(w in message for w in words), message
    assert not hooks_left(network)


@pytest.mark.parametrize("name", sorted(PREFIX))
def test_a_model_without_attention_is_a_one_line_bench_error(name):
    """Refused before a run starts; and should sampling be asked anyway, its first
    perturbed call is the adapter's BenchError."""
    model = load_model("toy2d")
    with pytest.raises(BenchError) as err:
        check_methods_fit(model, [method(name)])
    assert "\n" not in str(err.value) and f"'{name}'" in str(err.value)
    assert "'toy2d'" in str(err.value)
    with pytest.raises(BenchError) as err:
        run(model, method(name, **on(name)))
    assert "\n" not in str(err.value) and "'toy2d'" in str(err.value)


@pytest.mark.parametrize("name", sorted(PREFIX))
def test_defaults_are_the_guiders_and_ids_name_what_changed(name):
    signature = inspect.signature(GUIDERS[name].__init__).parameters
    config = method(name).config
    for key, value in config.guider_kwargs().items():
        if not key.endswith("_layers"):
            assert value == signature[key].default, key
    assert method(name).id == f"{name}-s2.8"
    assert method(name, **on(name), fqn="blocks").id in (
        f"{name}-s2.8-start0-stop1-fqnblocks",
        f"{name}-s2.8-fqnblocks",  # seg's window is 0 to 1 by default
    )
