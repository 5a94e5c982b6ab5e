"""CADS: the annealing schedule, fresh per-step noise on the clean embedding, rescaling."""

import pytest
import torch

from bench.errors import BenchError
from bench.sampler import SamplingSettings, generate_prompt
from methods.base import BatchContext, Step
from methods.cads import CADS, CADSConfig, gamma
from methods.registry import expand

NUM_STEPS = 10


def _step(index: int) -> Step:
    return Step(index, NUM_STEPS, timestep=0, t=0.0, alpha=1.0, sigma=1.0)


def _ctx(n: int) -> BatchContext:
    return BatchContext("0", 0, list(range(n)), [10 + i for i in range(n)], torch.device("cpu"))


def _cads(**kw) -> CADS:
    return CADS(CADSConfig(**kw))


def test_gamma_at_its_breakpoints():
    assert gamma(0.0, 0.6, 0.9) == 1.0
    assert gamma(0.6, 0.6, 0.9) == 1.0
    assert gamma(0.75, 0.6, 0.9) == pytest.approx(0.5)
    assert gamma(0.9, 0.6, 0.9) == 0.0
    assert gamma(1.0, 0.6, 0.9) == 0.0
    # tau1 == tau2: a step, never a division by zero
    assert gamma(0.7, 0.7, 0.7) == 1.0 and gamma(0.71, 0.7, 0.7) == 0.0


def test_tau1_after_tau2_is_rejected():
    with pytest.raises(BenchError, match="tau1 must be <= tau2"):
        expand("cads", {"tau1": 0.9, "tau2": 0.6})


def test_condition_at_a_step_does_not_depend_on_earlier_steps():
    y = torch.randn(3, 16)
    method = _cads(tau1=0.2, tau2=0.9, noise_scale=0.5, psi=0.0)
    alone = method.condition(_step(6), y, _ctx(3))
    for k in range(6):
        method.condition(_step(k), y, _ctx(3))
    assert torch.equal(method.condition(_step(6), y, _ctx(3)), alone)
    # y_hat = sqrt(g) y + s sqrt(1 - g) n with t = 0.4: g = 5/7
    g = gamma(0.4, 0.2, 0.9)
    noise = (alone - g**0.5 * y) / (0.5 * (1 - g) ** 0.5)
    assert 0.5 < noise.std().item() < 1.5
    assert not torch.allclose(noise[0], noise[1])  # fresh per sample
    later = method.condition(_step(7), y, _ctx(3))
    g7 = gamma(0.3, 0.2, 0.9)
    noise7 = (later - g7**0.5 * y) / (0.5 * (1 - g7) ** 0.5)
    assert not torch.allclose(noise7, noise)  # fresh per step, not the same n rescaled


def test_sampler_sees_the_same_condition_as_a_standalone_call(random_digits, monkeypatch):
    method = _cads(tau1=0.3, tau2=0.8, noise_scale=0.5)
    seen: list[torch.Tensor] = []
    real = CADS.condition

    def spy(self, step, cond, ctx):
        out = real(self, step, cond, ctx)
        seen.append((step, cond.clone(), out, ctx))
        return out

    monkeypatch.setattr(CADS, "condition", spy)
    generate_prompt(random_digits, method, random_digits.prompts()[0], 2, 2, 1,
                    SamplingSettings(2.0, 6))
    clean = seen[0][1]
    for step, cond, out, ctx in seen:
        assert torch.equal(cond, clean)  # never the previous step's noisy embedding
        assert torch.equal(real(method, step, clean, ctx), out)


def test_rescale_restores_each_samples_statistics():
    y = torch.randn(4, 32) * torch.tensor([[1.0], [2.0], [0.5], [3.0]]) + 1.0
    out = _cads(tau1=0.0, tau2=0.5, noise_scale=2.0, psi=1.0).condition(_step(0), y, _ctx(4))
    torch.testing.assert_close(out.mean(1), y.mean(1))
    torch.testing.assert_close(out.std(1), y.std(1))
    assert not torch.allclose(out, y)


def test_psi_mixes_rescaled_and_plain():
    y = torch.randn(2, 8)
    plain = _cads(tau1=0.0, tau2=0.5, psi=0.0).condition(_step(0), y, _ctx(2))
    full = _cads(tau1=0.0, tau2=0.5, psi=1.0).condition(_step(0), y, _ctx(2))
    half = _cads(tau1=0.0, tau2=0.5, psi=0.5).condition(_step(0), y, _ctx(2))
    torch.testing.assert_close(half, 0.5 * plain + 0.5 * full)


def test_unconditional_embedding_only_noised_on_request():
    u = torch.randn(2, 8)
    assert torch.equal(_cads(tau1=0.0).uncondition(_step(0), u, _ctx(2)), u)
    noised = _cads(tau1=0.0, noise_uncond=True).uncondition(_step(0), u, _ctx(2))
    assert not torch.allclose(noised, u)


def test_ids():
    assert _cads().id == "cads-t0.6-0.9-s0.25"
    assert _cads(psi=0.5, noise_uncond=True).id == "cads-t0.6-0.9-s0.25-psi0.5-uncond"
