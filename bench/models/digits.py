"""The embedded default model: a small class-conditional UNet on 8x8 digits.

The class embedding lives outside the diffusers UNet (`class_embed_type="identity"`)
so that the conditioning the sampler hands to methods is a plain tensor: CADS
noises these class vectors like it noises text embeddings. Row 10 of the
embedding table is the null class learned with label dropout (CFG).
"""

from __future__ import annotations

from pathlib import Path

import torch
from diffusers import DDIMScheduler, DDPMScheduler, SchedulerMixin, UNet2DModel
from safetensors.torch import load_file

from bench.data.digits import IMAGE_SIZE, NUM_CLASSES
from bench.errors import BenchError
from bench.models.base import ModelAdapter, Prompt

WEIGHTS = Path(__file__).resolve().parent.parent / "weights" / "digits_unet.safetensors"
NULL_CLASS = NUM_CLASSES
EMBED_DIM = 128
# Sampled eval (DDPM, 50 steps): 100% class accuracy at w = 2 with w = 1's coverage of
# held-out digits; coverage falls from w = 3 on.
DEFAULT_GUIDANCE = 2.0


class DigitsDenoiser(torch.nn.Module):
    """UNet2DModel plus the class-embedding table (10 digits + null)."""

    def __init__(self) -> None:
        super().__init__()
        self.unet = UNet2DModel(
            sample_size=IMAGE_SIZE,
            in_channels=1,
            out_channels=1,
            block_out_channels=(32, 48, 64),
            layers_per_block=1,
            down_block_types=("DownBlock2D", "DownBlock2D", "DownBlock2D"),
            up_block_types=("UpBlock2D", "UpBlock2D", "UpBlock2D"),
            class_embed_type="identity",
            norm_num_groups=8,
        )
        self.label_embedding = torch.nn.Embedding(NUM_CLASSES + 1, EMBED_DIM)

    def forward(self, x_t: torch.Tensor, timestep: torch.Tensor, class_vectors: torch.Tensor):
        return self.unet(x_t, timestep, class_labels=class_vectors).sample


def digits_scheduler_config() -> dict:
    return {
        "num_train_timesteps": 1000,
        "beta_schedule": "squaredcos_cap_v2",
        "prediction_type": "epsilon",
        "clip_sample": True,
        "clip_sample_range": 1.0,
    }


def make_digits_scheduler(kind: str = "native") -> SchedulerMixin:
    """DDPM ancestral (native) or DDIM (deterministic, eta = 0) on the training schedule."""
    if kind in ("native", "ddpm"):
        return DDPMScheduler(**digits_scheduler_config())
    if kind == "ddim":
        return DDIMScheduler(**digits_scheduler_config())
    raise BenchError(f"unknown scheduler {kind!r} for the digits model: use ddpm or ddim")


def load_denoiser(path: Path = WEIGHTS) -> DigitsDenoiser:
    if not path.exists():
        raise BenchError(f"digits weights missing at {path}: run `bench train digits` to make them")
    net = DigitsDenoiser()
    net.load_state_dict(load_file(str(path)))
    return net.eval().requires_grad_(False)


class DigitsClasses(ModelAdapter):
    """What both digits models share: the ten classes as prompts, 8x8 pixels, DDPM."""

    latent_shape = (1, IMAGE_SIZE, IMAGE_SIZE)
    default_steps = 50

    def prompts(self) -> list[Prompt]:
        return [Prompt(id=str(c), text=f"digit {c}", label=c) for c in range(NUM_CLASSES)]

    def make_scheduler(self, kind: str = "native") -> SchedulerMixin:
        return make_digits_scheduler(kind)

    def labels(self, prompts: list[Prompt]) -> torch.Tensor:
        return torch.tensor([p.label for p in prompts], device=self.device)


class DigitsAdapter(DigitsClasses):
    name = "digits"
    prediction_type = "epsilon"
    default_guidance = DEFAULT_GUIDANCE

    def __init__(self, net: DigitsDenoiser | None = None, device: str = "cpu") -> None:
        self.device = torch.device(device)
        self.net = (net or load_denoiser()).to(self.device)

    def condition(self, prompts: list[Prompt]) -> torch.Tensor:
        return self.net.label_embedding(self.labels(prompts))

    def null_condition(self, n: int) -> torch.Tensor:
        labels = torch.full((n,), NULL_CLASS, device=self.device)
        return self.net.label_embedding(labels)

    def predict(self, x_t, timestep, cond):
        timestep = torch.as_tensor(timestep, device=self.device).expand(x_t.shape[0])
        return self.net(x_t, timestep, cond)

    def perturbable(self) -> torch.nn.Module:
        """The UNet: its mid block holds the one self-attention layer."""
        return self.net.unet


def load_digits(device: str = "cpu", **_: object) -> DigitsAdapter:
    """The `digits` factory: the committed weights (`model_path`/`dtype` do not apply)."""
    return DigitsAdapter(device=device)
