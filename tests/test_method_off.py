"""Every method at its "off" setting gives samples bit-identical to `none` (same seeds)."""

import numpy as np
import pytest

from bench.sampler import SamplingSettings, generate_prompt
from methods.registry import expand

STEPS = 5
OFF = {
    "pg": {"strength": 0.0},
    "ig": {"interval": [0.0, 1.0]},
    "cads": {"noise_scale": 0.0, "tau1": 1.0, "tau2": 1.0},
    "cfg": {"weight": "model-default"},
    "pg-feature": {"strength": 0.0},
    "pag": {"perturbed_guidance_scale": 0.0, "perturbed_guidance_start": 0.0},
    "seg": {"seg_guidance_scale": 0.0},
    "slg": {"skip_layer_guidance_scale": 0.0, "skip_layer_guidance_start": 0.0},
    "spell-feature": {"radius": 1e-6},  # no two samples' features that close: no correction
}
# A setting that is not off: each must change the samples, or the test above proves nothing.
ON = {
    "pg": {"strength": 1.0},
    "ig": {"interval": [0.0, 0.5]},
    "cads": {"noise_scale": 0.5, "tau1": 0.1, "tau2": 0.9},
    "cfg": {"weight": 4.0},
    "pg-feature": {"strength": 1.0},
    "pag": {"perturbed_guidance_start": 0.0, "perturbed_guidance_stop": 1.0},
    "seg": {},
    "slg": {"skip_layer_guidance_start": 0.0, "skip_layer_guidance_stop": 1.0},
    "spell-feature": {"radius": 3.0},
    "autoguidance": {},
    "apg": {},
    "cfg-zero-star": {},
    "tcfg": {},
    "fdg": {},
    "mag": {},
}


def _generate(model, name, params):
    if params.get("weight") == "model-default":
        params = {"weight": model.default_guidance}
    method = expand(name, params)[0]
    settings = SamplingSettings(guidance=model.default_guidance, steps=STEPS)
    return generate_prompt(model, method, model.prompts()[3], 3, 3, 11, settings)


@pytest.fixture(scope="module")
def plain(random_digits):
    return _generate(random_digits, "none", {})


@pytest.mark.parametrize("name", sorted(OFF))
def test_off_setting_is_bit_identical_to_none(random_digits, plain, name):
    out = _generate(random_digits, name, OFF[name])
    for key in ("latents", "images", "nfe", "trace_active"):
        assert np.array_equal(out[key], plain[key]), key


@pytest.mark.parametrize("name", sorted(ON))
def test_on_setting_changes_the_samples(random_digits, plain, name):
    out = _generate(random_digits, name, ON[name])
    assert not np.array_equal(out["latents"], plain["latents"])
