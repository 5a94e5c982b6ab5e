"""Feature extractors by name (`get_extractor`): digits, pixels, inception, dinov2, clip,
sscd (copy detection), toy2d (the points of the 2-D testbed), and plugins of the
entry-point group `spellbench.extractors`. A factory is called as
`factory(weights_dir=..., device=..., **options)` and returns a FeatureExtractor."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from bench.registry import Registry
from metrics.extractors.base import FeatureExtractor

ExtractorFactory = Callable[..., FeatureExtractor]
EXTRACTORS: Registry[ExtractorFactory] = Registry(
    "feature extractor",
    "spellbench.extractors",
    lambda obj: None if callable(obj) else "is not a callable extractor factory",
    direct_imports=False,
)
for _name, _target in {
    "digits": "metrics.extractors.digits:digits_extractor",
    "pixels": "metrics.extractors.pixels:pixel_extractor",
    "inception": "metrics.extractors.inception:inception_extractor",
    "dinov2": "metrics.extractors.dinov2:dinov2_extractor",
    "clip": "metrics.extractors.clip:clip_extractor",
    "sscd": "metrics.extractors.sscd:sscd_extractor",
    "toy2d": "metrics.extractors.points:point_extractor",
}.items():
    EXTRACTORS.register(_name, _target)


def register_extractor(name: str, factory: ExtractorFactory | str) -> None:
    EXTRACTORS.register(name, factory)


def available_extractors() -> list[str]:
    return EXTRACTORS.names()


def get_extractor(
    name: str, weights_dir: Path | None = None, device: str = "cpu", **options
) -> FeatureExtractor:
    return EXTRACTORS.get(name)(weights_dir=weights_dir, device=device, **options)
