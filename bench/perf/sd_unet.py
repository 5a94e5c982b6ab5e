"""An SD1.5-sized model with random weights, for timing without a download.

diffusers' UNet2DConditionModel with Stable Diffusion 1.5's dimensions (860M
parameters, 64x64x4 latents, 77x768 text embeddings) and SD1.5's DDIM schedule.
The VAE is left out: decoding is not part of a sampling step.
"""

from __future__ import annotations

import torch
from diffusers import DDIMScheduler, SchedulerMixin, UNet2DConditionModel

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
