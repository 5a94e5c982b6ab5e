"""Differentiable feature maps x0 -> features for the feature-space methods
(spell-feature, pg-feature): the metrics' own feature extractor applied to decode(x0).

Per model: `digits` and `digits-gmm` use the digits classifier's feature layer (the
`digits` extractor's features), the toy2d models the point itself (the `toy2d`
extractor maps a rendered point back to it), every other model DINOv2's CLS token
(the `dinov2` extractor, local weights only).

The extractors take uint8 images; these maps skip that rounding (a step function, of
zero gradient) and feed the decoded [0, 1] images straight into the extractor's own
preprocessing and network, so they equal the extractor's features up to the 1/255
quantisation. `decode` clamps to [0, 1]: pixels strictly outside get zero gradient.
Every map works row by row (no batch statistics), so its Jacobian is block diagonal.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

import torch

from metrics.extractors import get_extractor

DIGITS_MODELS = ("digits", "digits-gmm")
# Suggested spell-feature radii (see `FeatureMap.radius`): toy2d as SPELL's own radius
# on toy2d (the points are the features); digits from the nearest-neighbour feature
# distances of plain samples (docstring of methods/spell_feature.py).
DIGITS_RADIUS = 1.5
TOY2D_RADIUS = 0.02


@dataclass(frozen=True)
class FeatureMap:
    """x0 (N, *latent) -> features (N, dim), differentiable. `space` names the feature
    space (the extractor); `radius` is a suggested shield radius there, None where no
    calibrated value exists (DINOv2: set the method's radius)."""

    space: str
    fn: Callable[[torch.Tensor], torch.Tensor]
    dim: int
    radius: float | None = None

    def __call__(self, x0: torch.Tensor) -> torch.Tensor:
        return self.fn(x0)


@functools.cache
def _extractor(name: str, device: str):
    # The sampler calls feature_map_for under inference mode: weights loaded there would
    # be inference tensors, which autograd cannot save for backward.
    with torch.inference_mode(False):
        return get_extractor(name, device=device)


def digits_feature_map(decode: Callable, net: torch.nn.Module) -> FeatureMap:
    """The digits classifier's features of decode(x0), as the `digits` extractor's
    (its input is the image in [-1, 1])."""

    def fn(x0: torch.Tensor) -> torch.Tensor:
        return net.features(decode(x0).float() * 2.0 - 1.0)

    return FeatureMap("digits", fn, int(net.feature_dim), DIGITS_RADIUS)


def point_feature_map() -> FeatureMap:
    """toy2d: the point itself."""
    return FeatureMap("toy2d", lambda x0: x0.flatten(1), 2, TOY2D_RADIUS)


def dinov2_feature_map(decode: Callable, extractor) -> FeatureMap:
    """DINOv2 features of decode(x0) through the extractor's own preprocessing (fed the
    [0, 1] image scaled to [0, 255] in the uint8 layout it expects) and network."""
    from metrics.extractors.dinov2 import preprocess

    net = extractor.net

    def fn(x0: torch.Tensor) -> torch.Tensor:
        unit = decode(x0).float().to(extractor.device)
        return net(preprocess(unit.permute(0, 2, 3, 1) * 255.0))

    return FeatureMap("dinov2", fn, int(extractor.dim), None)


def feature_map_for(model) -> FeatureMap:
    """The feature map of `model`'s feature space (module docstring), on its device."""
    device = str(model.device)
    if model.name in DIGITS_MODELS:
        return digits_feature_map(model.decode, _extractor("digits", device).net)
    if model.name.startswith("toy2d"):
        return point_feature_map()
    return dinov2_feature_map(model.decode, _extractor("dinov2", device))
