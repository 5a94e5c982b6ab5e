"""The embedded `digits` feature network: a small CNN classifier of 8x8 digits.

Its penultimate layer gives the features for precision/recall/density/coverage,
Vendi and FD; its softmax gives the class score. The weights ship with the
project (`metrics/weights/digits_classifier.safetensors`) and are reproducible
with `train_digits_classifier`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, safe_open
from torch import nn

from bench.data.digits import IMAGE_SIZE, NUM_CLASSES
from bench.errors import BenchError

WEIGHTS = Path(__file__).resolve().parent / "weights" / "digits_classifier.safetensors"
FEATURE_DIM = 32
FORMAT = "spellbench-digits-classifier-v1"


class DigitsClassifier(nn.Module):
    """(N, 1, 8, 8) in [-1, 1] -> features (N, FEATURE_DIM) and logits (N, 10)."""

    def __init__(self, feature_dim: int = FEATURE_DIM, dropout: float = 0.2) -> None:
        super().__init__()
        self.feature_dim = feature_dim
        self.conv = nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1),
            nn.GELU(),
            nn.Conv2d(32, 32, 3, padding=1),
            nn.GELU(),
            nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1),
            nn.GELU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
        )
        flat = 64 * (IMAGE_SIZE // 4) ** 2
        self.embed = nn.Sequential(nn.Dropout(dropout), nn.Linear(flat, feature_dim), nn.GELU())
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(feature_dim, NUM_CLASSES))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.embed(self.conv(x))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        feats = self.features(x)
        return feats, self.head(feats)


def uint8_to_input(images: torch.Tensor) -> torch.Tensor:
    """uint8 (N, 8, 8, 1) -> float32 (N, 1, 8, 8) in [-1, 1]."""
    if images.dtype != torch.uint8:
        raise BenchError(f"digits features need uint8 images, got {images.dtype}")
    if tuple(images.shape[1:]) != (IMAGE_SIZE, IMAGE_SIZE, 1):
        raise BenchError(
            f"digits features need images of shape (N, 8, 8, 1), got {tuple(images.shape)}"
        )
    return images.permute(0, 3, 1, 2).float() / 127.5 - 1.0


def unit_to_uint8(images: np.ndarray) -> np.ndarray:
    """Float (N, C, H, W) in [-1, 1] -> uint8 (N, H, W, C), rounded like the sampler."""
    x = np.clip((np.asarray(images, dtype=np.float64) + 1.0) / 2.0, 0.0, 1.0)
    return np.round(x * 255.0).astype(np.uint8).transpose(0, 2, 3, 1)


def load_digits_classifier(path: Path = WEIGHTS) -> DigitsClassifier:
    if not Path(path).exists():
        raise BenchError(
            f"digits classifier weights missing at {path}: run `bench train digits-features`"
        )
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata() or {}
    net = DigitsClassifier(feature_dim=int(meta.get("feature_dim", FEATURE_DIM)))
    net.load_state_dict(load_file(str(path)))
    return net.eval().requires_grad_(False)
