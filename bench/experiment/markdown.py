"""Markdown pieces of the results page: pipe tables and relative links."""

from __future__ import annotations

import os
from pathlib import Path


def pipe_table(headers: list[str], rows: list[list[str]]) -> list[str]:
    """A GitHub pipe table (`| --- |` rule), then a blank line."""

    def row(cells: list[str]) -> str:
        return "| " + " | ".join(cells) + " |"

    return [row(headers), row(["---"] * len(headers)), *(row(r) for r in rows), ""]


def link(target: Path, page: Path) -> str:
    """`target` relative to the page's folder, with forward slashes."""
    return Path(os.path.relpath(target, page.parent)).as_posix()


def image(alt: str, target: Path, page: Path) -> list[str]:
    return [f"![{alt}]({link(target, page)})", ""]
