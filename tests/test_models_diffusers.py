"""ldm, sd15, sd3, dit: the sampler with `none` reproduces each diffusers pipeline on
tiny random components (same seeds, scheduler, steps and guidance), and every
registered method runs through each adapter."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import fits
from diffusers import DDIMScheduler, DPMSolverMultistepScheduler, EulerDiscreteScheduler

from bench.errors import BenchError
from bench.generate import check_methods_fit
from bench.models.base import ModelAdapter, Prompt
from bench.models.dit import DiTAdapter
from bench.models.ldm import LDMAdapter
from bench.models.registry import load_model
from bench.models.sd3 import SD3Adapter, pack, unpack
from bench.models.sd15 import SD15Adapter
from bench.perf.tiny_pipelines import SIZE, tiny_dit, tiny_ldm, tiny_sd3, tiny_sd15
from bench.sampler import BatchResult, SamplingSettings, generate_prompt, sample_batch
from methods.base import BatchContext, DiversityMethod, Step
from methods.registry import available, expand

SEEDS = [11, 22, 33]
GUIDANCE = 3.0
STEPS = 4


@dataclass
class Case:
    build: Callable[[Path], object]
    adapter: type[ModelAdapter]
    vae: str = "vae"
    pipe_kwargs: Callable[[Prompt], dict] = lambda p: {"prompt": [p.text] * len(SEEDS)}


CASES = {
    "ldm": Case(
        tiny_ldm,
        LDMAdapter,
        vae="vqvae",
        pipe_kwargs=lambda p: {
            "prompt": [p.text] * len(SEEDS),
            "height": 8 * SIZE,
            "width": 8 * SIZE,
        },
    ),
    "sd15": Case(tiny_sd15, SD15Adapter),
    "sd3": Case(tiny_sd3, SD3Adapter),
    "sd3-t5": Case(lambda tmp: tiny_sd3(tmp, t5=True), SD3Adapter),
    "dit": Case(
        lambda tmp: tiny_dit(),
        DiTAdapter,
        pipe_kwargs=lambda p: {"class_labels": [p.label] * len(SEEDS)},
    ),
}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> dict:
    """name -> (pipeline, adapter), built once for the module."""
    built = {}
    for name, case in CASES.items():
        pipe = case.build(tmp_path_factory.mktemp(name))
        built[name] = (pipe, case.adapter(pipe))
    return built


def generators(seeds=SEEDS) -> list[torch.Generator]:
    return [torch.Generator().manual_seed(s) for s in seeds]


def run_pipeline(pipe, vae_name: str, **kwargs) -> tuple[torch.Tensor, torch.Tensor]:
    """The pipeline's own call; returns (what it handed the VAE decoder, images)."""
    vae, seen = getattr(pipe, vae_name), []
    decode = vae.decode

    def record(latents, *args, **kw):
        seen.append(latents.clone())
        return decode(latents, *args, **kw)

    vae.decode = record
    try:
        images = pipe(**kwargs, output_type="pt").images
    finally:
        del vae.decode
    return seen[0], images


def run_ours(model, prompt, method_name="none", settings=None) -> BatchResult:
    ctx = BatchContext(prompt.id, 0, list(range(len(SEEDS))), SEEDS, model.device)
    settings = settings or SamplingSettings(GUIDANCE, STEPS)
    return sample_batch(model, expand(method_name)[0], prompt, ctx, settings)


def final_latents(model, decoder_input: torch.Tensor) -> torch.Tensor:
    """Undo the pipeline's VAE scaling: the latents its loop ended with."""
    config = model.vae.config
    return (decoder_input - (config.get("shift_factor") or 0.0)) * config.scaling_factor


def assert_close_to_scale(actual: torch.Tensor, expected: torch.Tensor, rel: float = 5e-6):
    """Within `rel` of the largest |expected|: float32 roundoff grows with the latents'
    size, which DiT's linear betas make large on a random network (80 here)."""
    assert expected.abs().max() > 0.1  # a real comparison, not of zeros
    atol = rel * float(expected.abs().max())
    torch.testing.assert_close(actual, expected, atol=atol, rtol=0)


# w = 1 skips the unconditional call in the loop and in every pipeline; for w < 1 the
# sd15, sd3 and dit pipelines drop guidance while the loop (and ldm's) extrapolates.
EQUIVALENCE = [
    *((name, GUIDANCE) for name in CASES),
    *((name, 1.0) for name in ("ldm", "sd15", "sd3", "dit")),
    ("ldm", 0.5),
]


@pytest.mark.parametrize(("name", "w"), EQUIVALENCE, ids=[f"{n}-w{w:g}" for n, w in EQUIVALENCE])
def test_none_reproduces_the_pipeline(tiny, name, w):
    pipe, model = tiny[name]
    prompt = model.prompts()[3]
    latents, images = run_pipeline(
        pipe,
        CASES[name].vae,
        **CASES[name].pipe_kwargs(prompt),
        guidance_scale=w,
        num_inference_steps=STEPS,
        generator=generators(),
    )
    ours = run_ours(model, prompt, settings=SamplingSettings(w, STEPS))
    assert_close_to_scale(ours.x0, final_latents(model, latents))
    torch.testing.assert_close(ours.images, images, atol=1e-4, rtol=0)


@pytest.mark.parametrize(
    "kind,cls",
    [
        ("ddim", DDIMScheduler),
        ("euler", EulerDiscreteScheduler),
        ("dpm", DPMSolverMultistepScheduler),
    ],
)
def test_other_schedulers_reproduce_the_pipeline(tiny, kind, cls):
    """DDIM, DPM-Solver (VP) and k-diffusion Euler (VE: x = x0 + sigma eps) on sd15."""
    pipe, model = tiny["sd15"]
    native = pipe.scheduler
    pipe.scheduler = cls.from_config(native.config)
    try:
        prompt = model.prompts()[1]
        latents, _ = run_pipeline(
            pipe,
            "vae",
            prompt=[prompt.text] * len(SEEDS),
            guidance_scale=GUIDANCE,
            num_inference_steps=STEPS,
            generator=generators(),
        )
    finally:
        pipe.scheduler = native
    ours = run_ours(model, prompt, settings=SamplingSettings(GUIDANCE, STEPS, kind))
    torch.testing.assert_close(ours.x0, final_latents(model, latents), atol=1e-4, rtol=0)


@pytest.mark.parametrize("name", ["ldm", "sd3", "dit"])
@pytest.mark.parametrize("method", sorted(available()))
def test_every_method_runs_on_the_tiny_model(tiny, name, method):
    _, model = tiny[name]
    method = expand(method)[0]
    if not fits(method, model):
        with pytest.raises(BenchError, match="cannot run on model"):
            check_methods_fit(model, [method])
        return
    out = generate_prompt(model, method, model.prompts()[0], 4, 2, 0, SamplingSettings(GUIDANCE, 2))
    assert out["latents"].shape == (4, *model.latent_shape)
    assert np.isfinite(out["latents"]).all() and (out["nfe"] > 0).all()


def test_spell_repels_on_text_flow_and_class_models(tiny):
    for name in ("sd15", "sd3", "dit"):
        _, model = tiny[name]
        prompt = model.prompts()[0]
        none = run_ours(model, prompt)
        ctx = BatchContext(prompt.id, 0, [0, 1, 2], SEEDS, model.device)
        spell = expand("spell", {"radius": 1e4})[0]
        out = sample_batch(model, spell, prompt, ctx, SamplingSettings(GUIDANCE, STEPS))
        assert out.trace_active[:, 0].all(), name
        assert not torch.allclose(out.x0, none.x0), name


class NoisyCondition(DiversityMethod):
    """CADS-like: noise added to the condition with plain tensor ops."""

    name = "noisy-condition"

    def condition(self, step: Step, cond: torch.Tensor, ctx: BatchContext) -> torch.Tensor:
        gens = ctx.side_generators("test")
        noise = torch.stack([torch.randn(cond.shape[1:], generator=g) for g in gens])
        return cond * 0.9 + noise.to(cond) * cond.std() * 0.5 + cond.mean() * 0.1


@pytest.mark.parametrize("name", ["ldm", "sd15", "sd3", "dit"])
def test_noising_the_condition_changes_the_samples(tiny, name):
    _, model = tiny[name]
    prompt = model.prompts()[0]
    ctx = BatchContext(prompt.id, 0, [0, 1, 2], SEEDS, model.device)
    noisy = sample_batch(model, NoisyCondition(), prompt, ctx, SamplingSettings(GUIDANCE, 2))
    assert not torch.allclose(
        noisy.x0, run_ours(model, prompt, settings=SamplingSettings(GUIDANCE, 2)).x0
    )


def test_sd3_pooled_embeddings_travel_in_the_condition(tiny):
    _, model = tiny["sd3"]
    cond = model.condition(model.prompts()[:2])
    embeds, pooled = unpack(cond, model.pooled_dim)
    _, _, ref_pooled, _ = model.pipe.encode_prompt(
        [p.text for p in model.prompts()[:2]], None, None, do_classifier_free_guidance=False
    )
    torch.testing.assert_close(pooled, ref_pooled)
    torch.testing.assert_close(pack(embeds, pooled), cond)
    wide = torch.randn(2, 3, 5)
    e, p = unpack(pack(wide, torch.arange(12.0).expand(2, 12)), 12)
    assert torch.equal(e, wide) and torch.equal(p[0], torch.arange(12.0))


def test_dit_prompts_are_imagenet_classes_with_names(tiny):
    _, model = tiny["dit"]
    prompts = model.prompts()
    assert len(prompts) == 1000 and prompts[7] == Prompt("7", "item 7, thing 7", 7)
    assert model.null_condition(2).shape == model.condition(prompts[:2]).shape


def test_unknown_scheduler_is_a_bench_error(tiny):
    with pytest.raises(BenchError, match="unknown scheduler"):
        tiny["sd3"][1].make_scheduler("ddim")


@pytest.mark.parametrize(
    "name,model_id,env",
    [
        ("ldm", "CompVis/ldm-text2im-large-256", "SPELLBENCH_LDM_PATH"),
        ("sd15", "stable-diffusion-v1-5/stable-diffusion-v1-5", "SPELLBENCH_SD15_PATH"),
        ("sd3", "stabilityai/stable-diffusion-3-medium-diffusers", "SPELLBENCH_SD3_PATH"),
        ("dit", "facebook/DiT-XL-2-256", "SPELLBENCH_DIT_PATH"),
    ],
)
def test_missing_weights_are_a_one_line_error(tmp_path, name, model_id, env):
    for path in (tmp_path, tmp_path / "absent"):
        with pytest.raises(BenchError) as err:
            load_model(name, model_path=str(path), dtype="float32", device="cpu")
        message = str(err.value)
        assert "\n" not in message
        assert model_id in message and env in message and "--model-path" in message
        assert f"hf download {model_id}" in message


def test_decoding_in_chunks_gives_the_whole_batchs_images(tiny, monkeypatch):
    """The VAE decodes `decode_chunk` samples at a time; 5 latents in chunks of 2 equal
    one decode of all 5."""
    _, model = tiny["sd15"]
    latents = torch.randn(5, *model.latent_shape, generator=torch.Generator().manual_seed(0))
    whole = model.decode(latents)
    monkeypatch.setattr(type(model), "decode_chunk", 2)
    calls = []
    original = model.vae.decode
    monkeypatch.setattr(
        model.vae, "decode", lambda z, **kw: calls.append(len(z)) or original(z, **kw)
    )
    torch.testing.assert_close(model.decode(latents), whole, atol=1e-5, rtol=0)
    assert calls == [2, 2, 1]
