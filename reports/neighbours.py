"""The paper's Figure 7: the samples closest to the protected set, beside their nearest
protected image, and the same seeds with the protecting method beside theirs.

One grid per space the scorer searched (the shields' own latent space, then each feature
space; RUN/neighbours.npz): row k is the k-th closest sample of the baseline; columns are
(baseline sample, its nearest protected image, the protecting config's sample of the
same prompt and seed, its nearest protected image), each captioned with its distance
(L2) or, in a copy space, its cosine similarity.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from bench.atomic import atomic_write_bytes
from bench.run_dir import RunDir
from metrics.protected_set import open_protected_set
from metrics.run_protection import LATENT_SPACE
from reports.grids import BACKGROUND, TEXT, _cell, _font, _png_bytes, grids_dir

ROWS = 6
CELL = 72
CAPTION = 16


@dataclass(frozen=True)
class Pair:
    """The baseline and the protecting method-config, and what the scorer found."""

    baseline: str
    protecting: str
    found: dict[str, np.ndarray]
    copy_spaces: frozenset[str]


def neighbour_spaces(pair: Pair) -> list[str]:
    """The spaces searched for both configs, the latent space first."""
    spaces = []
    for key in pair.found:
        head, _, tail = key.partition("/")
        space = tail.rpartition("/")[0]
        if head == pair.baseline and tail.endswith("/index") and space not in spaces:
            if f"{pair.protecting}/{space}/index" in pair.found:
                spaces.append(space)
    return sorted(spaces, key=lambda s: (s != LATENT_SPACE, s))


def closest_rows(pair: Pair, space: str, rows: int = ROWS) -> list[tuple[int, int]]:
    """(row in the baseline's arrays, matching row in the protecting config's) of the
    baseline samples closest to the protected set; samples match on prompt and index."""
    value = pair.found[f"{pair.baseline}/{space}/value"]
    order = np.argsort(-value if space in pair.copy_spaces else value, kind="stable")
    found, them = pair.found, pair.protecting
    theirs = zip(found[f"{them}/prompt"], found[f"{them}/sample"], strict=True)
    where = {(p, int(s)): i for i, (p, s) in enumerate(theirs)}
    prompts, samples = pair.found[f"{pair.baseline}/prompt"], pair.found[f"{pair.baseline}/sample"]
    out = []
    for i in order:
        match = where.get((prompts[i], int(samples[i])))
        if match is not None:
            out.append((int(i), match))
        if len(out) == rows:
            break
    return out


def _sample_image(run: RunDir, found: dict, config: str, row: int) -> np.ndarray:
    prompt, sample = str(found[f"{config}/prompt"][row]), int(found[f"{config}/sample"][row])
    return run.load_samples(config, prompt, ("images",))["images"][sample]


def neighbour_grid(run: RunDir, pair: Pair, space: str, protected) -> Image.Image:
    matches = closest_rows(pair, space)
    shape = run.generated_shape()
    step, top = CELL + CAPTION, 2 * CAPTION
    grid = Image.new("RGB", (4 * CELL, len(matches) * step + top), BACKGROUND)
    draw, font = ImageDraw.Draw(grid), _font(11)
    for half, config in enumerate((pair.baseline, pair.protecting)):
        draw.text((2 * half * CELL + 2, 2), config[:22], fill=TEXT, font=font)
        draw.text((2 * half * CELL + 2, CAPTION), "sample", fill=TEXT, font=font)
        draw.text(((2 * half + 1) * CELL + 2, CAPTION), "nearest", fill=TEXT, font=font)
    for r, rows in enumerate(matches):
        y = top + r * step
        configs = (pair.baseline, pair.protecting)
        for half, (config, row) in enumerate(zip(configs, rows, strict=True)):
            index = int(pair.found[f"{config}/{space}/index"][row])
            value = float(pair.found[f"{config}/{space}/value"][row])
            sample = _sample_image(run, pair.found, config, row)
            cells = (sample, protected.images(shape, [index])[0])
            for k, image in enumerate(cells):
                grid.paste(_cell(image, CELL - 4, False, 2), ((2 * half + k) * CELL, y))
            label = f"cos {value:.3f}" if space in pair.copy_spaces else f"d {value:.3g}"
            draw.text((2 * half * CELL + 2, y + CELL), f"{label}  #{index}", fill=TEXT, font=font)
    return grid


def neighbours_path(run: RunDir, space: str) -> Path:
    return grids_dir(run) / f"neighbours-{space}.png"


def write_neighbour_grids(run: RunDir, pair: Pair, protocol: dict) -> list[tuple[str, Path]]:
    """One grid per space, under report/grids/; (space, path) of each written."""
    protected = open_protected_set(Path(protocol["index"]), float(protocol["radius"]))
    written = []
    for space in neighbour_spaces(pair):
        grid = neighbour_grid(run, pair, space, protected)
        atomic_write_bytes(path := neighbours_path(run, space), _png_bytes(grid))
        written.append((space, path))
    return written
