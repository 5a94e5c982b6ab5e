"""Which metrics the report puts on its axes: the paper's Figure 4 pairs."""

from __future__ import annotations

from collections.abc import Iterable


def fd_key(keys: Iterable[str]) -> str | None:
    """The Frechet distance to plot: FD_DINOv2, else another fd_*, else FID."""
    keys = set(keys)
    if "fd_dinov2" in keys:
        return "fd_dinov2"
    others = sorted(k for k in keys if k.startswith("fd_"))
    if others:
        return others[0]
    return "fid" if "fid" in keys else None


def adherence_key(keys: Iterable[str]) -> str | None:
    """CLIP score for text prompts, the class score for class-conditional models."""
    keys = set(keys)
    for key in ("clip_score", "class_score"):
        if key in keys:
            return key
    return None


def pareto_pairs(keys: Iterable[str]) -> list[tuple[str, str]]:
    """(x, y) pairs of Figure 4: quality on x, diversity (or adherence) on y."""
    keys = set(keys)
    adherence, fd = adherence_key(keys), fd_key(keys)
    candidates = [
        ("precision", "recall"),
        ("density", "coverage"),
        (adherence, "vendi"),
        (fd, adherence),
    ]
    return [(x, y) for x, y in candidates if x in keys and y in keys]
