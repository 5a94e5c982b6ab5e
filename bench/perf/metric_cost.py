"""Suite 4: the cost of scoring, per 1000 images (a hook the metrics stage plugs into).

`metric_cost` times any scoring callable on N digits-sized images; by default the
embedded `digits` feature extractor, and `metrics.score.score_images` once that
module offers it.
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from bench.errors import BenchError
from bench.perf.report import Record

Scorer = Callable[[np.ndarray], Any]


def digits_images(n: int, seed: int = 0) -> np.ndarray:
    """uint8 (n, 8, 8, 1) images: the held-out digits, repeated up to n."""
    from bench.data.digits import load_split, to_unit_range

    images = (to_unit_range(load_split("held_out").images) * 255).round().astype(np.uint8)
    picks = np.random.default_rng(seed).integers(0, len(images), n)
    return images[picks].transpose(0, 2, 3, 1)


def default_scorers() -> dict[str, Scorer]:
    scorers: dict[str, Scorer] = {}
    try:
        from metrics.extractors.digits import DigitsExtractor

        extractor = DigitsExtractor()
        scorers["digits features"] = extractor.extract
    except (ImportError, BenchError, OSError):
        pass
    try:
        score = importlib.import_module("metrics.score")
    except ImportError:
        score = None
    if score is not None and hasattr(score, "score_images"):
        scorers["metrics.score.score_images"] = score.score_images
    return scorers


def metric_cost(scorers: dict[str, Scorer] | None = None, images: int = 1000) -> list[Record]:
    scorers = default_scorers() if scorers is None else scorers
    if not scorers:
        return [{"scorer": "-", "status": "skipped: no digits extractor weights or metrics.score"}]
    batch = digits_images(images)
    rows = []
    for name, fn in scorers.items():
        fn(batch[:16])  # warm up
        start = time.perf_counter()
        fn(batch)
        seconds = time.perf_counter() - start
        per_1000 = seconds * 1000 / images
        rows.append({"scorer": name, "images": images, "s_per_1000_images": per_1000})
    return rows
