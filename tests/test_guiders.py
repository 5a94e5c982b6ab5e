"""diffusers' guiders as methods: each computes exactly what its guider's forward does,
keeps no state between batches, runs on digits, toy2d (where defined) and a tiny SD 1.5
pipeline, and its off setting matches `none`."""

import logging

import diffusers.guiders
import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from bench.cli import app
from bench.models.sd15 import SD15Adapter
from bench.models.toy2d import load_toy2d
from bench.perf.tiny_pipelines import tiny_sd15
from bench.sampler import SamplingSettings, generate_prompt
from methods.base import BatchContext, Step
from methods.guiders import GUIDER_LOGGER
from methods.registry import expand

NAMES = ("apg", "cfg-zero-star", "tcfg", "fdg", "mag")
# (method, params, guider class, input shape): non-default settings exercise every rule
EXACT = [
    ("apg", {}, "AdaptiveProjectedGuidance", (4, 8, 8)),
    ("apg", {"eta": 0.0, "adaptive_projected_guidance_momentum": -0.5,
             "adaptive_projected_guidance_rescale": 2.0}, "AdaptiveProjectedGuidance", (2,)),
    ("apg", {"adaptive_projected_guidance_norm_dim": [-1, -2], "guidance_rescale": 0.7,
             "use_original_formulation": True}, "AdaptiveProjectedGuidance", (4, 8, 8)),
    ("cfg-zero-star", {"zero_init_steps": 2}, "ClassifierFreeZeroStarGuidance", (4, 8, 8)),
    ("tcfg", {}, "TangentialClassifierFreeGuidance", (1, 28, 28)),
    ("fdg", {}, "FrequencyDecoupledGuidance", (4, 8, 8)),
    ("fdg", {"guidance_scales": [6.0, 3.0, 1.5], "parallel_weights": 0.5,
             "guidance_rescale": 0.5, "guidance_rescale_space": "freq"},
     "FrequencyDecoupledGuidance", (1, 28, 28)),
    ("mag", {"alpha": 2.0}, "MagnitudeAwareGuidance", (2,)),
    ("mag", {}, "MagnitudeAwareGuidance", (4, 8, 8)),
    ("mag", {"use_original_formulation": True, "guidance_rescale": 0.3},
     "MagnitudeAwareGuidance", (2, 8)),
]  # fmt: skip
STEPS = 4
W = 3.0


def _ctx(batch: int = 0) -> BatchContext:
    return BatchContext("3", batch, [0, 1, 2], [5, 6, 7], torch.device("cpu"))


def _step(i: int) -> Step:
    return Step(i, STEPS, 999 - 250 * i, 1 - i / STEPS, 0.5, 0.8)


def _preds(shape, i: int) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(i)
    return {k: torch.randn(3, *shape, generator=gen) for k in ("cond", "uncond")}


def _reference(cls_name: str, params: dict, shape) -> list[torch.Tensor]:
    """The guider itself, called as a modular pipeline calls it, over STEPS steps."""
    cls = getattr(diffusers.guiders, cls_name)
    scale = {} if cls_name == "FrequencyDecoupledGuidance" else {"guidance_scale": W}
    guider = cls(**scale, **params)
    outs = []
    for i in range(STEPS):
        guider.set_state(i, STEPS, 999 - 250 * i)
        guider.prepare_inputs({})
        cond, uncond = _preds(shape, i).values()
        if cls_name == "MagnitudeAwareGuidance" and cond.dim() == 4:
            # its torch.norm takes at most two dims: image latents go in as (N, C, H W)
            out = guider.forward(cond.flatten(2), uncond.flatten(2)).pred.reshape(cond.shape)
        else:
            out = guider.forward(cond, uncond).pred
        # FDG returns kornia's padded size where a side is not a power of two
        outs.append(out[..., : shape[-2], : shape[-1]] if cond.dim() == 4 else out)
    return outs


def _ours(method, shape, batch: int = 0) -> list[torch.Tensor]:
    outs = []
    for i in range(STEPS):
        preds = _preds(shape, i)
        if not method.predictions(_step(i), W):
            del preds["uncond"]
        outs.append(method.combine(_step(i), preds, W, _ctx(batch)))
    return outs


@pytest.mark.parametrize(("name", "params", "cls_name", "shape"), EXACT)
def test_combine_is_the_guiders_forward(name, params, cls_name, shape):
    method = expand(name, params)[0]
    ours, expected = _ours(method, shape), _reference(cls_name, params, shape)
    diff = max(float((a - b).abs().max()) for a, b in zip(ours, expected, strict=True))
    assert diff <= 1e-6 and all(a.shape == (3, *shape) for a in ours)
    # a second batch starts afresh (APG's momentum restarts at its step 0)
    again = _ours(method, shape, batch=1)
    assert all(torch.equal(a, b) for a, b in zip(again, ours, strict=True))


def test_momentum_carries_over_steps_within_a_batch():
    params = {"adaptive_projected_guidance_momentum": -0.5}
    with_momentum = _ours(expand("apg", params)[0], (4, 8, 8))
    without = _ours(expand("apg")[0], (4, 8, 8))
    assert torch.equal(with_momentum[0], without[0])
    assert not torch.equal(with_momentum[2], without[2])


def test_cfg_zero_star_zeroes_its_first_steps_without_the_unconditional_call():
    method = expand("cfg-zero-star", {"zero_init_steps": 2})[0]
    assert method.predictions(_step(1), W) == () and method.predictions(_step(2), W)
    out = method.combine(_step(0), {"cond": torch.ones(3, 2)}, W, _ctx())
    assert torch.equal(out, torch.zeros(3, 2))


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def test_constructing_a_guider_logs_nothing():
    # diffusers' loggers do not propagate to the root logger (caplog would see nothing)
    logger, seen = logging.getLogger(GUIDER_LOGGER), _Records()
    logger.addHandler(seen)
    try:
        diffusers.guiders.TangentialClassifierFreeGuidance()
        assert seen.records, "the guider no longer warns: this test checks nothing"
        seen.records.clear()
        method = expand("tcfg", {"guidance_rescale": [0.1, 0.2]})[1]
        method.predictions(_step(0), W)
        method.combine(_step(0), _preds((2,), 0), W, _ctx())
    finally:
        logger.removeHandler(seen)
    assert not seen.records and logger.level == logging.NOTSET


def _generate(model, name, params=None, w=None, steps=3, n=2):
    settings = SamplingSettings(model.default_guidance if w is None else w, steps)
    method = expand(name, params)[0]
    return generate_prompt(model, method, model.prompts()[1], n, 2, 7, settings)


@pytest.mark.parametrize("name", NAMES)
def test_runs_on_digits(random_digits, name):
    out = _generate(random_digits, name, w=2.5)
    assert np.isfinite(out["latents"]).all() and out["latents"].shape == (
        2,
        *random_digits.latent_shape,
    )
    # two evaluations a step; cfg-zero-star's zeroed first step needs only the conditional
    assert (out["nfe"] == (5 if name == "cfg-zero-star" else 6)).all()


@pytest.fixture(scope="module")
def toy():
    return load_toy2d()


ON_TOY = {"apg": {"eta": 0.0}, "cfg-zero-star": {}, "tcfg": {}, "mag": {}}


@pytest.mark.parametrize("name", sorted(ON_TOY))
def test_runs_on_toy2d(toy, name):
    out, plain = _generate(toy, name, ON_TOY[name], n=4), _generate(toy, "none", n=4)
    assert np.isfinite(out["latents"]).all() and out["latents"].shape == (4, 2)
    assert not np.array_equal(out["latents"], plain["latents"])


def test_fdg_on_toy2d_says_it_needs_image_latents(toy):
    with pytest.raises(ValueError, match=r"fdg needs image latents .* \(2,\)"):
        _generate(toy, "fdg")


OFF_AT_W1 = {"apg": {}, "cfg-zero-star": {"zero_init_steps": 0}, "tcfg": {}, "mag": {}}
# settings where the guider's rule is CFG with the run's w
OFF = {"apg": {"adaptive_projected_guidance_rescale": 0.0}, "mag": {"alpha": 0.0}}


@pytest.mark.parametrize("name", sorted(OFF_AT_W1))
def test_w_one_is_bit_identical_to_none_on_toy2d(toy, name):
    out, plain = _generate(toy, name, OFF_AT_W1[name], w=1.0), _generate(toy, "none", w=1.0)
    for key in ("latents", "images", "nfe"):
        assert np.array_equal(out[key], plain[key]), key


@pytest.mark.parametrize("name", sorted(OFF))
def test_off_setting_is_cfg(toy, random_digits, name):
    # x0 models: the loop's conversions are the identity, so the samples are the same bits
    out, plain = _generate(toy, name, OFF[name]), _generate(toy, "none")
    for key in ("latents", "images", "nfe"):
        assert np.array_equal(out[key], plain[key]), key
    # epsilon models: CFG on epsilon is CFG on x0 up to the conversions' roundoff
    out, plain = (
        _generate(random_digits, name, OFF[name], w=2.5),
        _generate(random_digits, "none", w=2.5),
    )
    np.testing.assert_allclose(out["latents"], plain["latents"], atol=1e-5)
    assert np.array_equal(out["nfe"], plain["nfe"])


@pytest.mark.parametrize(("scales", "w"), [([1.0, 1.0], 1.0), ([2.5, 2.5], 2.5)])
def test_fdg_with_equal_scales_is_cfg(random_digits, scales, w):
    out = _generate(random_digits, "fdg", {"guidance_scales": scales})
    plain = _generate(random_digits, "none", w=w)
    np.testing.assert_allclose(out["latents"], plain["latents"], atol=1e-5)
    assert np.array_equal(out["nfe"], plain["nfe"])


@pytest.fixture(scope="module")
def sd15(tmp_path_factory):
    return SD15Adapter(tiny_sd15(tmp_path_factory.mktemp("sd15")))


@pytest.mark.parametrize("name", NAMES)
def test_runs_on_a_tiny_sd15_pipeline(sd15, name):
    out = _generate(sd15, name, w=3.0, steps=2)
    assert np.isfinite(out["latents"]).all() and out["latents"].shape == (2, *sd15.latent_shape)
    # PLMS evaluates its first step twice: 3 evaluations, of 2 predictions each, but
    # cfg-zero-star's zeroed first step makes only the conditional one
    assert (out["nfe"] == (4 if name == "cfg-zero-star" else 6)).all()


def test_bench_list_methods_shows_the_guiders():
    result = CliRunner().invoke(app, ["list", "methods"])
    assert result.exit_code == 0, result.output
    listed = {line.split()[0] for line in result.output.splitlines() if line[:1].strip()}
    assert set(NAMES) <= listed
    assert "adaptive_projected_guidance_momentum = (unset)" in result.output
