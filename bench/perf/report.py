"""The perf suite's result: one table per suite, as markdown and as JSON."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

Record = dict[str, Any]


@dataclass
class PerfReport:
    machine: dict[str, Any]
    suites: dict[str, list[Record]] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)

    def add(self, suite: str, rows: list[Record], note: str | None = None) -> None:
        self.suites.setdefault(suite, []).extend(rows)
        if note:
            self.notes[suite] = note

    def to_json(self) -> str:
        return json.dumps(
            {"machine": self.machine, "suites": self.suites, "notes": self.notes}, indent=2
        )

    def to_markdown(self) -> str:
        parts = []
        for suite, rows in self.suites.items():
            parts.append(f"## {suite}\n")
            if suite in self.notes:
                parts.append(self.notes[suite] + "\n")
            parts.append(markdown_table(rows))
        return "\n".join(parts)

    def write(self, out: Path) -> None:
        """perf.json and perf.md in `out`, each written atomically."""
        from bench.atomic import atomic_write_text

        out = Path(out)
        atomic_write_text(out / "perf.json", self.to_json())
        atomic_write_text(out / "perf.md", self.to_markdown())


def markdown_table(rows: list[Record]) -> str:
    if not rows:
        return "(no rows)\n"
    columns = list(dict.fromkeys(key for row in rows for key in row))
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        lines.append("| " + " | ".join(_cell(row.get(c)) for c in columns) + " |")
    return "\n".join(lines) + "\n"


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)
