"""The loop's numbers where a real model reaches them: DDIM with clipping, conditioning
without autograd and once per prompt, the scheduler's own noise levels, and the user's
step count for multi-evaluation schedulers (PNDM, Heun)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from diffusers import DPMSolverMultistepScheduler, HeunDiscreteScheduler, PNDMScheduler
from diffusers.utils.torch_utils import randn_tensor

from bench.models.sd3 import SD3Adapter
from bench.models.sd15 import SD15Adapter
from bench.perf.tiny_pipelines import tiny_sd3, tiny_sd15
from bench.sampler import SamplingSettings, generate_prompt, sample_batch
from bench.schedules import call_stage, noise_level
from bench.seeding import generators, sample_seed
from methods.base import BatchContext, DiversityMethod, Step
from methods.cads import CADS, CADSConfig, gamma
from methods.registry import expand


def _ddim_pipeline_loop(model, prompt, seeds, w, steps):
    """DDIMPipeline's way: CFG on epsilon, DDIMScheduler.step(eps, t, x) with the
    scheduler's clip_sample and use_clipped_model_output left unset, eta 0."""
    scheduler = model.make_scheduler("ddim")
    scheduler.set_timesteps(steps)
    x = randn_tensor((len(seeds), *model.latent_shape), generator=generators(seeds))
    cond = model.condition([prompt] * len(seeds))
    uncond = model.null_condition(len(seeds))
    with torch.no_grad():
        for t in scheduler.timesteps:
            eps_u, eps_c = model.predict(torch.cat([x, x]), t, torch.cat([uncond, cond])).chunk(2)
            x = scheduler.step(eps_u + w * (eps_c - eps_u), t, x).prev_sample
    return x


@pytest.mark.parametrize("w", [1.0, 3.0])
def test_ddim_with_clipping_reproduces_the_ddim_pipeline(random_digits, w):
    assert random_digits.make_scheduler("ddim").config.clip_sample
    prompt = random_digits.prompts()[2]
    seeds = [sample_seed(3, prompt.id, i) for i in range(4)]
    expected = _ddim_pipeline_loop(random_digits, prompt, seeds, w, 20)
    out = generate_prompt(random_digits, expand("none")[0], prompt, 4, 4, 3,
                          SamplingSettings(w, 20, "ddim"))
    np.testing.assert_allclose(out["latents"], expected.numpy(), atol=1e-4)


class ConditionRecorder(DiversityMethod):
    name = "recorder"

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[torch.Tensor] = []

    def condition(self, step, cond, ctx):
        self.seen.append(cond)
        return cond


def test_conditioning_is_computed_once_per_prompt_without_autograd(tmp_path, monkeypatch):
    model = SD15Adapter(tiny_sd15(tmp_path))
    assert not any(p.requires_grad for p in model.pipe.text_encoder.parameters())
    calls = []
    real = model.condition
    monkeypatch.setattr(model, "condition", lambda prompts: calls.append(1) or real(prompts))
    method = ConditionRecorder()
    generate_prompt(model, method, model.prompts()[0], 6, 2, 0, SamplingSettings(2.0, 2))
    assert len(calls) == 1  # three batches, one prompt
    assert all(c.grad_fn is None and not c.requires_grad for c in method.seen)
    with torch.no_grad():
        expected = model.pipe.encode_prompt(model.prompts()[0].text, "cpu", 1, False)[0]
    assert torch.equal(method.seen[0][0], expected[0])


def test_dpm_solver_karras_noise_levels_are_the_schedulers_own():
    scheduler = DPMSolverMultistepScheduler(
        beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012, use_karras_sigmas=True
    )
    scheduler.set_timesteps(20)
    ours = np.array([noise_level(scheduler, i, t) for i, t in enumerate(scheduler.timesteps)])
    own = [scheduler._sigma_to_alpha_sigma_t(s) for s in scheduler.sigmas[:-1]]
    np.testing.assert_allclose(ours, np.array([[a.item(), s.item()] for a, s in own]), rtol=1e-6)


class StepRecorder(DiversityMethod):
    name = "steps"

    def __init__(self) -> None:
        super().__init__()
        self.conditioned: list[tuple[int, int]] = []
        self.corrected: list[tuple[int, int, int]] = []

    def condition(self, step: Step, cond, ctx):
        self.conditioned.append((step.index, step.num_steps))
        return cond

    def correct(self, step: Step, x_t, x0_hat, ctx):
        self.corrected.append((step.index, step.num_steps, step.stage))
        return None


def test_pndm_steps_follow_the_users_step_count(tmp_path):
    model = SD15Adapter(tiny_sd15(tmp_path))
    assert isinstance(model.make_scheduler(), PNDMScheduler)
    method = StepRecorder()
    prompt = model.prompts()[0]
    ctx = BatchContext(prompt.id, 0, [0, 1], [1, 2], model.device)
    out = sample_batch(model, method, prompt, ctx, SamplingSettings(2.0, 5))
    assert (out.nfe == 12).all()  # PLMS: 6 network evaluations for 5 steps
    assert method.conditioned == [(k, 5) for k in range(5)]
    assert [(i, s) for i, _, s in method.corrected] == [(0, 0), (0, 1), (1, 0), (2, 0),
                                                        (3, 0), (4, 0)]


def test_call_stages_of_heun_and_pndm_with_runge_kutta():
    heun = HeunDiscreteScheduler()
    heun.set_timesteps(4)
    stages = []
    x = torch.zeros(1, 2)
    for t in heun.timesteps:
        stages.append(call_stage(heun))
        heun.step(torch.zeros(1, 2), t, x)
    assert stages == [0, 1, 0, 1, 0, 1, 0]
    prk = PNDMScheduler(skip_prk_steps=False)
    prk.set_timesteps(5)
    stages = []
    for t in prk.timesteps:
        stages.append(call_stage(prk))
        prk.step(torch.zeros(1, 2), t, x)
    assert sum(s == 0 for s in stages) == 5 and stages[:4] == [0, 1, 2, 3]


def test_cads_gamma_is_called_with_tau1_then_tau2():
    """Noise off and no rescale: the condition inside (tau1, tau2) is exactly sqrt(gamma) y."""
    y = torch.randn(2, 6)
    method = CADS(CADSConfig(tau1=0.2, tau2=0.9, noise_scale=0.0, psi=0.0))
    step = Step(4, 10, timestep=0, t=0.6, alpha=1.0, sigma=1.0)  # progress t = 0.6
    out = method.condition(step, y, BatchContext("0", 0, [0, 1], [1, 2], torch.device("cpu")))
    assert gamma(0.6, 0.2, 0.9) == pytest.approx(3 / 7)
    torch.testing.assert_close(out, (3 / 7) ** 0.5 * y)


def test_cads_noises_sd3_tokens_and_pooled_separately_and_not_the_padding(tmp_path):
    model = SD3Adapter(tiny_sd3(tmp_path))
    cond = model.condition(model.prompts()[:2])
    parts = model.condition_parts(cond)
    assert [p.name for p in parts] == ["tokens", "pooled"]
    ctx = BatchContext("0", 0, [0, 1], [1, 2], model.device, condition_parts=parts)
    method = CADS(CADSConfig(tau1=0.0, tau2=0.5, noise_scale=1.0, psi=1.0))
    out = method.condition(Step(0, 10, 0, 1.0, 0.0, 1.0), cond, ctx).flatten(1)
    flat = cond.flatten(1)
    for part in parts:
        window = slice(part.start, part.stop)
        # rescaled to the part's own per-sample statistics
        torch.testing.assert_close(out[:, window].mean(1), flat[:, window].mean(1))
        torch.testing.assert_close(out[:, window].std(1), flat[:, window].std(1))
        assert not torch.allclose(out[:, window], flat[:, window])
    padding = slice(parts[-1].stop, None)
    assert torch.equal(out[:, padding], flat[:, padding])
    assert parts[-1].stop < flat.shape[1] and torch.equal(flat[:, padding], torch.zeros_like(
        flat[:, padding]))
