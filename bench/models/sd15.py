"""`sd15`: Stable Diffusion 1.5 (StableDiffusionPipeline components).

CLIP ViT-L/14 text embeddings (77 tokens) condition an epsilon UNet on 64x64x4
latents; the native scheduler is the checkpoint's own (PNDM with PLMS steps),
"ddim", "dpm", "euler" and "ddpm" are built from the same config.
"""

from __future__ import annotations

import torch
from diffusers import StableDiffusionPipeline

from bench.models.pipelines import UNetTextPipelineAdapter, Weights, load_pipeline

WEIGHTS = Weights("sd15", "stable-diffusion-v1-5/stable-diffusion-v1-5", "SPELLBENCH_SD15_PATH")


class SD15Adapter(UNetTextPipelineAdapter):
    name = "sd15"
    default_guidance = 7.5
    default_steps = 50

    def _embed(self, texts: list[str]) -> torch.Tensor:
        return self.pipe.encode_prompt(texts, self.device, 1, False)[0]

    def predict(self, x_t, timestep, cond):
        return self.pipe.unet(x_t, timestep, encoder_hidden_states=cond).sample


def load_sd15(model_path=None, dtype="float32", device="cpu", **_) -> SD15Adapter:
    pipe = load_pipeline(
        StableDiffusionPipeline,
        WEIGHTS,
        model_path,
        dtype,
        device,
        safety_checker=None,
        requires_safety_checker=False,
    )
    return SD15Adapter(pipe)
