"""Model registry: names -> adapter factories, plus `module:factory` for anything else."""

from __future__ import annotations

import importlib
from collections.abc import Callable

from bench.errors import BenchError
from bench.models.base import ModelAdapter


def _digits(**kwargs) -> ModelAdapter:
    from bench.models.digits import DigitsAdapter

    return DigitsAdapter(device=kwargs.get("device", "cpu"))


def _digits_gmm(**kwargs) -> ModelAdapter:
    from bench.models.digits_gmm import DigitsGMMAdapter

    return DigitsGMMAdapter(device=kwargs.get("device", "cpu"))


def _lazy(module: str, factory: str) -> Callable[..., ModelAdapter]:
    """Import the adapter module only when the model is loaded (diffusers pipelines
    pull in transformers)."""

    def load(**kwargs) -> ModelAdapter:
        return getattr(importlib.import_module(module), factory)(**kwargs)

    return load


MODELS: dict[str, tuple[Callable[..., ModelAdapter], str]] = {
    "digits": (_digits, "embedded class-conditional UNet on 8x8 digits (default, CPU)"),
    "digits-gmm": (_digits_gmm, "exact denoiser of a per-class Gaussian mixture on the digits"),
    "ldm": (
        _lazy("bench.models.ldm", "load_ldm"),
        "CompVis text-to-image latent diffusion 256 (CompVis/ldm-text2im-large-256)",
    ),
    "sd15": (_lazy("bench.models.sd15", "load_sd15"), "Stable Diffusion 1.5 (text-to-image 512)"),
    "sd3": (
        _lazy("bench.models.sd3", "load_sd3"),
        "Stable Diffusion 3 medium, flow matching (text-to-image 1024)",
    ),
    "dit": (
        _lazy("bench.models.dit", "load_dit"),
        "DiT-XL/2 256, class-conditional ImageNet (facebook/DiT-XL-2-256)",
    ),
    "edm2": (
        _lazy("bench.models.edm2", "load_edm2"),
        "an NVlabs/edm2 network pickle (--model-path or SPELLBENCH_EDM2_PATH)",
    ),
}


def register_model(name: str, factory: Callable[..., ModelAdapter], description: str) -> None:
    MODELS[name] = (factory, description)


def load_model(name: str, **kwargs) -> ModelAdapter:
    if ":" in name:
        module_name, _, attr = name.partition(":")
        try:
            factory = getattr(importlib.import_module(module_name), attr)
        except (ImportError, AttributeError) as err:
            raise BenchError(f"cannot import model factory {name!r}: {err}") from err
        return factory(**kwargs)
    if name not in MODELS:
        raise BenchError(f"unknown model {name!r}; available: {', '.join(MODELS)}")
    return MODELS[name][0](**kwargs)
