"""The CFG sweep: `weight` replaces the run's w on every step."""

import numpy as np

from bench.sampler import SamplingSettings, generate_prompt
from methods.registry import expand


def _run(model, method, guidance, steps=4):
    return generate_prompt(model, method, model.prompts()[5], 2, 2, 0,
                           SamplingSettings(guidance, steps))


def test_weight_overrides_the_run_guidance(random_digits):
    swept = _run(random_digits, expand("cfg", {"weight": 3.0})[0], guidance=1.5)
    plain = _run(random_digits, expand("none")[0], guidance=3.0)
    assert np.array_equal(swept["latents"], plain["latents"])


def test_weight_one_skips_the_unconditional_call(random_digits):
    out = _run(random_digits, expand("cfg", {"weight": 1.0})[0], guidance=5.0)
    assert (out["nfe"] == 4).all()


def test_sweep_ids():
    ids = [m.id for m in expand("cfg", {"weight": [1, 1.5, 3, 7.5]})]
    assert ids == ["cfg-w1", "cfg-w1.5", "cfg-w3", "cfg-w7.5"]
