"""SPELL's extra work per step against K static shields (pytest-benchmark; run
explicitly: `pytest benchmarks/`). Compare with `test_plain_digits_step`; `bench perf`
reports the ratios, including an SD1.5-sized UNet step."""

import pytest
import torch

from bench.perf.harness import digits_model
from bench.perf.overhead import (
    _batch,
    shields_with_hits,
    spell_with,
    typical_radius,
    uniform_latents,
)
from bench.shields import make_shield_set
from methods.base import BatchContext, Step
from methods.none import NoMethod

SHAPES = {"digits": ((1, 8, 8), True), "sd15-latent": ((4, 64, 64), False)}
STEP = Step(index=10, num_steps=50, timestep=500, t=0.5, alpha=0.7, sigma=0.7)


@pytest.mark.parametrize("k", [0, 64, 1024, 16384])
@pytest.mark.parametrize("space", list(SHAPES))
def test_spell_correction(benchmark, space, k):
    shape, pixel = SHAPES[space]
    x0 = uniform_latents(8, shape, pixel, seed=0)
    radius = typical_radius(x0)
    static = make_shield_set(shields_with_hits(k, x0, radius, pixel)) if k else None
    method = spell_with(static, radius)
    method.begin_prompt("0", x0.device)
    ctx = BatchContext("0", 0, list(range(8)), list(range(8)), x0.device)
    x_t = 0.7 * x0 + 0.7 * torch.randn_like(x0)
    benchmark(method.correct, STEP, x_t, x0, ctx)


def test_plain_digits_step(benchmark):
    model, _ = digits_model()
    method = NoMethod()
    benchmark.pedantic(_batch, args=(model, method, 8, 1), rounds=20, warmup_rounds=2)
