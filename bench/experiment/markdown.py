"""Markdown pieces of the results page: relative links and images (its tables are
reports.table_io's)."""

from __future__ import annotations

import os
from pathlib import Path


def link(target: Path, page: Path) -> str:
    """`target` relative to the page's folder, with forward slashes."""
    return Path(os.path.relpath(target, page.parent)).as_posix()


def image(alt: str, target: Path, page: Path) -> list[str]:
    return [f"![{alt}]({link(target, page)})", ""]
