"""The sampling loop: reproducibility, equivalence with the plain diffusers loop."""

import numpy as np
import torch
from diffusers.utils.torch_utils import randn_tensor

from bench.sampler import SamplingSettings, generate_prompt
from bench.seeding import generators, sample_seed
from methods.registry import expand

SETTINGS = SamplingSettings(guidance=2.5, steps=10)


def _run(model, method_name, params=None, n=6, batch=3, settings=SETTINGS):
    method = expand(method_name, params)[0]
    return generate_prompt(model, method, model.prompts()[4], n, batch, 7, settings)


def test_none_is_bit_identical_across_runs(random_digits):
    a, b = _run(random_digits, "none"), _run(random_digits, "none")
    assert np.array_equal(a["latents"], b["latents"])
    assert np.array_equal(a["images"], b["images"])


def test_first_batch_of_spell_without_intra_batch_equals_none(random_digits):
    none = _run(random_digits, "none")
    spell = _run(random_digits, "spell", {"radius": 50.0, "intra_batch": False})
    assert np.array_equal(spell["latents"][:3], none["latents"][:3])
    # the second batch is repelled from the first batch's outputs
    assert not np.array_equal(spell["latents"][3:], none["latents"][3:])
    assert spell["trace_active"][3:].any() and not spell["trace_active"][:3].any()


def test_samples_do_not_depend_on_batch_size_without_method(random_digits):
    a = _run(random_digits, "none", batch=2)
    b = _run(random_digits, "none", batch=6)
    np.testing.assert_allclose(a["latents"], b["latents"], atol=1e-5)


def _reference_loop(model, prompt, seeds, w, steps):
    """The diffusers way: CFG on epsilon, DDPMScheduler.step with clip_sample, per-sample
    generators (as class-conditional pipelines such as DiTPipeline do)."""
    scheduler = model.make_scheduler("ddpm")
    scheduler.set_timesteps(steps)
    gens = generators(seeds)
    x = randn_tensor((len(seeds), *model.latent_shape), generator=gens)
    cond = model.condition([prompt] * len(seeds))
    uncond = model.null_condition(len(seeds))
    with torch.no_grad():
        for t in scheduler.timesteps:
            eps = model.predict(torch.cat([x, x]), t, torch.cat([uncond, cond]))
            eps_u, eps_c = eps.chunk(2)
            x = scheduler.step(eps_u + w * (eps_c - eps_u), t, x, generator=gens).prev_sample
    return x


def test_none_reproduces_the_diffusers_scheduler_loop(random_digits):
    prompt = random_digits.prompts()[4]
    seeds = [sample_seed(7, prompt.id, i) for i in range(3)]
    expected = _reference_loop(random_digits, prompt, seeds, SETTINGS.guidance, SETTINGS.steps)
    ours = _run(random_digits, "none", n=3, batch=3)
    np.testing.assert_allclose(ours["latents"], expected.numpy(), atol=1e-4)


def test_guidance_one_skips_the_unconditional_call(random_digits):
    out = _run(random_digits, "none", settings=SamplingSettings(guidance=1.0, steps=10))
    assert (out["nfe"] == 10).all()
    assert (_run(random_digits, "none")["nfe"] == 20).all()


def test_seeds_are_per_prompt_and_index():
    assert sample_seed(0, "3", 1) != sample_seed(0, "3", 2)
    assert sample_seed(0, "3", 1) != sample_seed(0, "4", 1)
    assert sample_seed(0, "3", 1) == sample_seed(0, "3", 1)
