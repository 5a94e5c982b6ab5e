"""`toy2d`: the feature space of the 2-D testbed. An image of a rendered point is mapped
back to its point (the intensity centroid), and the exact class posterior of that point
under the true mixture is its "classifier" output, so the standard metrics (P/R/D/C,
Vendi, FD, class score) of a toy2d run live in the plane the model samples."""

from __future__ import annotations

import numpy as np
import torch
from scipy.special import logsumexp

from metrics.extractors.base import FeatureExtractor


class PointExtractor(FeatureExtractor):
    name = "toy2d"
    dim = 2
    batch_size = 4096
    threads = 1

    def __init__(self, device: str = "cpu") -> None:
        super().__init__(device)
        from bench.models.toy2d import toy2d_ground_truth

        self.truth = toy2d_ground_truth()

    def _batch(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        from bench.models.toy2d import centroid_points

        unit = images.permute(0, 3, 1, 2).float() / 255.0
        points = centroid_points(unit).double().cpu().numpy()
        return {
            "features": torch.from_numpy(points),
            "probs": torch.from_numpy(self._posterior(points)),
        }

    def _posterior(self, points: np.ndarray) -> np.ndarray:
        """p(class | x) under the true mixture and the class frequencies."""
        freq = self.truth.classes.class_freq
        joint = np.stack(
            [np.log(freq[c]) + self.truth.log_prob(points, c) for c in range(len(freq))], axis=1
        )
        return np.exp(joint - logsumexp(joint, axis=1, keepdims=True))

    def settings(self) -> dict:
        return {
            "name": self.name,
            "dim": self.dim,
            "input": "a rendered point -> its intensity centroid (bench.models.toy2d)",
            "probs": "exact class posterior under the true mixture",
        }


def point_extractor(weights_dir: object = None, device: str = "cpu") -> PointExtractor:
    """No weights: `weights_dir` is accepted for the common factory signature."""
    return PointExtractor(device)
