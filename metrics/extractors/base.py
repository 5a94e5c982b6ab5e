"""What every feature extractor offers: uint8 images in, float features out, batch by batch."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import numpy as np
import torch

from bench.errors import BenchError
from metrics.threads import intra_op_threads


class FeatureExtractor(ABC):
    """Subclasses set `name` and `dim` and implement `_batch`.

    `extract` returns a dict of float32 arrays, always with "features" (N, dim);
    classifiers add "probs" (N, classes).
    """

    name: str
    dim: int | None
    batch_size: int = 64
    # Intra-op threads during `extract`; None keeps torch's setting. Tiny networks set 1:
    # on CPU their ops are too small to gain from threads and lose much to contention.
    threads: int | None = None

    def __init__(self, device: str = "cpu") -> None:
        self.device = torch.device(device)

    @abstractmethod
    def _batch(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """uint8 (B, H, W, C) on `self.device` -> named float outputs (B, ...)."""

    def settings(self) -> dict[str, Any]:
        """Every setting that changes the outputs: the feature-cache key and the protocol."""
        return {"name": self.name, "dim": self.dim}

    def extract(self, images: np.ndarray, batch_size: int | None = None) -> dict[str, np.ndarray]:
        images = check_uint8_images(images)
        with (
            torch.no_grad(),
            intra_op_threads(self.threads if self.device.type == "cpu" else None),
        ):
            return self._extract(images, batch_size or self.batch_size)

    def _extract(self, images: np.ndarray, step: int) -> dict[str, np.ndarray]:
        parts: dict[str, list[np.ndarray]] = {}
        for start in range(0, len(images), step):
            batch = torch.from_numpy(images[start : start + step]).to(self.device)
            for key, value in self._batch(batch).items():
                parts.setdefault(key, []).append(value.float().cpu().numpy())
        if not parts:
            return {"features": np.zeros((0, self.dim or 0), np.float32)}
        return {key: np.concatenate(chunks) for key, chunks in parts.items()}


def check_uint8_images(images: np.ndarray) -> np.ndarray:
    images = np.asarray(images)
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] not in (1, 3):
        raise BenchError(
            f"feature extractors take uint8 images (N, H, W, 1 or 3), got {images.dtype} "
            f"{images.shape}"
        )
    return np.ascontiguousarray(images)


def to_rgb_nchw(images: torch.Tensor) -> torch.Tensor:
    """uint8 (N, H, W, C) with C in {1, 3} -> uint8 (N, 3, H, W); grey is repeated."""
    x = images.permute(0, 3, 1, 2)
    return x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x


def normalise(x: torch.Tensor, mean: tuple, std: tuple) -> torch.Tensor:
    """Per-channel (x - mean) / std for (N, 3, H, W) images in [0, 1]."""
    m = torch.tensor(mean, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
    s = torch.tensor(std, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
    return (x - m) / s
