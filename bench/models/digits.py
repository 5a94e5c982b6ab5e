"""The embedded default model: a small class-conditional UNet on 8x8 digits.

The class embedding lives outside the diffusers UNet (`class_embed_type="identity"`)
so that the conditioning the sampler hands to methods is a plain tensor: CADS
noises these class vectors like it noises text embeddings. Row 10 of the
embedding table is the null class learned with label dropout (CFG).

`digits_unet_weak` (`bench train digits --weak`) is autoguidance's bad guide: the same
design, narrower and shorter-trained, with its own embedding table. So that it can embed
the prompt's label itself, the adapter's condition is packed: the main network's class
vector, then one column holding the class index. `condition_parts` names only the class
vector, so methods (CADS) change it and leave the index as it is; the weak network
therefore sees its own clean embedding of the same label whatever CADS does to the main
one (as EDM2's guide network keeps its own embedding). Both networks ignore columns past
their embedding width.
"""

from __future__ import annotations

from pathlib import Path

import torch
from diffusers import DDIMScheduler, DDPMScheduler, SchedulerMixin, UNet2DModel
from safetensors.torch import load_file

from bench.data.digits import IMAGE_SIZE, NUM_CLASSES
from bench.errors import BenchError
from bench.models.base import ModelAdapter, Prompt
from methods.base import ConditionPart

WEIGHTS_DIR = Path(__file__).resolve().parent.parent / "weights"
WEIGHTS = WEIGHTS_DIR / "digits_unet.safetensors"
WEAK_WEIGHTS = WEIGHTS_DIR / "digits_unet_weak.safetensors"
WEAK_SETTINGS = WEAK_WEIGHTS.with_suffix(".json")  # its training summary and losses
NULL_CLASS = NUM_CLASSES
CHANNELS = (32, 48, 64)
WEAK_CHANNELS = (16, 24, 32)
# diffusers adds the identity class embedding to the time embedding, 4x the first width
EMBED_DIM = 4 * CHANNELS[0]
# Sampled eval (DDPM, 50 steps): 100% class accuracy at w = 2 with w = 1's coverage of
# held-out digits; coverage falls from w = 3 on.
DEFAULT_GUIDANCE = 2.0


class DigitsDenoiser(torch.nn.Module):
    """UNet2DModel plus the class-embedding table (10 digits + null)."""

    def __init__(self, block_out_channels: tuple[int, ...] = CHANNELS) -> None:
        super().__init__()
        self.embed_dim = 4 * block_out_channels[0]
        self.unet = UNet2DModel(
            sample_size=IMAGE_SIZE,
            in_channels=1,
            out_channels=1,
            block_out_channels=tuple(block_out_channels),
            layers_per_block=1,
            down_block_types=("DownBlock2D", "DownBlock2D", "DownBlock2D"),
            up_block_types=("UpBlock2D", "UpBlock2D", "UpBlock2D"),
            class_embed_type="identity",
            norm_num_groups=8,
        )
        self.label_embedding = torch.nn.Embedding(NUM_CLASSES + 1, self.embed_dim)

    def forward(self, x_t: torch.Tensor, timestep: torch.Tensor, class_vectors: torch.Tensor):
        """`class_vectors` (N, >= embed_dim): columns past the embedding are ignored."""
        vectors = class_vectors[:, : self.embed_dim]
        return self.unet(x_t, timestep, class_labels=vectors).sample


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


def load_denoiser(
    path: Path = WEIGHTS, block_out_channels=CHANNELS, command: str = "bench train digits"
) -> DigitsDenoiser:
    if not path.exists():
        raise BenchError(f"digits weights missing at {path}: run `{command}` to make them")
    net = DigitsDenoiser(block_out_channels)
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

    def __init__(
        self, net: DigitsDenoiser | None = None, device: str = "cpu", weak_path: Path = WEAK_WEIGHTS
    ) -> None:
        self.device = torch.device(device)
        self.net = (net or load_denoiser()).to(self.device)
        self.weak_path = weak_path
        self._weak: DigitsAdapter | None = None

    def embed(self, labels: torch.Tensor) -> torch.Tensor:
        """The packed condition of class indices: the class vector, then the index."""
        vectors = self.net.label_embedding(labels)
        return torch.cat([vectors, labels[:, None].to(vectors.dtype)], dim=1)

    def condition(self, prompts: list[Prompt]) -> torch.Tensor:
        return self.embed(self.labels(prompts))

    def null_condition(self, n: int) -> torch.Tensor:
        return self.embed(torch.full((n,), NULL_CLASS, device=self.device))

    def condition_parts(self, cond: torch.Tensor) -> tuple[ConditionPart, ...]:
        return (ConditionPart("class", 0, self.net.embed_dim),)

    def predict(self, x_t, timestep, cond):
        timestep = torch.as_tensor(timestep, device=self.device).expand(x_t.shape[0])
        return self.net(x_t, timestep, cond)

    def perturbable(self) -> torch.nn.Module:
        """The UNet: its mid block holds the one self-attention layer."""
        return self.net.unet

    def abilities(self) -> frozenset[str]:
        return frozenset({"weak", "attention"})

    def weak_x0(self, x_t, timestep, cond, guide, scheduler, step_index) -> torch.Tensor:
        """x0 of the weak UNet (loaded once, on first use) on its own embedding of the
        label that the condition carries (see the module docstring)."""
        weak = self.weak_adapter()
        return weak.x0(x_t, timestep, weak.embed(condition_labels(cond)), scheduler, step_index)

    def weak_adapter(self) -> DigitsAdapter:
        """The weak UNet as an adapter, on this adapter's device and network dtype."""
        dtype = next(self.net.parameters()).dtype
        if self._weak is None:
            weak_net = load_denoiser(self.weak_path, WEAK_CHANNELS, "bench train digits --weak")
            weak_net = weak_net.to(dtype)
            self._weak = DigitsAdapter(weak_net, str(self.device))
        elif self._weak.device != self.device:
            self._weak.to(self.device)
        return self._weak


def condition_labels(cond: torch.Tensor) -> torch.Tensor:
    """The class indices a packed digits condition carries in its last column."""
    column = cond[:, -1]
    labels = column.round()
    if not torch.equal(column, labels) or labels.min() < 0 or labels.max() > NULL_CLASS:
        raise BenchError(
            "the digits condition's last column must hold class indices 0..10: a method "
            "changed it (methods must leave elements outside `condition_parts` as they are)"
        )
    return labels.long()


def load_digits(device: str = "cpu", **_: object) -> DigitsAdapter:
    """The `digits` factory: the committed weights (`model_path`/`dtype` do not apply)."""
    return DigitsAdapter(device=device)
