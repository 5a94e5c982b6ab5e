"""`sd3`: Stable Diffusion 3 medium (StableDiffusion3Pipeline components), flow matching.

The transformer takes two conditions: the token embeddings (CLIP-L and CLIP-G
hidden states, padded to the joint width, then T5 tokens or zeros without T5)
and the pooled CLIP embeddings. Methods see one plain tensor: the pooled vector
is packed as extra rows at the end of the token sequence (zero-padded to the
joint width) and split off again in `predict`. `condition_parts` names the tokens
and the pooled vector, so CADS noises and rescales each on its own statistics and
leaves the padding alone.
"""

from __future__ import annotations

import math

import torch
from diffusers import FlowMatchEulerDiscreteScheduler, SchedulerMixin, StableDiffusion3Pipeline
from diffusers.pipelines.stable_diffusion_3.pipeline_stable_diffusion_3 import calculate_shift

from bench.models.pipelines import (
    TextPipelineAdapter,
    Weights,
    batch_timestep,
    load_pipeline,
)
from methods.base import ConditionPart

WEIGHTS = Weights(
    "sd3",
    "stabilityai/stable-diffusion-3-medium-diffusers",
    "SPELLBENCH_SD3_PATH",
    note="gated: accept the licence on the Hub and `hf auth login` first",
)


def pooled_rows(pooled_dim: int, width: int) -> int:
    return math.ceil(pooled_dim / width)


def pack(embeds: torch.Tensor, pooled: torch.Tensor) -> torch.Tensor:
    """(B, L, D) tokens + (B, P) pooled -> (B, L + ceil(P / D), D)."""
    n, _, width = embeds.shape
    rows = pooled_rows(pooled.shape[1], width)
    padded = torch.nn.functional.pad(pooled, (0, rows * width - pooled.shape[1]))
    return torch.cat([embeds, padded.reshape(n, rows, width)], dim=1)


def unpack(cond: torch.Tensor, pooled_dim: int) -> tuple[torch.Tensor, torch.Tensor]:
    rows = pooled_rows(pooled_dim, cond.shape[2])
    return cond[:, :-rows], cond[:, -rows:].flatten(1)[:, :pooled_dim]


class SD3Adapter(TextPipelineAdapter):
    name = "sd3"
    prediction_type = "flow"
    default_guidance = 5.5
    default_steps = 28
    scheduler_kinds = {"euler": FlowMatchEulerDiscreteScheduler}

    def __init__(self, pipe: StableDiffusion3Pipeline) -> None:
        super().__init__(pipe)
        self.prediction_type = "flow"
        config = pipe.transformer.config
        self.latent_shape = (config.in_channels, config.sample_size, config.sample_size)
        self.pooled_dim = config.pooled_projection_dim

    @property
    def network(self) -> torch.nn.Module:
        return self.pipe.transformer

    def condition_parts(self, cond: torch.Tensor) -> tuple[ConditionPart, ...]:
        width = cond.shape[2]
        tokens = (cond.shape[1] - pooled_rows(self.pooled_dim, width)) * width
        return (
            ConditionPart("tokens", 0, tokens),
            ConditionPart("pooled", tokens, tokens + self.pooled_dim),
        )

    def _embed(self, texts: list[str]) -> torch.Tensor:
        embeds, _, pooled, _ = self.pipe.encode_prompt(
            texts, None, None, device=self.device, do_classifier_free_guidance=False
        )
        return pack(embeds, pooled)

    def set_timesteps(self, scheduler: SchedulerMixin, steps: int) -> None:
        kwargs = {}
        if scheduler.config.get("use_dynamic_shifting", False):
            kwargs["mu"] = self._shift_mu(scheduler)
        scheduler.set_timesteps(steps, device=self.device, **kwargs)

    def _shift_mu(self, scheduler: SchedulerMixin) -> float:
        """The resolution-dependent shift SD3.5-style schedulers ask for (as the pipeline)."""
        _, height, width = self.latent_shape
        patch = self.pipe.transformer.config.patch_size
        config = scheduler.config
        return calculate_shift(
            (height // patch) * (width // patch),
            config.get("base_image_seq_len", 256),
            config.get("max_image_seq_len", 4096),
            config.get("base_shift", 0.5),
            config.get("max_shift", 1.16),
        )

    def predict(self, x_t, timestep, cond):
        embeds, pooled = unpack(cond, self.pooled_dim)
        return self.pipe.transformer(
            hidden_states=x_t,
            timestep=batch_timestep(timestep, x_t.shape[0], self.device),
            encoder_hidden_states=embeds,
            pooled_projections=pooled,
            return_dict=False,
        )[0]


def load_sd3(model_path=None, dtype="float32", device="cpu", t5: bool = True, **_) -> SD3Adapter:
    """`t5=False` drops the T5-XXL encoder (zeros in its place, as diffusers allows)."""
    extra = {} if t5 else {"text_encoder_3": None, "tokenizer_3": None}
    return SD3Adapter(
        load_pipeline(StableDiffusion3Pipeline, WEIGHTS, model_path, dtype, device, **extra)
    )
