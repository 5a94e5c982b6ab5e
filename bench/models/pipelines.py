"""Shared plumbing for adapters around diffusers pipelines (ldm, sd15, sd3, dit).

An adapter keeps the loaded pipeline and drives its networks itself; the
pipeline's own `__call__` is never used, but every tensor it would feed its
networks is reproduced exactly (tests compare both on tiny random components).
Weights come from a local folder or the Hugging Face cache, never the network.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import torch
from diffusers import (
    DDIMScheduler,
    DDPMScheduler,
    DiffusionPipeline,
    DPMSolverMultistepScheduler,
    EulerDiscreteScheduler,
    PNDMScheduler,
    SchedulerMixin,
)

from bench.errors import BenchError
from bench.models.base import ModelAdapter, Prompt

DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}

# DDPM-family alternatives to a pipeline's own scheduler, built from its config.
VP_SCHEDULERS: dict[str, type[SchedulerMixin]] = {
    "ddim": DDIMScheduler,
    "ddpm": DDPMScheduler,
    "pndm": PNDMScheduler,
    "dpm": DPMSolverMultistepScheduler,
    "euler": EulerDiscreteScheduler,
}

# A small built-in caption set until a dataset is configured (CC12M-like captions).
DEFAULT_CAPTIONS = (
    "a photo of a dog playing in the snow",
    "a red bicycle leaning against a brick wall",
    "a bowl of fresh fruit on a wooden table",
    "a lighthouse on a rocky coast at sunset",
    "a cup of coffee next to an open book",
    "a city street at night with neon signs",
    "a mountain lake surrounded by pine trees",
    "a portrait of an old man with a beard",
)


def torch_dtype(name: str | torch.dtype) -> torch.dtype:
    if isinstance(name, torch.dtype):
        return name
    if name not in DTYPES:
        raise BenchError(f"unknown dtype {name!r}: use one of {', '.join(DTYPES)}")
    return DTYPES[name]


def caption_prompts(captions: tuple[str, ...] | list[str] = DEFAULT_CAPTIONS) -> list[Prompt]:
    return [Prompt(id=str(i), text=text) for i, text in enumerate(captions)]


@dataclass(frozen=True)
class Weights:
    """Where a model's weights come from, and what to tell the user when they are absent."""

    name: str
    model_id: str
    env_var: str
    note: str = ""

    def missing(self, source: str) -> str:
        note = f" ({self.note})" if self.note else ""
        return (
            f"weights for model {self.name!r} not found at {source!r}: download {self.model_id} "
            f"with `hf download {self.model_id}`{note}, or point --model-path or "
            f"{self.env_var} at a local copy"
        )


def load_pipeline(
    cls: type[DiffusionPipeline],
    weights: Weights,
    model_path: str | os.PathLike | None,
    dtype: str | torch.dtype,
    device: str | torch.device,
    **kwargs,
) -> DiffusionPipeline:
    """`cls.from_pretrained` from `model_path`, `$env_var` or the HF cache, offline."""
    local = model_path or os.environ.get(weights.env_var)
    source = str(local or weights.model_id)
    if local and not Path(source).is_dir():
        raise BenchError(weights.missing(source))
    try:
        pipe = cls.from_pretrained(
            source, dtype=torch_dtype(dtype), local_files_only=True, **kwargs
        )
    except (OSError, ValueError) as err:
        raise BenchError(weights.missing(source)) from err
    pipe.set_progress_bar_config(disable=True)
    return pipe.to(torch.device(device))


def freeze(pipe: DiffusionPipeline) -> DiffusionPipeline:
    """Every network of the pipeline in eval mode with requires_grad off: nothing here
    trains, and a text encoder left trainable keeps its graph alive for every prompt."""
    for component in pipe.components.values():
        if isinstance(component, torch.nn.Module):
            component.eval().requires_grad_(False)
    return pipe


class PipelineAdapter(ModelAdapter):
    """A ModelAdapter that keeps a diffusers pipeline; subclasses say how to call it."""

    scheduler_kinds: ClassVar[dict[str, type[SchedulerMixin]]] = VP_SCHEDULERS
    decode_chunk: ClassVar[int] = 8  # the paper's batches (<= 16) decode in at most two

    def __init__(self, pipe: DiffusionPipeline) -> None:
        self.pipe = freeze(pipe)
        net = self.network
        self.device = net.device
        self.dtype = net.dtype
        self.prediction_type = pipe.scheduler.config.get("prediction_type", "epsilon")

    @property
    def network(self) -> torch.nn.Module:
        raise NotImplementedError

    @property
    def vae(self) -> torch.nn.Module:
        return self.pipe.vae

    def perturbable(self) -> torch.nn.Module:
        return self.network

    def abilities(self) -> frozenset[str]:
        return frozenset({"attention"})

    def make_scheduler(self, kind: str = "native") -> SchedulerMixin:
        config = self.pipe.scheduler.config
        if kind == "native":
            return type(self.pipe.scheduler).from_config(config)
        if kind not in self.scheduler_kinds:
            kinds = ", ".join(["native", *self.scheduler_kinds])
            raise BenchError(f"unknown scheduler {kind!r} for model {self.name}: use {kinds}")
        return self.scheduler_kinds[kind].from_config(config)

    def to(self, device: torch.device | str) -> PipelineAdapter:
        self.device = torch.device(device)
        self.pipe.to(self.device)
        return self

    def decode(self, x0: torch.Tensor) -> torch.Tensor:
        """Latents -> images in [0, 1], `decode_chunk` samples at a time: a VAE decoder's
        activations at full resolution, not the batch, bound the memory."""
        config = self.vae.config
        latents = x0 / config.scaling_factor + (config.get("shift_factor") or 0.0)
        latents = latents.to(self.vae.dtype)
        images = [self.vae.decode(part).sample for part in latents.split(self.decode_chunk)]
        return (torch.cat(images).float() / 2 + 0.5).clamp(0, 1)

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """Images in [0, 1] -> latents (the posterior mean for a KL autoencoder)."""
        config = self.vae.config
        out = self.vae.encode((images * 2 - 1).to(self.device, self.vae.dtype))
        dist = getattr(out, "latent_dist", None)
        latents = dist.mean if dist is not None else out.latents
        return (latents - (config.get("shift_factor") or 0.0)) * config.scaling_factor


class TextPipelineAdapter(PipelineAdapter):
    """Text-to-image pipelines: captions as prompts, the empty prompt as the null one."""

    def prompts(self) -> list[Prompt]:
        return caption_prompts()

    def condition(self, prompts: list[Prompt]) -> torch.Tensor:
        return self._embed([p.text for p in prompts])

    def null_condition(self, n: int) -> torch.Tensor:
        # the pipelines' negative prompt "" goes through the same encoder call
        return self._embed([""] * n)

    def _embed(self, texts: list[str]) -> torch.Tensor:
        raise NotImplementedError


class UNetTextPipelineAdapter(TextPipelineAdapter):
    """Text pipelines whose network is a UNet (ldm, sd15): latent shape from its config."""

    def __init__(self, pipe: DiffusionPipeline) -> None:
        super().__init__(pipe)
        size = pipe.unet.config.sample_size
        self.latent_shape = (pipe.unet.config.in_channels, size, size)

    @property
    def network(self) -> torch.nn.Module:
        return self.pipe.unet


def batch_timestep(timestep: torch.Tensor | float, n: int, device: torch.device) -> torch.Tensor:
    """A scheduler timestep broadcast to a batch of n, as the pipelines do."""
    return torch.as_tensor(timestep, device=device).reshape(-1).expand(n)
