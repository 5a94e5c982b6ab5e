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
