"""The embedded digits classifier as a feature extractor: features and class probabilities."""

from __future__ import annotations

from pathlib import Path

import torch

from metrics.digits_classifier import WEIGHTS, load_digits_classifier, uint8_to_input
from metrics.extractors.base import FeatureExtractor
from metrics.extractors.weights import file_fingerprint


class DigitsExtractor(FeatureExtractor):
    name = "digits"
    batch_size = 512
    threads = 1
    # Cosine above which a sample counts as a copy of a protected digit: 5% of the
    # held-out digits, which the classifier and the model never saw, are that close to a
    # training digit (tests/test_protection_scores.py), as 0.5 is to SSCD.
    copy_threshold = 0.998

    def __init__(self, weights: Path = WEIGHTS, device: str = "cpu") -> None:
        super().__init__(device)
        self.weights = Path(weights)
        self.net = load_digits_classifier(self.weights).to(self.device)
        self.dim = self.net.feature_dim

    def _batch(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        feats, logits = self.net(uint8_to_input(images))
        return {"features": feats, "probs": logits.softmax(dim=1)}

    def settings(self) -> dict:
        return {
            "name": self.name,
            "dim": self.dim,
            "weights": file_fingerprint(self.weights),
            "input": "uint8 8x8 grey -> [-1, 1]",
        }


def digits_extractor(weights_dir: Path | None = None, device: str = "cpu") -> DigitsExtractor:
    """The committed classifier, or a copy of its file in `weights_dir` when present."""
    local = Path(weights_dir) / WEIGHTS.name if weights_dir is not None else None
    return DigitsExtractor(local if local is not None and local.is_file() else WEIGHTS, device)
