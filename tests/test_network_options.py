"""--channels-last and --compile: the denoiser changes format or is compiled in place,
the samples stay what they were, and a bad backend is one line."""

import numpy as np
import pytest

from bench.config import BenchConfig, RunConfig
from bench.errors import BenchError
from bench.models.network_options import prepare_network
from bench.sampler import SamplingSettings, generate_prompt
from methods.registry import expand


def _samples(model) -> np.ndarray:
    out = generate_prompt(
        model, expand("spell")[0], model.prompts()[3], 4, 2, 0, SamplingSettings(2.0, 4)
    )
    return out["latents"]


def test_channels_last_and_a_compiled_denoiser_give_the_same_samples(random_digits):
    plain = _samples(random_digits)
    prepare_network(random_digits, channels_last=True, backend=None)
    conv = next(p for p in random_digits.denoiser().parameters() if p.ndim == 4)
    assert conv.is_contiguous(memory_format=__import__("torch").channels_last)
    np.testing.assert_allclose(_samples(random_digits), plain, atol=1e-5)
    prepare_network(random_digits, channels_last=False, backend="eager")
    np.testing.assert_allclose(_samples(random_digits), plain, atol=1e-5)


def test_a_bad_backend_or_a_model_without_a_network_is_one_line(random_digits):
    with pytest.raises(BenchError, match="unknown --compile backend 'nope'") as err:
        prepare_network(random_digits, channels_last=False, backend="nope")
    assert "\n" not in str(err.value)

    class NoNetwork:
        name = "bare"

        def denoiser(self):
            return None

    with pytest.raises(BenchError, match="has no denoiser network"):
        prepare_network(NoNetwork(), channels_last=True, backend=None)
    prepare_network(NoNetwork(), channels_last=False, backend=None)  # nothing asked: fine


def test_the_options_leave_older_config_hashes_alone():
    base = BenchConfig().hash()
    assert BenchConfig(run=RunConfig(channels_last=False, compile=None)).hash() == base
    assert BenchConfig(run=RunConfig(channels_last=True)).hash() != base
    assert BenchConfig(run=RunConfig(compile="inductor")).hash() != base
