"""The figures' look, and saving a figure as PNG and SVG side by side.

Figures are made with `matplotlib.figure.Figure` (no pyplot), so building a
report neither needs a display nor leaks figures; the seaborn theme is applied
per figure through an rc context instead of globally.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import wraps
from pathlib import Path
from typing import ParamSpec, TypeVar

import matplotlib
import seaborn as sns
from matplotlib.figure import Figure

from bench.atomic import atomic_write_bytes

P = ParamSpec("P")
R = TypeVar("R")

_RC = {
    **sns.axes_style("whitegrid"),
    **sns.plotting_context("notebook", font_scale=0.9),
    "axes.titleweight": "bold",
    "legend.frameon": True,
    "legend.framealpha": 0.85,
    "svg.hashsalt": "spellbench",
    "svg.fonttype": "path",
}


@contextmanager
def theme() -> Iterator[None]:
    with matplotlib.rc_context(_RC):
        yield


def themed(build: Callable[P, R]) -> Callable[P, R]:
    """Run a figure builder under the report theme."""

    @wraps(build)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        with theme():
            return build(*args, **kwargs)

    return wrapper


def save_figure(fig: Figure, stem: Path) -> tuple[Path, Path]:
    """Write stem.png (150 dpi, for the page) and stem.svg (for papers)."""
    # Not with_suffix: ids such as spell-r2-l1.6 contain dots.
    paths = stem.parent / f"{stem.name}.png", stem.parent / f"{stem.name}.svg"
    with theme():
        for path, fmt in zip(paths, ("png", "svg"), strict=True):
            buf = io.BytesIO()
            fig.savefig(buf, format=fmt, dpi=150, metadata=_metadata(fmt))
            atomic_write_bytes(path, buf.getvalue())
    return paths


def _metadata(fmt: str) -> dict[str, str | None]:
    # No creation date, so an unchanged figure gives byte-identical files.
    return {"Date": None} if fmt == "svg" else {}
