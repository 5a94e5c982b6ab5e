"""Prompt adherence: CLIP score, and its class-conditional analogue, the class score."""

from __future__ import annotations

import numpy as np

from metrics.spec import MetricSpec

SPECS = (
    MetricSpec(
        "clip_score", "CLIP score", "100 × cosine", True, "100 * max(cos(image, prompt), 0)"
    ),
    MetricSpec(
        "class_score",
        "Class score",
        "100 × p(class)",
        True,
        "100 * softmax probability of the prompt's class",
    ),
)


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
