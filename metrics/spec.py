"""`MetricSpec`: what a metric says about itself, declared next to its code.

The report (axis labels, table headers, arrows), the protocol of metrics.json and
`bench regress` read these, so a metric's name, direction and definition live in
one place.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class MetricSpec:
    key: str  # its key in metrics.json
    name: str  # what a reader calls it
    unit: str
    higher_is_better: bool
    definition: str = ""  # one line for the protocol and the report

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


def pretty_space(extractor: str) -> str:
    return "DINOv2" if extractor == "dinov2" else extractor


@dataclass(frozen=True)
class SpacedMetric:
    """A metric computed in each feature space: its key is `prefix` in the Inception
    space and `prefix_<extractor>` in another (as `fid` / `fd_<extractor>`)."""

    prefix: str
    name: str  # what a reader calls it, e.g. "KID"
    unit: str  # e.g. "squared MMD"; the space is appended
    higher_is_better: bool
    definition: str
    inception_name: str | None = None  # the Inception key's own name, e.g. "FID∞"
    space_word: str = "features"  # "<space> features", or "<space> classifier"

    def key(self, extractor: str) -> str:
        return self.prefix if extractor == "inception" else f"{self.prefix}_{extractor}"

    def spec(self, key: str) -> MetricSpec:
        if key == self.prefix:
            name, where = self.inception_name or self.name, "Inception"
        else:
            pretty = pretty_space(key.removeprefix(f"{self.prefix}_"))
            name, where = f"{self.name} {pretty}", f"{pretty} {self.space_word}"
        return MetricSpec(
            key, name, f"{self.unit}, {where}", self.higher_is_better, self.definition
        )
