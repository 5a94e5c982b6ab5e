"""Particle guidance: the x0 correction equals the reference's epsilon update."""

import copy
import math

import torch
from diffusers import DDPMScheduler
from diffusers.utils.torch_utils import randn_tensor

from bench.models.digits import DigitsAdapter, digits_scheduler_config
from bench.sampler import SamplingSettings, sample_batch
from bench.seeding import generators, sample_seed
from methods.base import BatchContext, Step
from methods.pg import ParticleGuidance, ParticleGuidanceConfig, kernel_gradient

SEED, N, STEPS, W, COEFF = 5, 4, 5, 2.5, 0.5


class UnclippedDigits(DigitsAdapter):
    """A latent-model-like scheduler: no x0 clipping, as in the reference (SD latents);
    float64, so that the two forms can be compared to 1e-6 (they round differently)."""

    dtype = torch.float64

    def make_scheduler(self, kind: str = "native"):
        return DDPMScheduler(**{**digits_scheduler_config(), "clip_sample": False})


def _reference_grad(latents: torch.Tensor, sigma: float, coeff: float) -> torch.Tensor:
    """gcorso/particle-guidance's latent kernel term, rewritten from its formula."""
    vec = latents.view(len(latents), -1)
    n = vec.shape[0]
    diff = vec.unsqueeze(1) - vec.unsqueeze(0)
    diff = diff[~torch.eye(n, dtype=torch.bool)].view(n, n - 1, -1)
    distance = diff.norm(dim=-1, keepdim=True)
    h = distance.median(dim=1, keepdim=True).values ** 2 / math.log(n - 1)
    weights = torch.exp(-(distance**2) / h)
    active = coeff if sigma >= 1 else 0.0
    return (2 * weights * diff / h * sigma * active).sum(dim=1).view_as(latents)


def _reference_loop(model, prompt, seeds):
    """CFG on epsilon, eps <- eps - coeff * s_t * g while s_t >= 1, the same DDPM step."""
    scheduler = model.make_scheduler()
    scheduler.set_timesteps(STEPS)
    gens = generators(seeds)
    x = randn_tensor((len(seeds), *model.latent_shape), generator=gens, dtype=model.dtype)
    cond, uncond = model.condition([prompt] * len(seeds)), model.null_condition(len(seeds))
    abar = scheduler.alphas_cumprod
    with torch.no_grad():
        for t in scheduler.timesteps:
            eps_u, eps_c = model.predict(torch.cat([x, x]), t, torch.cat([uncond, cond])).chunk(2)
            s_t = math.sqrt((1 - abar[t].item()) / abar[t].item())
            eps = eps_u + W * (eps_c - eps_u) - _reference_grad(x, s_t, COEFF)
            x = scheduler.step(eps, t, x, generator=gens).prev_sample
    return x


def _pg_batch(model, prompt, seeds, coeff):
    ctx = BatchContext(prompt.id, 0, list(range(len(seeds))), seeds, model.device)
    method = ParticleGuidance(ParticleGuidanceConfig(strength=coeff))
    return sample_batch(model, method, prompt, ctx, SamplingSettings(W, STEPS))


def test_x0_correction_equals_the_reference_epsilon_update(random_digits):
    model = UnclippedDigits(net=copy.deepcopy(random_digits.net).double())
    prompt = model.prompts()[2]
    seeds = [sample_seed(SEED, prompt.id, i) for i in range(N)]
    expected = _reference_loop(model, prompt, seeds)
    ours = _pg_batch(model, prompt, seeds, COEFF)
    torch.testing.assert_close(ours.x0, expected, atol=1e-6, rtol=0)
    plain = _pg_batch(model, prompt, seeds, 0.0)
    assert (plain.x0 - expected).abs().max() > 1e-2  # the correction mattered
    # active exactly while s_t >= 1
    assert ours.trace_active.any(axis=0).tolist() == [True, True, False, False, False]


def _step(alpha: float, sigma: float) -> Step:
    return Step(index=0, num_steps=10, timestep=900, t=0.9, alpha=alpha, sigma=sigma)


def _ctx(n: int) -> BatchContext:
    return BatchContext("0", 0, list(range(n)), list(range(n)), torch.device("cpu"))


def test_delta_is_coeff_times_s_squared_times_g():
    x = torch.randn(5, 1, 2, 2)
    method = ParticleGuidance(ParticleGuidanceConfig(strength=3.0))
    delta = method.correct(_step(0.5, 1.5), x, torch.zeros_like(x), _ctx(5))
    torch.testing.assert_close(delta, 3.0 * 9.0 * kernel_gradient(x.flatten(1)).view_as(x))


def test_below_noise_level_one_there_is_no_correction():
    x = torch.randn(3, 4)
    method = ParticleGuidance(ParticleGuidanceConfig(strength=3.0))
    assert method.correct(_step(0.8, 0.6), x, x, _ctx(3)) is None
    assert method.correct(_step(0.7, 0.7), x, x, _ctx(3)) is not None  # s_t = 1: active


def test_one_particle_has_no_correction():
    x = torch.randn(1, 4)
    method = ParticleGuidance(ParticleGuidanceConfig(strength=3.0))
    assert method.correct(_step(0.5, 2.0), x, x, _ctx(1)) is None


def test_two_particles_use_the_pair_distance_over_log_two():
    x = torch.tensor([[0.0, 0.0], [3.0, 4.0]])
    # h = 5^2 / log 2, k = exp(-log 2) = 1/2, g_0 = 2 * (1/2) * (x_0 - x_1) / h
    g0 = (x[0] - x[1]) * math.log(2) / 25.0
    torch.testing.assert_close(kernel_gradient(x), torch.stack([g0, -g0]))


def test_identical_particles_do_not_push():
    x = torch.ones(4, 3)
    assert torch.equal(kernel_gradient(x), torch.zeros_like(x))


def test_id():
    assert ParticleGuidance(ParticleGuidanceConfig(strength=64)).id == "pg-s64"
