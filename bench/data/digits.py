"""scikit-learn's bundled 8x8 handwritten digits, split per class.

Pixels are scaled from [0, 16] to [-1, 1] (the diffusion space of the digits
models). The split is stratified and fixed: the training split teaches the
embedded models, the held-out split is each class's reference set for metrics.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

NUM_CLASSES = 10
IMAGE_SIZE = 8
HELD_OUT_FRACTION = 0.3
SPLIT_SEED = 0


@dataclass(frozen=True)
class DigitsSplit:
    """Images as float32 (N, 1, 8, 8) in [-1, 1] and int64 labels."""

    images: np.ndarray
    labels: np.ndarray

    def of_class(self, label: int) -> np.ndarray:
        return self.images[self.labels == label]


@lru_cache(maxsize=2)
def load_split(split: str) -> DigitsSplit:
    """`split` is "train" or "held_out"; the same arrays on every call."""
    if split not in ("train", "held_out"):
        raise ValueError(f"unknown digits split {split!r}: use 'train' or 'held_out'")
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    data = load_digits()
    images = (data.images.astype(np.float32) / 16.0) * 2.0 - 1.0
    images = images[:, None, :, :]
    labels = data.target.astype(np.int64)
    train_x, held_x, train_y, held_y = train_test_split(
        images, labels, test_size=HELD_OUT_FRACTION, stratify=labels, random_state=SPLIT_SEED
    )
    if split == "train":
        return DigitsSplit(train_x, train_y)
    return DigitsSplit(held_x, held_y)


def to_unit_range(x: np.ndarray) -> np.ndarray:
    """[-1, 1] -> [0, 1], clipped."""
    return np.clip((x + 1.0) / 2.0, 0.0, 1.0)
