"""Prompt adherence: CLIP score, and its class-conditional analogue, the class score."""

from __future__ import annotations

import numpy as np
import torch
from torchmetrics import Metric
from torchmetrics.utilities.data import dim_zero_cat

from metrics.values import Undefined


def clip_scores(image_embeddings: np.ndarray, text_embeddings: np.ndarray) -> np.ndarray:
    """100 * max(cos, 0) for each (image, its prompt) row pair."""
    a = np.asarray(image_embeddings, dtype=np.float64)
    b = np.asarray(text_embeddings, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"image {a.shape} and text {b.shape} embeddings must pair up row by row")
    cos = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    return 100.0 * np.clip(cos, 0.0, None)


def class_scores(probs: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """100 * p(label | image) for each image."""
    p = np.asarray(probs, dtype=np.float64)
    return 100.0 * p[np.arange(len(p)), np.asarray(labels, dtype=np.int64)]


class _MeanOfScores(Metric):
    is_differentiable = False
    higher_is_better = True
    full_state_update = False

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.add_state("scores", default=[], dist_reduce_fx="cat")

    def compute(self) -> float | Undefined:
        if isinstance(self.scores, list) and not self.scores:
            return Undefined("no images")
        return float(dim_zero_cat(self.scores).mean())


class ClipScore(_MeanOfScores):
    """Mean CLIP score over (image embedding, prompt embedding) pairs."""

    def update(self, image_embeddings: torch.Tensor, text_embeddings: torch.Tensor) -> None:
        s = clip_scores(_np(image_embeddings), _np(text_embeddings))
        self.scores.append(torch.as_tensor(s))


class ClassScore(_MeanOfScores):
    """Mean of 100 * p(class) from a classifier's softmax."""

    def update(self, probs: torch.Tensor, labels: torch.Tensor) -> None:
        self.scores.append(torch.as_tensor(class_scores(_np(probs), _np(labels))))


def _np(x: torch.Tensor | np.ndarray) -> np.ndarray:
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
