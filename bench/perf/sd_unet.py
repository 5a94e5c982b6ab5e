"""SD1.5-sized networks with random weights, for timing without a download.

`SDSizeAdapter`: diffusers' UNet2DConditionModel with Stable Diffusion 1.5's
dimensions (860M parameters, 64x64x4 latents, 77x768 text embeddings) and SD1.5's
DDIM schedule; the VAE is left out (decoding is not part of a sampling step).
`sd15_size_pipeline`: a whole StableDiffusionPipeline at SD1.5's sizes (UNet, VAE,
CLIP ViT-L text encoder over a one-token-per-letter tokenizer) and its scheduler
config, so the harness can be timed against the pipeline on a real-sized model.
"""

from __future__ import annotations

from pathlib import Path

import torch
from diffusers import (
    AutoencoderKL,
    DDIMScheduler,
    PNDMScheduler,
    SchedulerMixin,
    StableDiffusionPipeline,
    UNet2DConditionModel,
)

from bench.models.base import ModelAdapter, Prompt

SD15_UNET = {
    "sample_size": 64,
    "in_channels": 4,
    "out_channels": 4,
    "block_out_channels": (320, 640, 1280, 1280),
    "layers_per_block": 2,
    "down_block_types": (
        "CrossAttnDownBlock2D",
        "CrossAttnDownBlock2D",
        "CrossAttnDownBlock2D",
        "DownBlock2D",
    ),
    "up_block_types": (
        "UpBlock2D",
        "CrossAttnUpBlock2D",
        "CrossAttnUpBlock2D",
        "CrossAttnUpBlock2D",
    ),
    "cross_attention_dim": 768,
    "attention_head_dim": 8,
}
SD15_SCHEDULE = {
    "num_train_timesteps": 1000,
    "beta_start": 0.00085,
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "clip_sample": False,
    "set_alpha_to_one": False,
    "steps_offset": 1,
}
TEXT_TOKENS, TEXT_DIM = 77, 768
SD15_VAE = {
    "in_channels": 3,
    "out_channels": 3,
    "down_block_types": ("DownEncoderBlock2D",) * 4,
    "up_block_types": ("UpDecoderBlock2D",) * 4,
    "block_out_channels": (128, 256, 512, 512),
    "layers_per_block": 2,
    "latent_channels": 4,
    "norm_num_groups": 32,
    "sample_size": 512,
    "scaling_factor": 0.18215,
}
# CLIP ViT-L/14's text tower (vocabulary aside: the tokenizer here has one token per letter)
CLIP_L_TEXT = {
    "hidden_size": TEXT_DIM,
    "intermediate_size": 3072,
    "num_hidden_layers": 12,
    "num_attention_heads": 12,
    "max_position_embeddings": TEXT_TOKENS,
    "hidden_act": "quick_gelu",
}
# SD1.5's scheduler_config.json (PNDM with PLMS steps only)
SD15_PNDM = {**SD15_SCHEDULE, "skip_prk_steps": True}


class SDSizeAdapter(ModelAdapter):
    """Random-weight SD1.5 UNet; prompts map to fixed random text embeddings."""

    name = "sd15-size-random"
    latent_shape = (4, 64, 64)
    prediction_type = "epsilon"
    default_guidance = 1.0
    default_steps = 2

    def __init__(self, device: str = "cpu", dtype: torch.dtype = torch.float32, seed: int = 0):
        torch.manual_seed(seed)
        self.device, self.dtype = torch.device(device), dtype
        self.unet = UNet2DConditionModel(**SD15_UNET).to(self.device, dtype).eval()
        self.unet.requires_grad_(False)
        gen = torch.Generator().manual_seed(seed)
        self._text = torch.randn(2, TEXT_TOKENS, TEXT_DIM, generator=gen).to(self.device, dtype)

    def prompts(self) -> list[Prompt]:
        return [Prompt(id="0", text="a random embedding")]

    def make_scheduler(self, kind: str = "native") -> SchedulerMixin:
        return DDIMScheduler(**SD15_SCHEDULE)

    def condition(self, prompts: list[Prompt]) -> torch.Tensor:
        return self._text[:1].expand(len(prompts), -1, -1)

    def null_condition(self, n: int) -> torch.Tensor:
        return self._text[1:].expand(n, -1, -1)

    def predict(self, x_t, timestep, cond):
        return self.unet(x_t, timestep, encoder_hidden_states=cond).sample

    def decode(self, x0: torch.Tensor) -> torch.Tensor:
        return x0


def sd15_size_pipeline(folder: Path, seed: int = 0) -> StableDiffusionPipeline:
    """A StableDiffusionPipeline at SD1.5's sizes with random weights (built from
    configs, nothing downloaded); `folder` receives its tokenizer files."""
    from transformers import CLIPTextModel

    from bench.perf.tiny_pipelines import clip_config, clip_tokenizer, ready

    torch.manual_seed(seed)
    return ready(
        StableDiffusionPipeline(
            vae=AutoencoderKL(**SD15_VAE),
            text_encoder=CLIPTextModel(clip_config(**CLIP_L_TEXT)),
            tokenizer=clip_tokenizer(folder),
            unet=UNet2DConditionModel(**SD15_UNET),
            scheduler=PNDMScheduler.from_config(SD15_PNDM),
            safety_checker=None,
            feature_extractor=None,
            requires_safety_checker=False,
        )
    )
