"""One colour and marker per method, the same in every figure of every report.

Built-in methods have fixed colours (colour-blind safe); other methods take the
remaining colours in the sorted order of their names.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from matplotlib.colors import to_hex, to_rgb

_FIXED = {
    "none": "#333333",
    "spell": "#0173b2",
    "pg": "#029e73",
    "ig": "#cc78bc",
    "cads": "#de8f05",
    "cfg": "#ca9161",
}
_SPARE = ["#d55e00", "#56b4e9", "#949494", "#fbafe4", "#ece133", "#8c564b", "#17becf"]
_MARKERS = {"none": "*", "spell": "o", "pg": "s", "ig": "^", "cads": "D", "cfg": "v"}
_SPARE_MARKERS = ["P", "X", "h", "<", ">", "p"]


def method_colors(methods: Iterable[str]) -> dict[str, str]:
    colors = {m: _FIXED[m] for m in methods if m in _FIXED}
    others = sorted({m for m in methods if m not in _FIXED})
    for i, method in enumerate(others):
        colors[method] = _SPARE[i % len(_SPARE)]
    return colors


def method_markers(methods: Iterable[str]) -> dict[str, str]:
    markers = {m: _MARKERS[m] for m in methods if m in _MARKERS}
    others = sorted({m for m in methods if m not in _MARKERS})
    for i, method in enumerate(others):
        markers[method] = _SPARE_MARKERS[i % len(_SPARE_MARKERS)]
    return markers


def shades(color: str, n: int) -> list[str]:
    """n shades of a method's colour, light to dark, for the configs of one sweep."""
    if n == 1:
        return [to_hex(color)]
    rgb = np.array(to_rgb(color))
    out = []
    for f in np.linspace(-0.55, 0.4, n):
        mixed = rgb + (1 - rgb) * -f if f < 0 else rgb * (1 - f)
        out.append(to_hex(mixed))
    return out
