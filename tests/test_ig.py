"""Interval guidance: w inside the interval, 1 outside, and fewer network evaluations."""

import pytest
import torch

import bench.sampler
from bench.errors import BenchError
from bench.sampler import SamplingSettings, generate_prompt
from methods.base import BatchContext, Step
from methods.registry import expand

STEPS, W = 10, 2.5


def _spy_weights(monkeypatch) -> list[float]:
    """Record the CFG weight the sampler uses on each step."""
    seen: list[float] = []
    real = bench.sampler.guided_x0

    def spy(model, method, step, at, cond, guide, w, ctx):
        seen.append(w)
        return real(model, method, step, at, cond, guide, w, ctx)

    monkeypatch.setattr(bench.sampler, "guided_x0", spy)
    return seen


def _step_times(model) -> list[float]:
    scheduler = model.make_scheduler()
    scheduler.set_timesteps(STEPS)
    return [int(t) / scheduler.config.num_train_timesteps for t in scheduler.timesteps]


def test_weight_follows_the_interval_and_nfe_drops(random_digits, monkeypatch):
    seen = _spy_weights(monkeypatch)
    method = expand("ig", {"interval": [0.1, 0.6]})[0]
    out = generate_prompt(random_digits, method, random_digits.prompts()[1], 2, 2, 3,
                          SamplingSettings(W, STEPS))
    times = _step_times(random_digits)
    expected = [W if 0.1 <= t <= 0.6 else 1.0 for t in times]
    assert seen == expected
    outside = expected.count(1.0)
    assert outside == 4  # t = 0.9, 0.8, 0.7 and 0: the interval is closed at 0.1 and 0.6
    assert (out["nfe"] == 2 * STEPS - outside).all()


def test_own_weight_inside_the_interval(random_digits, monkeypatch):
    seen = _spy_weights(monkeypatch)
    method = expand("ig", {"interval": [0.5, 1.0], "weight": 4.0})[0]
    generate_prompt(random_digits, method, random_digits.prompts()[1], 1, 1, 3,
                    SamplingSettings(W, STEPS))
    assert seen == [4.0 if t >= 0.5 else 1.0 for t in _step_times(random_digits)]


def _at_sigma(s: float) -> Step:
    return Step(index=0, num_steps=1, timestep=0, t=0.5, alpha=1.0, sigma=s)


def test_sigma_interval_is_half_open():
    method = expand("ig", {"space": "sigma", "interval": [0.19, 1.61]})[0]
    ctx = BatchContext("0", 0, [0], [0], torch.device("cpu"))
    weights = [method.guidance(_at_sigma(s), W, ctx) for s in (0.19, 0.2, 1.61, 1.62)]
    assert weights == [1.0, W, W, 1.0]


def test_ids_and_validation():
    assert expand("ig", {"interval": [0.1, 0.9]})[0].id == "ig-t0.1-0.9"
    assert expand("ig", {"space": "sigma", "interval": [0.19, 1.61]})[0].id == "ig-sigma0.19-1.61"
    assert expand("ig", {"weight": 2.0})[0].id == "ig-t0.1-0.9-w2"
    ids = [m.id for m in expand("ig", {"interval": [[0.1, 0.9], [0.1, 0.6]]})]
    assert ids == ["ig-t0.1-0.9", "ig-t0.1-0.6"]
    with pytest.raises(BenchError, match="lo <= hi"):
        expand("ig", {"interval": [0.9, 0.1]})
