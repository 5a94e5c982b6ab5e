"""Perturbed-forward guidance through diffusers' own guiders and hooks: PAG, SEG, SLG.

Each method guides away from the conditional prediction of a deliberately weakened
network, computed with the network inside `perturb`, which places the hooks of
diffusers' hooks module (diffusers/hooks/layer_skip.py, smoothed_energy_guidance_utils.py)
and removes them on leaving. The guided prediction is the matching diffusers guider's
`forward(pred_cond, pred_uncond, pred_perturbed)` after `set_state`, in the network's
output space (epsilon, v or flow velocity), with the run's w as the guider's CFG
scale. Its default, non-original formulation is the loop's CFG term for term:

    w != 1, step perturbed:  u + w (c - u) + s (c - p)
    w != 1, not perturbed:   u + w (c - u)                    (the loop's CFG exactly)
    w == 1, step perturbed:  p + s (c - p) = c + (s - 1) (c - p)
    w == 1, not perturbed:   c

with c, u, p the conditional, unconditional and perturbed predictions and s the
method's scale. `uncond` is evaluated only where the guider's CFG is on (w != 1) and
`perturbed` only on the steps the guider perturbs: int(start N) < i < int(stop N) for
step i of N (strict at the start, as diffusers: step 0 is never perturbed, and with
start 0.01, stop 0.2 no step is when N < 10). Scale 0 is `none` bit for bit (its
predictions, nfe and x0-space CFG).

Departures from the papers and the guiders (each class says its own):
- the w == 1 formula above is diffusers' guiders'; the PAG paper (and diffusers' PAG
  pipelines) use c + s (c - p) there; guidance_rescale and use_original_formulation
  are not offered (the loop's CFG convention is the non-original one);
- `layers` and `fqn` are resolved per network in `perturb` (see `DEFAULT_LAYERS`); a
  spec that matches no block, or a block without what the hook acts on, is a ValueError.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, ClassVar

import torch
from pydantic import model_validator

from methods.base import BatchContext, DiversityMethod, MethodConfig, Step, format_value, param
from methods.guiders import quiet_guiders

# Per network type, the (fqn, block indices) of the stack that the hooks act on. UNets:
# the mid block's attention (diffusers' SD and SDXL PAG pipelines' default "mid");
# transformers: block 1 (diffusers' SD3, PixArt and HunyuanDiT PAG pipelines'
# "blocks.1"). SLG skips whole blocks: for UNet2DConditionModel the first
# transformer block inside the mid block (its Transformer2DModel is no block the
# layer-skip hook knows); UNet2DModel's mid-block entry is the attention layer itself.
DEFAULT_LAYERS = {
    "UNet2DConditionModel": ("mid_block.attentions", [0]),
    "UNet2DModel": ("mid_block.attentions", [0]),
    "SD3Transformer2DModel": ("transformer_blocks", [1]),
    "DiTTransformer2DModel": ("transformer_blocks", [1]),
}
SKIP_LAYERS = {
    **DEFAULT_LAYERS,
    "UNet2DConditionModel": ("mid_block.attentions.0.transformer_blocks", [0]),
}
FQN = "the block list's name in the network (auto: per network type)"


def resolve_layers(
    network: torch.nn.Module, defaults: dict, fqn: str, layers: list[int] | None, method: str
) -> tuple[str, list[int]]:
    """(fqn, sorted block indices): "auto" takes the network type's default stack (and
    its indices where `layers` is unset); an explicit fqn defaults to block 0."""
    indices = [0]
    if fqn == "auto":
        names = [c.__name__ for c in type(network).__mro__]
        known = next((defaults[n] for n in names if n in defaults), None)
        if known is None:
            raise ValueError(
                f"{method}: no default layers for {type(network).__name__}; set fqn and layers"
            )
        fqn, indices = known
    return fqn, sorted(set(indices if layers is None else layers))


def blocks(network: torch.nn.Module, fqn: str, indices: list[int], method: str) -> list:
    """The blocks `indices` of the ModuleList `fqn`, or a one-line ValueError."""
    where = f"{method}: {type(network).__name__}"
    try:
        stack = network.get_submodule(fqn)
    except AttributeError:
        stack = None
    if not isinstance(stack, torch.nn.ModuleList):
        raise ValueError(f"{where} has no block list {fqn!r}")
    missing = [i for i in indices if i >= len(stack) or stack[i] is None]
    if missing:
        raise ValueError(f"{where}.{fqn} has blocks 0-{len(stack) - 1}: no block {missing}")
    return [stack[i] for i in indices]


def self_attentions(network, fqn: str, indices: list[int], method: str) -> list[list]:
    """Per block, its self-attention modules (what the diffusers hooks select)."""
    from diffusers.hooks._common import _ATTENTION_CLASSES

    found = []
    for i, block in zip(indices, blocks(network, fqn, indices, method), strict=True):
        attns = [
            m
            for m in block.modules()
            if isinstance(m, _ATTENTION_CLASSES) and not m.is_cross_attention
        ]
        if not attns:
            name = type(network).__name__
            raise ValueError(f"{method}: {name}.{fqn} block {i} has no self-attention")
        found.append(attns)
    return found


def skippable(block: torch.nn.Module) -> bool:
    """Whether diffusers' TransformerBlockSkipHook knows this block type."""
    from diffusers.hooks._helpers import TransformerBlockRegistry

    try:
        TransformerBlockRegistry.get(type(block))
    except ValueError:
        return False
    return True


def skip_layers_hook(indices: list[int]):
    """A diffusers ModelHook that passes `skip_layers` to an SD3 transformer's forward:
    its own block skipping (what StableDiffusion3Pipeline's `skip_guidance_layers` uses)."""
    from diffusers.hooks import ModelHook

    class SkipLayers(ModelHook):
        def pre_forward(self, module, *args, **kwargs):
            return args, {**kwargs, "skip_layers": list(indices)}

    return SkipLayers()


class PerturbedConfig(MethodConfig):
    """What the three configs share: the window's start <= stop and valid block indices.
    Subclasses name their fields as the guider names its arguments."""

    window: ClassVar[tuple[str, str]] = ("", "")
    layers_field: ClassVar[str] = ""

    @model_validator(mode="after")
    def _valid(self) -> PerturbedConfig:
        start, stop = (getattr(self, k) for k in self.window)
        if start > stop:
            raise ValueError(f"{self.window[0]} must be <= {self.window[1]}, got {start} > {stop}")
        layers = getattr(self, self.layers_field)
        if layers is not None and (not layers or min(layers) < 0):
            raise ValueError(f"{self.layers_field} must be block indices >= 0, got {layers}")
        return self

    def guider_kwargs(self) -> dict[str, Any]:
        """The guider's arguments. Its layers only place its own hooks, which are not
        used here (`perturb` places them per network), so any valid list will do."""
        kwargs = self.model_dump(exclude={"fqn", self.layers_field})
        return {**kwargs, self.layers_field: [0]}


class PerturbedForwardGuidance(DiversityMethod):
    """The shared machinery; subclasses name the guider and place the hooks."""

    requires = frozenset({"attention"})
    guider_name: ClassVar[str] = ""
    scale_field: ClassVar[str] = ""
    perturbs_step: ClassVar[str] = ""  # the guider's own test of a perturbed step

    def __init__(self, config: MethodConfig | None = None) -> None:
        super().__init__(config)
        self._guider = None  # built on first use: importing diffusers takes seconds

    @property
    def scale(self) -> float:
        return getattr(self.config, self.scale_field)

    @property
    def combine_space(self) -> str:
        return "x0" if self.scale == 0 else "output"

    @property
    def id(self) -> str:
        """`pag-s2.8`, then each changed field by its last word (`start0`, `layers1-2`)."""
        parts = [self.name, f"s{format_value(self.scale)}"]
        for key, spec in type(self.config).model_fields.items():
            value = getattr(self.config, key)
            if key != self.scale_field and value != spec.default:
                parts.append(f"{key.rsplit('_', 1)[-1]}{format_value(value)}")
        return "-".join(parts)

    def make_guider(self):
        import diffusers.guiders

        guider = getattr(diffusers.guiders, self.guider_name)
        return guider(**self.config.guider_kwargs())

    def guider(self, step: Step, w: float):
        """The guider, at this step and with the run's w as its CFG scale."""
        if self._guider is None:
            with quiet_guiders():
                self._guider = self.make_guider()
        self._guider.guidance_scale = w
        self._guider.set_state(step.index, step.num_steps, step.timestep)
        return self._guider

    def predictions(self, step: Step, w: float) -> tuple[str, ...]:
        if self.scale == 0:
            return super().predictions(step, w)
        guider = self.guider(step, w)
        names = ("uncond",) if guider._is_cfg_enabled() else ()
        return names + (("perturbed",) if getattr(guider, self.perturbs_step)() else ())

    def combine(
        self, step: Step, preds: dict[str, torch.Tensor], w: float, ctx: BatchContext
    ) -> torch.Tensor:
        if self.scale == 0:
            return super().combine(step, preds, w, ctx)
        guider = self.guider(step, w)
        return guider.forward(preds["cond"], preds.get("uncond"), preds.get("perturbed")).pred

    def place_hooks(self, network: torch.nn.Module, name: str) -> None:
        raise NotImplementedError

    def layers(self, network: torch.nn.Module, defaults: dict = DEFAULT_LAYERS) -> tuple:
        c = self.config
        return resolve_layers(network, defaults, c.fqn, getattr(c, c.layers_field), self.name)

    @contextmanager
    def perturb(self, network: torch.nn.Module) -> Iterator[None]:
        from diffusers.hooks import HookRegistry

        name = f"spellbench_{self.name}"
        try:
            self.place_hooks(network, name)
            yield
        finally:
            HookRegistry.check_if_exists_or_initialize(network).remove_hook(name, recurse=True)


class PAGConfig(PerturbedConfig):
    window = ("perturbed_guidance_start", "perturbed_guidance_stop")
    layers_field = "perturbed_guidance_layers"
    perturbed_guidance_scale: float = param(2.8, "PAG scale s (0: off)", id="s", ge=0)
    perturbed_guidance_start: float = param(0.01, "perturbed after this fraction", ge=0, lt=1)
    perturbed_guidance_stop: float = param(0.2, "perturbed before this fraction", ge=0, le=1)
    perturbed_guidance_layers: list[int] | None = param(None, "block indices (unset: default)")
    fqn: str = param("auto", FQN)


class PAG(PerturbedForwardGuidance):
    """PAG, perturbed-attention guidance (Ahn et al., arXiv 2403.17377), output space.

    The perturbed forward replaces the self-attention maps of the chosen blocks by the
    identity (attention output = V).

    The hooks are the ones diffusers' `_apply_layer_skip_hook` places for the guider's
    LayerSkipConfig (skip_attention_scores): an AttentionProcessorSkipHook on each
    self-attention module of each chosen block. They are placed here directly because
    that function first looks up a skip function for the attention processor, which it
    does not have for SD3's JointAttnProcessor2_0 (the guider fails there) and PAG never
    calls. On SD3's joint attention the identity covers the text tokens too (as the
    guider's own note says). Defaults are the guider's (scale 2.8, start 0.01, stop 0.2).
    """

    name = "pag"
    Config = PAGConfig
    guider_name = "PerturbedAttentionGuidance"
    scale_field = "perturbed_guidance_scale"
    perturbs_step = "_is_slg_enabled"

    def place_hooks(self, network: torch.nn.Module, name: str) -> None:
        from diffusers.hooks import HookRegistry
        from diffusers.hooks.layer_skip import AttentionProcessorSkipHook

        fqn, indices = self.layers(network)
        for attns in self_attentions(network, fqn, indices, self.name):
            for attn in attns:
                hook = AttentionProcessorSkipHook(None, skip_attention_scores=True)
                HookRegistry.check_if_exists_or_initialize(attn).register_hook(hook, name)


class SEGConfig(PerturbedConfig):
    window = ("seg_guidance_start", "seg_guidance_stop")
    layers_field = "seg_guidance_layers"
    seg_guidance_scale: float = param(2.8, "SEG scale s (0: off)", id="s", ge=0)
    seg_blur_sigma: float = param(9999999.0, "query blur sigma (see the class doc)", gt=0)
    seg_guidance_start: float = param(0.0, "perturbed after this fraction", ge=0, lt=1)
    seg_guidance_stop: float = param(1.0, "perturbed before this fraction", ge=0, le=1)
    seg_guidance_layers: list[int] | None = param(None, "block indices (unset: default)")
    fqn: str = param("auto", FQN)


class SEG(PerturbedForwardGuidance):
    """SEG, smoothed energy guidance (Hong, arXiv 2408.00760), output space.

    The perturbed forward blurs the queries of the chosen blocks' self-attention with
    diffusers' SmoothedEnergyGuidanceHook, placed by `_apply_smoothed_energy_guidance_hook`.
    Defaults are the guider's code (scale 2.8, its docstring says 3.0; sigma 9999999,
    infinite blur; window 0 to 1).

    Departures and diffusers' quirks: the guider's own prepare_models never counts its
    calls, so it never places its hook (the guider alone is CFG); here `perturb` places
    it. The guider's seg_blur_threshold_inf never reaches the hook (fixed at 9999.9), so
    it is not offered. diffusers' `_gaussian_blur_2d` takes its two branches the other
    way round from its name: a sigma up to 9999 replaces the queries by their mean (the
    paper's infinite blur), a larger one applies a Gaussian kernel cut to the token grid.
    """

    name = "seg"
    Config = SEGConfig
    guider_name = "SmoothedEnergyGuidance"
    scale_field = "seg_guidance_scale"
    perturbs_step = "_is_seg_enabled"

    def place_hooks(self, network: torch.nn.Module, name: str) -> None:
        from diffusers.hooks.smoothed_energy_guidance_utils import (
            SmoothedEnergyGuidanceConfig,
            _apply_smoothed_energy_guidance_hook,
        )

        fqn, indices = self.layers(network)
        self_attentions(network, fqn, indices, self.name)  # a query to blur in every block
        config = SmoothedEnergyGuidanceConfig(indices, fqn=fqn)
        sigma = self.config.seg_blur_sigma
        _apply_smoothed_energy_guidance_hook(network, config, sigma, name=name)


class SLGConfig(PerturbedConfig):
    window = ("skip_layer_guidance_start", "skip_layer_guidance_stop")
    layers_field = "skip_layer_guidance_layers"
    skip_layer_guidance_scale: float = param(2.8, "SLG scale s (0: off)", id="s", ge=0)
    skip_layer_guidance_start: float = param(0.01, "perturbed after this fraction", ge=0, lt=1)
    skip_layer_guidance_stop: float = param(0.2, "perturbed before this fraction", ge=0, le=1)
    skip_layer_guidance_layers: list[int] | None = param(None, "block indices (unset: default)")
    fqn: str = param("auto", FQN)


class SLG(PerturbedForwardGuidance):
    """SLG, skip-layer guidance (Stability AI's SD3.5 reference), output space.

    No paper: the reference is github.com/Stability-AI/sd3.5, and diffusers' guider cites
    STG (arXiv 2411.18664). The perturbed forward skips the chosen blocks whole, through
    diffusers' `_apply_layer_skip_hook` with the guider's LayerSkipConfig. Defaults are
    the guider's (scale 2.8, start 0.01, stop 0.2; for SD3.5 Medium diffusers recommends
    layers [7, 8, 9]).

    Departures, where the hook cannot act: on SD3 the blocks are skipped by the
    transformer's own `skip_layers` argument (as StableDiffusion3Pipeline does), because
    diffusers' TransformerBlockSkipHook returns a JointTransformerBlock's two streams in
    the wrong order (a shape error); where the listed entries are attention layers
    themselves (UNet2DModel's mid block) the attention is skipped (skip_attention, there
    is no feed-forward to skip).
    """

    name = "slg"
    Config = SLGConfig
    guider_name = "SkipLayerGuidance"
    scale_field = "skip_layer_guidance_scale"
    perturbs_step = "_is_slg_enabled"

    def place_hooks(self, network: torch.nn.Module, name: str) -> None:
        from diffusers.hooks import HookRegistry

        fqn, indices = self.layers(network, SKIP_LAYERS)
        chosen = blocks(network, fqn, indices, self.name)
        sd3 = any(c.__name__ == "SD3Transformer2DModel" for c in type(network).__mro__)
        if sd3 and fqn == "transformer_blocks":
            registry = HookRegistry.check_if_exists_or_initialize(network)
            registry.register_hook(skip_layers_hook(indices), name)
            return
        self._skip_blocks(network, fqn, indices, chosen, name)

    def _skip_blocks(self, network, fqn: str, indices: list[int], chosen: list, name) -> None:
        from diffusers.hooks import LayerSkipConfig
        from diffusers.hooks._common import _ATTENTION_CLASSES
        from diffusers.hooks.layer_skip import _apply_layer_skip_hook

        where = f"{self.name}: {type(network).__name__}.{fqn}"
        attention_only = all(isinstance(b, _ATTENTION_CLASSES) for b in chosen)
        unknown = [(i, b) for i, b in zip(indices, chosen, strict=True) if not skippable(b)]
        if unknown and not attention_only:
            i, block = unknown[0]
            kind = type(block).__name__
            raise ValueError(f"{where}: block {i} is a {kind}, which the skip hook cannot skip")
        config = LayerSkipConfig(indices, fqn=fqn, skip_attention=True, skip_ff=not attention_only)
        try:
            _apply_layer_skip_hook(network, config, name=name)
        except ValueError as err:
            raise ValueError(f"{where}: {err}") from None
