"""Models by name: adapter factories (`factory(**kwargs) -> ModelAdapter`), imported
lazily (diffusers pipelines pull in transformers), plugins of the entry-point group
`spellbench.models`, and `module:factory` for anything else."""

from __future__ import annotations

from collections.abc import Callable

from bench.errors import BenchError
from bench.models.base import ModelAdapter
from bench.registry import Registry

ModelFactory = Callable[..., ModelAdapter]


def _not_a_factory(obj) -> str | None:
    if isinstance(obj, type) and issubclass(obj, ModelAdapter):
        return None
    return None if callable(obj) else "is not a callable model factory"


MODELS: Registry[ModelFactory] = Registry("model", "spellbench.models", _not_a_factory)
_BUILT_IN = {
    "digits": (
        "bench.models.digits:load_digits",
        "embedded class-conditional UNet on 8x8 digits (default, CPU)",
    ),
    "digits-gmm": (
        "bench.models.digits_gmm:load_digits_gmm",
        "exact denoiser of a per-class Gaussian mixture on the digits",
    ),
    "ldm": (
        "bench.models.ldm:load_ldm",
        "CompVis text-to-image latent diffusion 256 (CompVis/ldm-text2im-large-256)",
    ),
    "sd15": (
        "bench.models.sd15:load_sd15",
        "Stable Diffusion 1.5 (text-to-image 512)",
    ),
    "sd3": (
        "bench.models.sd3:load_sd3",
        "Stable Diffusion 3 medium, flow matching (text-to-image 1024)",
    ),
    "dit": (
        "bench.models.dit:load_dit",
        "DiT-XL/2 256, class-conditional ImageNet (facebook/DiT-XL-2-256)",
    ),
    "edm2": (
        "bench.models.edm2:load_edm2",
        "an NVlabs/edm2 network pickle (--model-path or SPELLBENCH_EDM2_PATH)",
    ),
}
for _name, (_target, _description) in _BUILT_IN.items():
    MODELS.register(_name, _target, _description)


def register_model(name: str, factory: ModelFactory | str, description: str) -> None:
    MODELS.register(name, factory, description)


def load_model(name: str, **kwargs) -> ModelAdapter:
    adapter = MODELS.get(name)(**kwargs)
    if not isinstance(adapter, ModelAdapter):
        raise BenchError(
            f"model {name!r} did not return a ModelAdapter: got {type(adapter).__name__}"
        )
    return adapter


def describe_models() -> list[str]:
    """`bench list models`: name and one line each."""
    return [f"{e.name:12s} {e.description or e.source}" for e in MODELS.entries()]
