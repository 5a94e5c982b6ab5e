"""Image grids of the same seeds under each method (the paper's Figures 1 and 6).

A sample whose trajectory the method changed (non-zero correction at any step)
gets an orange border, so what SPELL touched is visible at a glance. Methods
that never correct x0 (guidance or condition changes) have all-zero traces and
so no borders: the border marks a correction, not a difference in pixels.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from bench.atomic import atomic_write_bytes

ORANGE = (255, 140, 0)
BACKGROUND = (255, 255, 255)
TEXT = (20, 20, 20)
FONT_SIZE = 14


def _font(size: int = FONT_SIZE) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    return ImageFont.load_default(size=size)


def _cell(image: np.ndarray, size: int, changed: bool, border: int) -> Image.Image:
    """One sample (H, W, C) uint8 upscaled to `size`, framed orange if changed."""
    img = Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image).convert("RGB")
    img = img.resize((size, size), Image.NEAREST)
    framed = Image.new(
        "RGB", (size + 2 * border, size + 2 * border), ORANGE if changed else BACKGROUND
    )
    framed.paste(img, (border, border))
    return framed


def _row(path: Path, columns: int, size: int, border: int) -> list[Image.Image]:
    """The first `columns` samples of one prompt file as framed cells."""
    if not path.exists():
        return []
    with np.load(path) as data:
        images = data["images"][:columns]
        traced = "trace_active" in data.files
        active = data["trace_active"][:columns] if traced else np.zeros((len(images), 1), bool)
    return [_cell(images[c], size, bool(active[c].any()), border) for c in range(len(images))]


def method_grid(
    method_dir: Path, prompt_ids: list[str], columns: int = 16, size: int = 32, border: int = 2
) -> Image.Image:
    """One method's grid: row r = prompt r, column c = sample c (same seed in every method)."""
    step = size + 2 * border
    grid = Image.new("RGB", (columns * step, len(prompt_ids) * step), BACKGROUND)
    for r, prompt_id in enumerate(prompt_ids):
        for c, cell in enumerate(_row(method_dir / f"{prompt_id}.npz", columns, size, border)):
            grid.paste(cell, (c * step, r * step))
    return grid


def prompt_grid(
    samples_dir: Path,
    prompt_id: str,
    method_ids: list[str],
    columns: int = 16,
    size: int | None = None,
    border: int = 2,
) -> Image.Image:
    """One prompt: row m = method-config m, column c = sample c, ids on the left.
    Cells are 28 px for tiny images (two grids fit a page width), 96 px otherwise."""
    if size is None:
        size = _cell_size(samples_dir, prompt_id, method_ids)
    step = size + 2 * border
    font = _font()
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    label_w = int(max(probe.textlength(m, font=font) for m in method_ids)) + 12
    grid = Image.new("RGB", (label_w + columns * step, len(method_ids) * step), BACKGROUND)
    draw = ImageDraw.Draw(grid)
    for r, method_id in enumerate(method_ids):
        draw.text((4, r * step + step // 2), method_id, fill=TEXT, font=font, anchor="lm")
        for c, cell in enumerate(
            _row(samples_dir / method_id / f"{prompt_id}.npz", columns, size, border)
        ):
            grid.paste(cell, (label_w + c * step, r * step))
    return grid


def _cell_size(samples_dir: Path, prompt_id: str, method_ids: list[str]) -> int:
    for method_id in method_ids:
        path = samples_dir / method_id / f"{prompt_id}.npz"
        if path.exists():
            with np.load(path) as data:
                return 28 if data["images"].shape[1] <= 32 else 96
    return 28


def _png_bytes(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


def comparison_grid(grids: dict[str, Image.Image], gap: int = 16) -> Image.Image:
    """Method grids side by side under their ids."""
    label_h = FONT_SIZE + 8
    width = sum(g.width for g in grids.values()) + gap * (len(grids) - 1)
    height = max(g.height for g in grids.values()) + label_h
    out = Image.new("RGB", (width, height), BACKGROUND)
    draw = ImageDraw.Draw(out)
    font = _font()
    x = 0
    for method_id, grid in grids.items():
        draw.text((x + 2, 3), method_id, fill=TEXT, font=font)
        out.paste(grid, (x, label_h))
        x += grid.width + gap
    return out


def prompt_grid_path(run_path: Path, prompt_id: str) -> Path:
    return run_path / "report" / "grids" / f"prompt-{prompt_id}.png"


def write_grids(
    run_path: Path,
    columns: int = 16,
    max_prompts: int = 10,
    method_ids: list[str] | None = None,
    prompt_ids: list[str] | None = None,
) -> list[Path]:
    """grid-<method-id>.png per method, compare.png, and prompt-<prompt-id>.png for
    the first `max_prompts` prompts, under report/grids/. Ids default to the manifest's."""
    if method_ids is None or prompt_ids is None:
        manifest = json.loads((run_path / "manifest.json").read_text())
        method_ids = manifest["method_ids"] if method_ids is None else method_ids
        prompt_ids = manifest["prompt_ids"] if prompt_ids is None else prompt_ids
    out_dir = run_path / "report" / "grids"
    grids = {m: method_grid(run_path / "samples" / m, prompt_ids, columns) for m in method_ids}
    written = []
    for method_id, grid in grids.items():
        path = out_dir / f"grid-{method_id}.png"
        atomic_write_bytes(path, _png_bytes(grid))
        written.append(path)
    path = out_dir / "compare.png"
    atomic_write_bytes(path, _png_bytes(comparison_grid(grids)))
    written.append(path)
    for prompt_id in prompt_ids[:max_prompts]:
        path = prompt_grid_path(run_path, prompt_id)
        grid = prompt_grid(run_path / "samples", prompt_id, method_ids, columns)
        atomic_write_bytes(path, _png_bytes(grid))
        written.append(path)
    return written
