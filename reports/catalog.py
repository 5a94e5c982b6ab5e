"""What the report knows about each metric key of metrics.json: a label with its
unit, which direction is better, and the order the paper's tables use."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class MetricInfo:
    key: str
    name: str
    unit: str
    higher_is_better: bool

    @property
    def arrow(self) -> str:
        return "↑" if self.higher_is_better else "↓"

    @property
    def label(self) -> str:
        """Axis label: name, unit and the better direction."""
        return f"{self.name} ({self.unit}) {self.arrow}"

    @property
    def short(self) -> str:
        """Column header: name and the better direction."""
        return f"{self.name} {self.arrow}"


_KNOWN = {
    "recall": MetricInfo("recall", "Recall", "share of reference", True),
    "vendi": MetricInfo("vendi", "Vendi score", "effective no. of samples", True),
    "coverage": MetricInfo("coverage", "Coverage", "share of reference", True),
    "precision": MetricInfo("precision", "Precision", "share of generated", True),
    "density": MetricInfo("density", "Density", "mean neighbourhood count", True),
    "fid": MetricInfo("fid", "FID", "Fréchet distance, Inception", False),
    "clip_score": MetricInfo("clip_score", "CLIP score", "100 × cosine", True),
    "class_score": MetricInfo("class_score", "Class score", "100 × p(class)", True),
    "protection_rate": MetricInfo(
        "protection_rate", "Within r of protected", "share of generated", False
    ),
}
_ORDER = list(_KNOWN)


def metric_info(key: str) -> MetricInfo:
    """Known keys from the table above; `fd_<extractor>` is a Fréchet distance
    (lower is better); any other key is assumed to be higher-is-better."""
    if key in _KNOWN:
        return _KNOWN[key]
    if key.startswith("fd_"):
        extractor = key[3:]
        pretty = "DINOv2" if extractor == "dinov2" else extractor
        return MetricInfo(key, f"FD {pretty}", f"Fréchet distance, {pretty} features", False)
    return MetricInfo(key, key.replace("_", " "), "value", True)


def _rank(key: str) -> tuple[int, str]:
    if key in _ORDER:
        position = _ORDER.index(key)
        # Fréchet distances of other extractors sit right after FID, as in Table 1.
        return (position if position <= _ORDER.index("fid") else position + 1, key)
    if key.startswith("fd_"):
        return (_ORDER.index("fid") + 1, key)
    return (len(_ORDER) + 1, key)


def ordered(keys: Iterable[str]) -> list[str]:
    """The paper's column order: diversity, quality, distances, adherence, protection."""
    return sorted(set(keys), key=_rank)


def fd_key(keys: Iterable[str]) -> str | None:
    """The Fréchet distance to plot: FD_DINOv2, else another fd_*, else FID."""
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
