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


MODELS: dict[str, tuple[Callable[..., ModelAdapter], str]] = {
    "digits": (_digits, "embedded class-conditional UNet on 8x8 digits (default, CPU)"),
    "digits-gmm": (_digits_gmm, "exact denoiser of a per-class Gaussian mixture on the digits"),
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
