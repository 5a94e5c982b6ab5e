"""diffusers' guiders (`diffusers.guiders`) as methods: apg, cfg-zero-star, tcfg, fdg, mag.

Each method builds its diffusers guider from its config and computes the guided
prediction with the guider's own `forward(pred_cond, pred_uncond)` after
`set_state(step, num_steps, timestep)`, as a diffusers pipeline calls it: nothing of the
rules is reimplemented here. What all of them share:
- Space: "output", the network's own parameterisation (epsilon for digits, sd15, ldm and
  dit; flow velocity for sd3; x0 for toy2d and edm2), where diffusers applies guiders.
- Scale: the guider's `guidance_scale` is the run's w at that step (fdg, which has one
  scale per frequency level, takes its own `guidance_scales` instead). The default
  formulation uncond + w (cond - uncond) is the loop's own CFG convention;
  `use_original_formulation` is cond + w (cond - uncond), the loop's w + 1.
- Cost: only the predictions the guider asks for are made (its `num_conditions`): where
  its scale is neutral (w = 1; w = 0 with the original formulation) it returns the
  conditional prediction alone and the unconditional call is skipped, as in `none`.
- State: one guider per batch, made afresh at the batch's first evaluation (step 0,
  stage 0), so state such as APG's momentum never carries over between batches or
  prompts; `prepare_inputs` runs at each step's first evaluation as in the pipelines
  (it is where APG starts its momentum). A multi-stage solver (Heun) calls the guider at
  every evaluation with the step's index: APG's momentum is updated at each call, as a
  diffusers pipeline does at each of its guider calls.
- Not bit-identical to `none` on epsilon and flow models even where a rule reduces to
  CFG: the loop's x0 -> output -> x0 conversions round (about 1e-7 relative). On x0
  models (toy2d, edm2) they are the identity, and there such settings are bit-identical.
- The guiders' start/stop/enabled are not offered (interval guidance is `ig`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, ClassVar, Literal

import torch
from pydantic import model_validator

from methods.base import (
    BatchContext,
    DiversityMethod,
    MethodConfig,
    PromptContext,
    Step,
    format_value,
    param,
)

# the logger of diffusers' BaseGuidance, which warns "experimental" on every construction
GUIDER_LOGGER = "diffusers.guiders.guider_utils"

RESCALE = "guidance rescale of Lin et al. (arXiv 2305.08891) on the result (0: none)"
ORIGINAL = "cond + w (cond - uncond) instead of diffusers' uncond + w (cond - uncond)"


@contextmanager
def quiet_guiders() -> Iterator[None]:
    logger = logging.getLogger(GUIDER_LOGGER)
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


class GuiderConfig(MethodConfig):
    """The keyword arguments of a diffusers guider; validated by building one. Method
    ids name the fields that differ from their defaults by the short `TAGS`."""

    guider_class: ClassVar[str] = ""
    TAGS: ClassVar[dict[str, str]] = {"guidance_rescale": "gr", "use_original_formulation": "orig"}

    def guider_kwargs(self) -> dict[str, Any]:
        return self.model_dump()

    def build_guider(self) -> Any:
        import diffusers.guiders

        with quiet_guiders():
            return getattr(diffusers.guiders, self.guider_class)(**self.guider_kwargs())

    @model_validator(mode="after")
    def _guider_accepts(self) -> GuiderConfig:
        if not self.guider_class:
            return self
        try:
            self.build_guider()
        except ImportError as err:  # FDG without kornia: a config error, not a traceback
            raise ValueError(str(err)) from err
        return self

    def id_parts(self) -> list[str]:
        parts = []
        for key, spec in type(self).model_fields.items():
            value = getattr(self, key)
            if value == spec.default:
                continue
            tag = self.TAGS.get(key, key)
            parts.append(tag if isinstance(value, bool) else f"{tag}{format_value(value)}")
        return parts


class GuiderMethod(DiversityMethod):
    """A diffusers guider as a method (see the module's docstring)."""

    combine_space = "output"
    Config: ClassVar[type[GuiderConfig]] = GuiderConfig
    # the guider's attribute that the run's w sets (None: the guider has no single scale)
    scale_attr: ClassVar[str | None] = "guidance_scale"

    def __init__(self, config: GuiderConfig | None = None) -> None:
        super().__init__(config)
        self._probe: Any = None
        self._guider: Any = None
        self._key: tuple | None = None

    def _at(self, guider: Any, step: Step, w: float) -> Any:
        guider.set_state(step.index, step.num_steps, step.timestep)
        if self.scale_attr is not None:
            setattr(guider, self.scale_attr, w)
        return guider

    def predictions(self, step: Step, w: float) -> tuple[str, ...]:
        # a stateless guider of the same config says what the batch's guider will need
        if self._probe is None:
            self._probe = self.config.build_guider()
        return ("uncond",) if self._at(self._probe, step, w).num_conditions > 1 else ()

    def begin_prompt(self, ctx: PromptContext) -> None:
        self._guider, self._key = None, None

    def _batch_guider(self, step: Step, ctx: BatchContext) -> Any:
        key = (ctx.prompt_id, ctx.batch_index, tuple(ctx.seeds))
        if self._guider is None or key != self._key or (step.index == 0 and step.stage == 0):
            self._guider, self._key = self.config.build_guider(), key
        return self._guider

    def check(self, pred: torch.Tensor) -> None:
        """Raise ValueError where the guider's rule is not defined for these predictions."""

    def combine(
        self, step: Step, preds: dict[str, torch.Tensor], w: float, ctx: BatchContext
    ) -> torch.Tensor:
        self.check(preds["cond"])
        guider = self._at(self._batch_guider(step, ctx), step, w)
        if step.stage == 0:
            guider.prepare_inputs({})
        return guider.forward(preds["cond"], preds.get("uncond")).pred


class APGConfig(GuiderConfig):
    guider_class: ClassVar[str] = "AdaptiveProjectedGuidance"
    TAGS: ClassVar[dict[str, str]] = {
        **GuiderConfig.TAGS,
        "adaptive_projected_guidance_momentum": "m",
        "adaptive_projected_guidance_rescale": "r",
        "adaptive_projected_guidance_norm_dim": "dim",
    }

    eta: float = param(1.0, "weight of the update's part parallel to cond (paper: 0)", ge=0)
    adaptive_projected_guidance_rescale: float = param(
        15.0, "norm threshold r of the guidance update (0: none)", ge=0
    )
    adaptive_projected_guidance_momentum: float | None = param(
        None, "momentum of the update's running average (unset: none; paper: -0.5)"
    )
    adaptive_projected_guidance_norm_dim: int | list[int] | None = param(
        None, "dims of the norm and projection (unset: all but the batch's)"
    )
    guidance_rescale: float = param(0.0, RESCALE, ge=0, le=1)
    use_original_formulation: bool = param(False, ORIGINAL)

    @model_validator(mode="before")
    @classmethod
    def _not_the_batch(cls, data: Any) -> Any:
        dims = data.get("adaptive_projected_guidance_norm_dim") if isinstance(data, dict) else None
        if dims == 0 or (isinstance(dims, list) and 0 in dims):
            raise ValueError("adaptive_projected_guidance_norm_dim must not be 0, the batch's")
        return data


class APG(GuiderMethod):
    """APG, adaptive projected guidance (Sadat et al., arXiv 2410.02416), diffusers' guider.

    diffusers' AdaptiveProjectedGuidance. Space: output. The update cond - uncond (its
    momentum average, if set) is clipped to norm r and split into parts parallel and
    orthogonal to cond, the parallel part weighted by eta. The paper recommends eta = 0
    and momentum -0.5; diffusers' defaults (eta 1, no momentum) are kept.
    eta = 1 without momentum is CFG wherever the threshold is not reached (r = 0:
    never), to within the roundoff of the float64 projection (bit-identical to `none` on
    toy2d)."""

    name = "apg"
    Config = APGConfig


class CFGZeroStarConfig(GuiderConfig):
    guider_class: ClassVar[str] = "ClassifierFreeZeroStarGuidance"
    TAGS: ClassVar[dict[str, str]] = {**GuiderConfig.TAGS, "zero_init_steps": "z"}

    zero_init_steps: int = param(
        1, "first steps whose guided prediction is zeroed (Section 4.2; 0: none)", ge=0
    )
    guidance_rescale: float = param(0.0, RESCALE, ge=0, le=1)
    use_original_formulation: bool = param(False, ORIGINAL)


class CFGZeroStar(GuiderMethod):
    """CFG-Zero*, optimised scale and zero init (Fan et al., arXiv 2503.18886), diffusers'.

    diffusers' ClassifierFreeZeroStarGuidance. Space: output. uncond is scaled by the
    optimised s* = <cond, uncond> / ||uncond||^2 per sample before CFG with the run's w,
    and the first `zero_init_steps` steps (both evaluations of a Heun step) return 0
    whatever w is, also at w = 1. The paper designed zero init for flow models (velocity
    0: the first step leaves x_t as it is); on epsilon models it is epsilon 0 (x0 =
    x_t / alpha), on x0 models x0 = 0, as the guider does in any diffusers pipeline.
    Departure: a zeroed step skips the unconditional call (the guider would still ask
    for it, unused): only the conditional one is made. The paper's `use_zero_init`
    switch is zero_init_steps = 0; s* still applies there, so no setting is CFG."""

    name = "cfg-zero-star"
    Config = CFGZeroStarConfig

    def predictions(self, step: Step, w: float) -> tuple[str, ...]:
        if step.index < self.config.zero_init_steps:
            return ()
        return super().predictions(step, w)


class TCFGConfig(GuiderConfig):
    guider_class: ClassVar[str] = "TangentialClassifierFreeGuidance"

    guidance_rescale: float = param(0.0, RESCALE, ge=0, le=1)
    use_original_formulation: bool = param(False, ORIGINAL)


class TCFG(GuiderMethod):
    """TCFG, tangential classifier-free guidance (Kwon et al., arXiv 2503.18137), diffusers'.

    diffusers' TangentialClassifierFreeGuidance. Space: output. uncond is replaced by
    its projection onto the first right singular vector of the per-sample matrix [cond;
    uncond] before CFG with the run's w. It has no setting that reduces to CFG."""

    name = "tcfg"
    Config = TCFGConfig


class FDGConfig(GuiderConfig):
    guider_class: ClassVar[str] = "FrequencyDecoupledGuidance"
    TAGS: ClassVar[dict[str, str]] = {
        **GuiderConfig.TAGS,
        "guidance_scales": "w",
        "parallel_weights": "pw",
        "guidance_rescale_space": "",
        "upcast_to_double": "noup",
    }

    guidance_scales: list[float] = param(
        [10.0, 5.0], "CFG scale per frequency level, highest first (replaces w)", min_length=1
    )
    guidance_rescale: float = param(0.0, RESCALE, ge=0, le=1)
    parallel_weights: float | list[float] | None = param(
        None, "weight of the shift's part parallel to cond per level (unset: 1, CFG's)"
    )
    use_original_formulation: bool = param(False, ORIGINAL)
    guidance_rescale_space: Literal["data", "freq"] = param(
        "data", "rescale after the inverse transform (data) or per level (freq)"
    )
    upcast_to_double: bool = param(True, "project in float64")


class FDG(GuiderMethod):
    """FDG, frequency-decoupled guidance (Sadat et al., arXiv 2506.19713), diffusers'.

    diffusers' FrequencyDecoupledGuidance, on kornia's Laplacian pyramids (needs
    `kornia`). Space: output. CFG runs on each pyramid level with its own scale, highest
    frequency first; `guidance_scales` replace the run's w (FDG has no single scale),
    and all at 1 switch guidance off. Defined on image latents (N, C, H, W) only, so not
    on toy2d. Departure: kornia pads a side that is not a power of two (a 768-px SD
    latent's 96 to 128) and the guider then returns the padded size; the result is
    cropped to H x W. Equal scales are CFG only up to the pyramid's roundoff."""

    name = "fdg"
    Config = FDGConfig
    scale_attr = None

    def unsupported(self, latent_shape: tuple[int, ...], abilities: frozenset[str]) -> str | None:
        if len(latent_shape) != 3:
            return f"it needs image latents (C, H, W); this model's are {latent_shape}"
        return super().unsupported(latent_shape, abilities)

    def check(self, pred: torch.Tensor) -> None:
        if pred.dim() != 4:
            shape = tuple(pred.shape[1:])
            raise ValueError(f"fdg needs image latents (C, H, W); this model's are {shape}")

    def combine(
        self, step: Step, preds: dict[str, torch.Tensor], w: float, ctx: BatchContext
    ) -> torch.Tensor:
        height, width = preds["cond"].shape[-2:]
        return super().combine(step, preds, w, ctx)[..., :height, :width]


class MAGConfig(GuiderConfig):
    guider_class: ClassVar[str] = "MagnitudeAwareGuidance"
    TAGS: ClassVar[dict[str, str]] = {**GuiderConfig.TAGS, "alpha": "a"}

    alpha: float = param(8.0, "suppression of w where the update is large (0: plain CFG)", ge=0)
    guidance_rescale: float = param(0.0, RESCALE, ge=0, le=1)
    use_original_formulation: bool = param(False, ORIGINAL)


class MAG(GuiderMethod):
    """MAG, magnitude-aware guidance MAMBO-G (arXiv 2508.03442), diffusers' guider.

    diffusers' MagnitudeAwareGuidance. Space: output. CFG with the per-sample scale 1 +
    (w - 1) exp(-alpha ||cond - uncond|| / ||uncond||). alpha = 0 is CFG:
    bit-identical to `none` on x0 models such as toy2d (where 1 + (w - 1) is w in
    float32), to roundoff elsewhere.
    Departure: the guider's torch.norm(dim=[1, 2, 3]) fails on image latents (N, C, H,
    W) (a Frobenius norm over three dims; diffusers' pipelines feed it packed (N, L, D)
    tokens), so those are handed to it as (N, C, H W): the same norms, element for
    element the same result."""

    name = "mag"
    Config = MAGConfig

    def combine(
        self, step: Step, preds: dict[str, torch.Tensor], w: float, ctx: BatchContext
    ) -> torch.Tensor:
        shape = preds["cond"].shape
        flat = {k: v.flatten(2) if v.dim() > 3 else v for k, v in preds.items()}
        return super().combine(step, flat, w, ctx).reshape(shape)
