"""The DiversityMethod interface: hooks into the one sampling loop of bench/sampler.

Every hook is a no-op by default, so a method overrides only what it changes:
`condition` (CADS), `guidance` (interval guidance, CFG sweep), `correct`
(SPELL, particle guidance, an x0-space correction), and the per-prompt /
per-batch lifecycle `begin_prompt` / `end_batch` (SPELL's inter-batch shields).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import Any, ClassVar

import torch
from pydantic import BaseModel, ConfigDict, Field


@dataclass(frozen=True)
class Step:
    """Where the sampler is: step `index` of the `num_steps` the user asked for, at
    scheduler timestep `timestep`.

    `t` is the scheduler's own time in [0, 1] (1 = noise); alpha and sigma are the
    forward-process coefficients of x_t = alpha x0 + sigma eps where the network is
    evaluated. `stage` is 0 for a step's first evaluation and 1, 2, ... for the extra
    evaluations of a multi-stage solver (Heun's correction at the step's end point):
    the loop asks `condition`, `uncondition` and `guidance` only at stage 0 and keeps
    their answers for the later stages; `correct` is called at every stage.
    """

    index: int
    num_steps: int
    timestep: Any
    t: float
    alpha: float
    sigma: float
    stage: int = 0

    @property
    def edm_sigma(self) -> float:
        """The EDM noise level s_t = sigma_t / alpha_t (infinite at a flow's t = 1)."""
        return math.inf if self.alpha == 0 else self.sigma / self.alpha

    @property
    def progress_t(self) -> float:
        """t = 1 - step / num_steps, the step-count time CADS is defined on."""
        return 1.0 - self.index / self.num_steps


@dataclass(frozen=True)
class ConditionPart:
    """One part of a packed condition: elements [start, stop) of each sample's flattened
    condition tensor (SD3 packs token embeddings and the pooled vector into one)."""

    name: str
    start: int
    stop: int


@dataclass
class BatchContext:
    """What a method may know about the batch being sampled. `condition_parts` says how
    the condition splits into parts a method should treat separately (empty: it is one
    part); elements outside every part (padding) must be left as they are.
    `feature_map`, set for methods with `uses_features = True`, maps x0 (N, ...) to
    feature vectors (N, F) differentiably (decode, then the model's feature extractor)."""

    prompt_id: str
    batch_index: int
    sample_indices: list[int]
    seeds: list[int]
    device: torch.device
    extra: dict[str, Any] = field(default_factory=dict)
    condition_parts: tuple[ConditionPart, ...] = ()
    feature_map: Callable[[torch.Tensor], torch.Tensor] | None = None

    def side_generators(self, stream: str) -> list[torch.Generator]:
        """Per-sample generators for a method's own randomness, independent of the
        sampler's noise stream (so every method sees the same step noise)."""
        from bench.seeding import derive_seed

        return [
            torch.Generator(device="cpu").manual_seed(derive_seed(s, stream)) for s in self.seeds
        ]


@dataclass(frozen=True)
class PromptContext:
    """What a method may know when a prompt starts: its id and the sampling device."""

    prompt_id: str
    device: torch.device


class MethodConfig(BaseModel):
    """Typed hyperparameters; subclasses add fields. Unknown keys are errors.

    A field may name its part of the method-config id with `json_schema_extra={"id": T}`:
    a value field then always appears as T followed by its value (`r2`), a bool field
    appears as the word T when it differs from its default (`seq`). Untagged fields
    appear as key and value (`psi0.5`) only when they differ from their default."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    def id_parts(self) -> list[str]:
        parts = []
        for key, spec in type(self).model_fields.items():
            value = getattr(self, key)
            tag = (spec.json_schema_extra or {}).get("id")
            if tag is None:
                if value != spec.default:
                    parts.append(f"{key}{format_value(value)}")
            elif isinstance(value, bool):
                if value != spec.default:
                    parts.append(tag)
            elif value is not None:
                parts.append(f"{tag}{format_value(value)}")
        return parts


def param(default: Any, description: str, id: str | None = None, **constraints: Any) -> Any:
    """A config field: its default, its description (`bench list methods`, reports), its
    id tag (see `MethodConfig`) and pydantic constraints (gt=0, ...)."""
    extra = {"id": id} if id is not None else None
    return Field(default, description=description, json_schema_extra=extra, **constraints)


ABILITY_NAMES = {
    "weak": "a weaker network (autoguidance's guide)",
    "attention": "a network with attention layers",
}


class DiversityMethod:
    """Base class: a method is one file that subclasses this and registers itself."""

    name: ClassVar[str] = "base"
    Config: ClassVar[type[MethodConfig]] = MethodConfig
    combine_space: ClassVar[str] = "x0"
    uses_features: ClassVar[bool] = False
    # What the model must offer: "weak" (a weaker network: autoguidance), "attention"
    # (a network with attention layers to perturb: PAG, SEG, SLG)
    requires: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, config: MethodConfig | None = None) -> None:
        self.config = config if config is not None else self.Config()

    @property
    def id(self) -> str:
        """A stable, readable id of this method-config, e.g. `spell-r2-l1.6`, derived from
        the config (see `MethodConfig`); a method overrides it only to shorten it."""
        return "-".join([self.name, *self.config.id_parts()])

    def params(self) -> dict[str, Any]:
        return self.config.model_dump()

    def info(self) -> dict[str, Any]:
        """method.json: the config, and the class's defaults and parameter descriptions,
        so reports read them without importing the method."""
        fields = self.Config.model_fields
        defaults = {k: f.default for k, f in fields.items() if not f.is_required()}
        return {
            "id": self.id,
            "method": self.name,
            "params": self.config.model_dump(mode="json"),
            "defaults": json.loads(json.dumps(defaults, default=str)),
            "descriptions": {k: f.description for k, f in fields.items() if f.description},
        }

    def unsupported(self, latent_shape: tuple[int, ...], abilities: frozenset[str]) -> str | None:
        """Why this method cannot run on a model with this latent shape and these
        abilities (a reason, checked before anything is generated), or None."""
        missing = sorted(self.requires - abilities)
        if missing:
            return f"needs {' and '.join(ABILITY_NAMES.get(m, m) for m in missing)}"
        return None

    def begin_prompt(self, ctx: PromptContext) -> None:
        """Called by the loop before the first batch of every prompt. One instance serves
        all prompts of its method-config, so a method that keeps state across batches
        (SPELL's earlier outputs) resets it here; nothing else may carry over."""

    def condition(self, step: Step, cond: torch.Tensor, ctx: BatchContext) -> torch.Tensor:
        return cond

    def uncondition(self, step: Step, uncond: torch.Tensor, ctx: BatchContext) -> torch.Tensor:
        return uncond

    def guidance(self, step: Step, w: float, ctx: BatchContext) -> float:
        return w

    def predictions(self, step: Step, w: float) -> tuple[str, ...]:
        """The guiding predictions this evaluation needs beside the conditional one:
        "uncond" (the null or guide condition), "weak" (the model's weaker network on the
        prompt's condition: autoguidance), "perturbed" (the conditional prediction with
        the network inside `self.perturb`). Each costs one network evaluation."""
        return () if w == 1.0 else ("uncond",)

    def combine(
        self, step: Step, preds: dict[str, torch.Tensor], w: float, ctx: BatchContext
    ) -> torch.Tensor:
        """The guided prediction from preds["cond"] and the guiding predictions, all in
        `combine_space`: "x0" (the denoiser's x0) or "output" (the network's own output:
        epsilon, v or flow velocity; where diffusers' guiders work). Default: CFG."""
        if "uncond" not in preds:
            return preds["cond"]
        uncond = preds["uncond"]
        return uncond + w * (preds["cond"] - uncond)

    def perturb(self, network: torch.nn.Module) -> AbstractContextManager:
        """Within the block, `network` computes the perturbed forward pass ("perturbed")."""
        raise NotImplementedError(f"method {self.name!r} asks for no perturbed prediction")

    def correct(
        self, step: Step, x_t: torch.Tensor, x0_hat: torch.Tensor, ctx: BatchContext
    ) -> torch.Tensor | None:
        """An x0-space correction delta (same shape as x0_hat), or None for none."""
        return None

    def end_batch(self, x0: torch.Tensor, ctx: BatchContext) -> None:
        """Called with the batch's final outputs (in the model's diffusion space)."""


def format_number(x: float) -> str:
    """Compact, stable number formatting for method ids: 2.0 -> '2', 0.25 -> '0.25'."""
    return f"{x:g}"


def format_value(value: Any) -> str:
    """A config value in an id: numbers compact, sequences joined by '-', paths by stem."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int | float):
        return format_number(value)
    if isinstance(value, list | tuple):
        return "-".join(format_value(v) for v in value)
    if isinstance(value, PurePath):
        return value.stem
    return str(value)
