"""A run's protected set as scoring sees it: the stored shield vectors (the space SPELL
repels in) and the protected images behind them, for the feature spaces.

A shield index records where its vectors came from (`meta.source` of its manifest): a
digits split, a folder of images (in the sorted order `bench protect build` encoded
them), or the toy2d training points. The images of a point set are the points rendered
as the toy2d model renders its samples, so protected and generated points pass through
the same extractor.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.errors import BenchError
from bench.shields.store import load_vectors, read_manifest

BATCH = 1024  # protected images per extractor call (and per feature-cache file)
TOY2D_POINTS = "toy2d-train"
HELD_OUT = {"digits-train": "digits-held_out", "digits-held_out": "digits-train"}
TOY2D_HELD_OUT_PER_CLASS = 128


@dataclass(frozen=True)
class ProtectedSet:
    index: Path
    radius: float
    source: str
    count: int
    digest: str  # identifies the stored set (its manifest), for the feature cache

    def vectors(self) -> np.ndarray:
        """(N, d) float32 shield vectors, as SPELL sees them."""
        return load_vectors(self.index).float().numpy()

    def images(self, shape: tuple[int, int, int], indices: np.ndarray | None = None) -> np.ndarray:
        """uint8 (n, H, W, C) protected images at the generated images' (H, W, C)."""
        chosen = np.arange(self.count) if indices is None else np.asarray(indices, np.int64)
        if len(chosen) and (chosen.min() < 0 or chosen.max() >= self.count):
            raise BenchError(f"protected image index out of range 0..{self.count - 1}")
        return _load_images(self, shape, chosen)

    def image_batches(self, shape: tuple[int, int, int]) -> Iterator[np.ndarray]:
        for start in range(0, self.count, BATCH):
            yield self.images(shape, np.arange(start, min(start + BATCH, self.count)))

    def held_out_images(self) -> np.ndarray | None:
        """uint8 images drawn like the protected ones but never trained on (the CT test's
        held-out sample): the other digits split, fresh class-balanced samples of the
        toy2d mixture; None when the source has no such counterpart."""
        if self.source in HELD_OUT:
            return _dataset_images(HELD_OUT[self.source], slice(None))
        if self.source == TOY2D_POINTS:
            return _toy2d_held_out()
        return None

    def held_out_description(self) -> str:
        if self.source in HELD_OUT:
            return f"the {HELD_OUT[self.source]} split"
        if self.source == TOY2D_POINTS:
            return f"{TOY2D_HELD_OUT_PER_CLASS} fresh samples per class of the toy2d mixture"
        return "the union of the scored prompts' reference images"


def open_protected_set(index: Path, radius: float) -> ProtectedSet:
    manifest = read_manifest(index)
    source = str((manifest.get("meta") or {}).get("source", ""))
    blob = json.dumps(manifest, sort_keys=True, default=str).encode()
    digest = hashlib.sha256(blob).hexdigest()[:16]
    return ProtectedSet(Path(index), float(radius), source, int(manifest["count"]), digest)


def _load_images(
    protected: ProtectedSet, shape: tuple[int, int, int], indices: np.ndarray
) -> np.ndarray:
    from bench.protect import DATASETS

    if protected.source in DATASETS:
        images = _dataset_images(protected.source, indices)
    elif protected.source == TOY2D_POINTS or _is_points(protected):
        images = _rendered_points(protected, indices)
    elif Path(protected.source).is_dir():
        images = _folder_images(Path(protected.source), shape, indices, protected.count)
    else:
        raise BenchError(
            f"the protected set {protected.index} came from {protected.source or 'an iterable'}"
            ": its images are not on disk, so only its L2 protection rate can be scored"
        )
    if images.shape[1:] != tuple(shape):
        raise BenchError(
            f"protected images are {images.shape[1:]} (H, W, C), generated ones {tuple(shape)}"
        )
    return images


def _is_points(protected: ProtectedSet) -> bool:
    return int(read_manifest(protected.index)["dim"]) == 2


def _dataset_images(name: str, indices: np.ndarray) -> np.ndarray:
    """Rounded to uint8 as the digits reference images are (metrics.references)."""
    from bench.data.digits import load_split
    from metrics.digits_classifier import unit_to_uint8

    return unit_to_uint8(load_split(name.removeprefix("digits-")).images[indices])


def _toy2d_held_out() -> np.ndarray:
    import torch

    from bench.models.toy2d import render_points, toy2d_ground_truth
    from bench.sampler import to_uint8
    from bench.seeding import derive_seed

    truth = toy2d_ground_truth()
    rng = np.random.default_rng(derive_seed("toy2d-held-out"))
    per_class = TOY2D_HELD_OUT_PER_CLASS
    points = [truth.sample(per_class, rng, c) for c in range(truth.num_classes)]
    return to_uint8(render_points(torch.from_numpy(np.concatenate(points))))


def _rendered_points(protected: ProtectedSet, indices: np.ndarray) -> np.ndarray:
    import torch

    from bench.models.toy2d import render_points
    from bench.sampler import to_uint8

    points = torch.from_numpy(protected.vectors()[indices])
    return to_uint8(render_points(points))


def _folder_images(
    folder: Path, shape: tuple[int, int, int], indices: np.ndarray, count: int
) -> np.ndarray:
    """Loaded as reference folders are (bench.data.folders), in `bench protect build`'s
    order."""
    from bench.data.folders import load_images
    from bench.protect import folder_files

    files = folder_files(folder)
    if len(files) != count:
        raise BenchError(f"{folder} now holds {len(files)} images, the protected set {count}")
    height, width, channels = shape
    return load_images([files[i] for i in indices], (height, width), channels)
