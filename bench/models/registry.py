"""Models by name: adapter factories (`factory(**kwargs) -> ModelAdapter`), imported
lazily (diffusers pipelines pull in transformers), plugins of the entry-point group
`spellbench.models`, and `module:factory` for anything else."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import TYPE_CHECKING

from bench.errors import BenchError
from bench.registry import Registry

if TYPE_CHECKING:  # torch and diffusers only when a model is loaded
    from bench.models.base import ModelAdapter

ModelFactory = Callable[..., "ModelAdapter"]


def _not_a_factory(obj) -> str | None:
    """An adapter class or any other callable is a factory."""
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
    "mdt": (
        "bench.models.mdt:load_mdt",
        "MDTv2-XL/2 256, class-conditional ImageNet (sail-sg/MDT checkpoint, --model-path)",
    ),
    "mdm": (
        "bench.models.mdm:load_mdm",
        "ml-mdm's pixel UNet, the SPELL paper's Simple Diffusion (apple/ml-mdm, --model-path)",
    ),
    "edm2": (
        "bench.models.edm2:load_edm2",
        "an NVlabs/edm2 network pickle (--model-path or SPELLBENCH_EDM2_PATH)",
    ),
    "toy2d": (
        "bench.models.toy2d:load_toy2d",
        "2-D class mixture, learned MLP denoiser: guidance trades diversity for quality (CPU)",
    ),
    "toy2d-exact": (
        "bench.models.toy2d:load_toy2d_exact",
        "2-D class mixture, its exact posterior-mean denoiser",
    ),
    "toy2d-weak": (
        "bench.models.toy2d:load_toy2d_weak",
        "2-D class mixture, a smaller, shorter-trained MLP (autoguidance's guide)",
    ),
}
for _name, (_target, _description) in _BUILT_IN.items():
    MODELS.register(_name, _target, _description)


def register_model(name: str, factory: ModelFactory | str, description: str) -> None:
    MODELS.register(name, factory, description)


# Models whose true distribution is known declare it here (a factory of a GroundTruth,
# bench/models/ground_truth.py): scoring then adds the exact metrics (metrics/exact.py).
GROUND_TRUTHS: Registry[Callable[[], object]] = Registry("ground truth", direct_imports=False)
for _name in ("toy2d", "toy2d-exact", "toy2d-weak"):
    GROUND_TRUTHS.register(_name, "bench.models.toy2d:toy2d_ground_truth")
GROUND_TRUTHS.register("digits-gmm", "bench.models.ground_truth:digits_gmm_ground_truth")


def ground_truth(model: str):
    """The model's true distribution (a GroundTruth), or None when it is not known."""
    return GROUND_TRUTHS.get(model)() if model in GROUND_TRUTHS else None


def _check_arguments(name: str, factory: ModelFactory, kwargs: dict) -> None:
    """A factory takes the keywords a run passes (`os:getcwd` does not)."""
    try:
        signature = inspect.signature(factory)
    except (TypeError, ValueError):  # some builtins have none; the call decides
        return
    try:
        signature.bind(**kwargs)
    except TypeError as err:
        raise BenchError(
            f"model {name!r} is not a model factory: it cannot be called with "
            f"{', '.join(f'{k}=' for k in kwargs)} ({err})"
        ) from err


def load_model(name: str, **kwargs) -> ModelAdapter:
    from bench.models.base import ModelAdapter

    factory = MODELS.get(name)
    _check_arguments(name, factory, kwargs)
    adapter = factory(**kwargs)
    if not isinstance(adapter, ModelAdapter):
        raise BenchError(
            f"model {name!r} did not return a ModelAdapter: got {type(adapter).__name__}"
        )
    return adapter


def describe_models() -> list[str]:
    """`bench list models`: name and one line each."""
    return [f"{e.name:12s} {e.description or e.source}" for e in MODELS.entries()]
