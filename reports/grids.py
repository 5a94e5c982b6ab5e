"""Image grids: rows are prompts, columns the same seeds under each method.

A sample whose trajectory the method changed (non-zero correction at any step)
gets an orange border, so what SPELL touched is visible at a glance.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from bench.run_dir import atomic_write_bytes

ORANGE = (255, 140, 0)
BACKGROUND = (255, 255, 255)


def _cell(image: np.ndarray, size: int, changed: bool, border: int) -> Image.Image:
    """One sample (H, W, C) uint8 upscaled to `size`, framed orange if changed."""
    img = Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image).convert("RGB")
    img = img.resize((size, size), Image.NEAREST)
    framed = Image.new(
        "RGB", (size + 2 * border, size + 2 * border), ORANGE if changed else BACKGROUND
    )
    framed.paste(img, (border, border))
    return framed


def method_grid(
    method_dir: Path, prompt_ids: list[str], columns: int = 16, size: int = 32, border: int = 2
) -> Image.Image:
    """One method's grid: row r = prompt r, column c = sample c (same seed in every method)."""
    step = size + 2 * border
    grid = Image.new("RGB", (columns * step, len(prompt_ids) * step), BACKGROUND)
    for r, prompt_id in enumerate(prompt_ids):
        path = method_dir / f"{prompt_id}.npz"
        if not path.exists():
            continue
        with np.load(path) as data:
            images, active = data["images"], data["trace_active"]
        for c in range(min(columns, len(images))):
            grid.paste(_cell(images[c], size, bool(active[c].any()), border), (c * step, r * step))
    return grid


def _png_bytes(image: Image.Image) -> bytes:
    import io

    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


def comparison_grid(grids: dict[str, Image.Image], gap: int = 12) -> Image.Image:
    """Method grids side by side under their ids."""
    label_h = 16
    width = sum(g.width for g in grids.values()) + gap * (len(grids) - 1)
    height = max(g.height for g in grids.values()) + label_h
    out = Image.new("RGB", (width, height), BACKGROUND)
    draw = ImageDraw.Draw(out)
    x = 0
    for method_id, grid in grids.items():
        draw.text((x + 2, 2), method_id, fill=(0, 0, 0))
        out.paste(grid, (x, label_h))
        x += grid.width + gap
    return out


def write_grids(run_path: Path, columns: int = 16) -> list[Path]:
    """grid-<method-id>.png per method and compare.png, under report/grids/."""
    manifest = json.loads((run_path / "manifest.json").read_text())
    prompt_ids, method_ids = manifest["prompt_ids"], manifest["method_ids"]
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
    return written
