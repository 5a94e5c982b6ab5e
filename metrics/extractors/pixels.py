"""Raw pixels in [0, 1], flattened: a weight-free baseline space."""

from __future__ import annotations

import torch

from metrics.extractors.base import FeatureExtractor


class PixelExtractor(FeatureExtractor):
    name = "pixels"
    dim = None  # H * W * C of whatever images come in
    batch_size = 1024
    threads = 1

    def _batch(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"features": images.flatten(1).float() / 255.0}

    def settings(self) -> dict:
        return {"name": self.name, "layout": "flattened (H, W, C)", "range": "[0, 1]"}


def pixel_extractor(weights_dir: object = None, device: str = "cpu") -> PixelExtractor:
    """No weights: `weights_dir` is accepted for the common factory signature."""
    return PixelExtractor(device)
