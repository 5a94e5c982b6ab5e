"""Feature extractors by name: digits, pixels, inception, dinov2, clip (`get_extractor`)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from bench.errors import BenchError
from metrics.extractors.base import FeatureExtractor

ExtractorFactory = Callable[..., FeatureExtractor]
_REGISTRY: dict[str, ExtractorFactory] = {}


def register_extractor(name: str, factory: ExtractorFactory) -> None:
    """`factory(weights_dir=..., device=..., **options)` builds the extractor."""
    _REGISTRY[name] = factory


def available_extractors() -> list[str]:
    return sorted(_REGISTRY)


def get_extractor(
    name: str, weights_dir: Path | None = None, device: str = "cpu", **options
) -> FeatureExtractor:
    if name not in _REGISTRY:
        raise BenchError(f"unknown feature extractor {name!r}: use one of {available_extractors()}")
    return _REGISTRY[name](weights_dir=weights_dir, device=device, **options)


def _digits(weights_dir: Path | None = None, device: str = "cpu") -> FeatureExtractor:
    from metrics.digits_classifier import WEIGHTS
    from metrics.extractors.digits import DigitsExtractor

    local = Path(weights_dir) / WEIGHTS.name if weights_dir is not None else None
    return DigitsExtractor(local if local is not None and local.is_file() else WEIGHTS, device)


def _pixels(weights_dir: Path | None = None, device: str = "cpu") -> FeatureExtractor:
    from metrics.extractors.pixels import PixelExtractor

    return PixelExtractor(device)


def _inception(weights_dir: Path | None = None, device: str = "cpu") -> FeatureExtractor:
    from metrics.extractors.inception import inception_extractor

    return inception_extractor(weights_dir, device)


def _dinov2(weights_dir: Path | None = None, device: str = "cpu", **options) -> FeatureExtractor:
    from metrics.extractors.dinov2 import dinov2_extractor

    return dinov2_extractor(weights_dir, device, **options)


def _clip(weights_dir: Path | None = None, device: str = "cpu", **options) -> FeatureExtractor:
    from metrics.extractors.clip import clip_extractor

    return clip_extractor(weights_dir, device, **options)


for _name, _factory in {
    "digits": _digits,
    "pixels": _pixels,
    "inception": _inception,
    "dinov2": _dinov2,
    "clip": _clip,
}.items():
    register_extractor(_name, _factory)
