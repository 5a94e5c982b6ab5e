"""Reference images in local folders: listing them, and loading them as uint8 arrays.

Images whose size differs from the generated images are centre-cropped to the
generated aspect ratio, then resized (bicubic), as reference sets for FID at a
fixed resolution are usually prepared.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from bench.errors import BenchError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp")


def image_files(folder: Path) -> list[Path]:
    """The image files directly inside `folder`, sorted by name."""
    folder = Path(folder)
    if not folder.is_dir():
        raise BenchError(f"reference image folder {folder} not found")
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


def load_images(paths: list[Path], size: tuple[int, int], channels: int) -> np.ndarray:
    """uint8 (N, H, W, C) with (H, W) = `size` and C = `channels` (1 or 3)."""
    out = np.empty((len(paths), *size, channels), np.uint8)
    for i, path in enumerate(paths):
        out[i] = load_image(path, size, channels)
    return out


def load_image(path: Path, size: tuple[int, int], channels: int) -> np.ndarray:
    try:
        with Image.open(path) as image:
            image = fit(image.convert("L" if channels == 1 else "RGB"), size)
    except (OSError, UnidentifiedImageError) as err:
        raise BenchError(f"cannot read reference image {path}: {err}") from err
    array = np.asarray(image, dtype=np.uint8)
    return array[..., None] if channels == 1 else array


def fit(image: Image.Image, size: tuple[int, int]) -> Image.Image:
    """Centre crop to the aspect ratio of `size` = (H, W), then resize to it."""
    height, width = size
    if (image.height, image.width) == (height, width):
        return image
    crop_w = min(image.width, round(image.height * width / height))
    crop_h = min(image.height, round(image.width * height / width))
    left, top = (image.width - crop_w) // 2, (image.height - crop_h) // 2
    image = image.crop((left, top, left + crop_w, top + crop_h))
    return image.resize((width, height), Image.Resampling.BICUBIC)
