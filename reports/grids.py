"""Image grids of the same seeds under each method (the paper's Figures 1 and 6).

A sample whose trajectory the method changed (non-zero correction at any step)
gets an orange border, so what SPELL touched is visible at a glance. Methods
that never correct x0 (guidance or condition changes) have all-zero traces and
so no borders: the border marks a correction, not a difference in pixels.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from bench.atomic import atomic_write_bytes
from bench.run_dir import RunDir

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


def _row(
    run: RunDir, method_id: str, prompt_id: str, columns: int, size: int, border: int
) -> list[Image.Image]:
    """The first `columns` samples of one prompt as framed cells."""
    if not run.is_complete(method_id, prompt_id):
        return []
    data = run.load_samples(method_id, prompt_id, ("images", "trace_active"))
    images = data["images"][:columns]
    active = data.get("trace_active", np.zeros((len(images), 1), bool))[:columns]
    return [_cell(images[c], size, bool(active[c].any()), border) for c in range(len(images))]


def method_grid(
    run: RunDir,
    method_id: str,
    prompt_ids: list[str],
    columns: int = 16,
    size: int = 32,
    border: int = 2,
) -> Image.Image:
    """One method's grid: row r = prompt r, column c = sample c (same seed in every method)."""
    step = size + 2 * border
    grid = Image.new("RGB", (columns * step, len(prompt_ids) * step), BACKGROUND)
    for r, prompt_id in enumerate(prompt_ids):
        for c, cell in enumerate(_row(run, method_id, prompt_id, columns, size, border)):
            grid.paste(cell, (c * step, r * step))
    return grid


def prompt_grid(
    run: RunDir,
    prompt_id: str,
    method_ids: list[str],
    columns: int = 16,
    size: int | None = None,
    border: int = 2,
) -> Image.Image:
    """One prompt: row m = method-config m, column c = sample c, ids on the left.
    Cells are 28 px for tiny images (two grids fit a page width), 96 px otherwise."""
    if size is None:
        size = _cell_size(run, prompt_id, method_ids)
    step = size + 2 * border
    font = _font()
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    label_w = int(max(probe.textlength(m, font=font) for m in method_ids)) + 12
    grid = Image.new("RGB", (label_w + columns * step, len(method_ids) * step), BACKGROUND)
    draw = ImageDraw.Draw(grid)
    for r, method_id in enumerate(method_ids):
        draw.text((4, r * step + step // 2), method_id, fill=TEXT, font=font, anchor="lm")
        for c, cell in enumerate(_row(run, method_id, prompt_id, columns, size, border)):
            grid.paste(cell, (label_w + c * step, r * step))
    return grid


def _cell_size(run: RunDir, prompt_id: str, method_ids: list[str]) -> int:
    for method_id in method_ids:
        if run.is_complete(method_id, prompt_id):
            images = run.load_samples(method_id, prompt_id, ("images",))["images"]
            return 28 if images.shape[1] <= 32 else 96
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


def grids_dir(run: RunDir) -> Path:
    return run.report / "grids"


def prompt_grid_path(run: RunDir, prompt_id: str) -> Path:
    return grids_dir(run) / f"prompt-{prompt_id}.png"


def method_grid_path(run: RunDir, method_id: str) -> Path:
    return grids_dir(run) / f"grid-{method_id}.png"


def compare_grid_path(run: RunDir) -> Path:
    return grids_dir(run) / "compare.png"


def write_grids(
    run: RunDir,
    columns: int = 16,
    max_prompts: int = 10,
    method_ids: list[str] | None = None,
    prompt_ids: list[str] | None = None,
) -> list[Path]:
    """grid-<method-id>.png per method, compare.png, and prompt-<prompt-id>.png for
    the first `max_prompts` prompts, under report/grids/. Ids default to the run's."""
    method_ids = run.method_ids() if method_ids is None else method_ids
    prompt_ids = run.prompt_ids() if prompt_ids is None else prompt_ids
    grids = {m: method_grid(run, m, prompt_ids, columns) for m in method_ids}
    written = []
    for method_id, grid in grids.items():
        atomic_write_bytes(path := method_grid_path(run, method_id), _png_bytes(grid))
        written.append(path)
    atomic_write_bytes(path := compare_grid_path(run), _png_bytes(comparison_grid(grids)))
    written.append(path)
    for prompt_id in prompt_ids[:max_prompts]:
        grid = prompt_grid(run, prompt_id, method_ids, columns)
        atomic_write_bytes(path := prompt_grid_path(run, prompt_id), _png_bytes(grid))
        written.append(path)
    return written
