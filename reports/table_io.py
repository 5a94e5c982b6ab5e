"""Tables written as markdown, CSV and JSON beside the report."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from bench.atomic import atomic_write_text
from reports.tables import Cell, Table


def _md_escape(text: str) -> str:
    return text.replace("|", "\\|")


def _text(value: str | Cell) -> str:
    return _md_escape(value.text() if isinstance(value, Cell) else str(value))


def to_markdown(table: Table) -> str:
    headers = [h for _, h in table.columns]
    lines = [
        f"### {table.title}",
        "",
        table.note,
        "",
        "| " + " | ".join(headers) + " |",
        "|" + "---|" * len(headers),
    ]
    for row in table.rows:
        cells = []
        for key, _ in table.columns:
            value = row.get(key, "")
            text = _text(value)
            cells.append(f"**{text}**" if isinstance(value, Cell) and value.best else text)
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def pipe_table(headers: list[str], rows: list[list[str]]) -> str:
    """A bare GitHub pipe table (`| --- |` rule): no title, note or bold, and no
    trailing newline."""

    def row(cells: list[str]) -> str:
        return "| " + " | ".join(cells) + " |"

    return "\n".join([row(headers), row(["---"] * len(headers)), *(row(r) for r in rows)])


def to_pipe_table(table: Table) -> str:
    """The table's headers and cells as a bare pipe table (pipe_table), for a page that
    writes its own title and note."""
    rows = [[_text(row.get(key, "")) for key, _ in table.columns] for row in table.rows]
    return pipe_table([h for _, h in table.columns], rows)


def _cell_fields(table: Table, key: str) -> list[str]:
    """value, and low/high/std columns only where some row has them."""
    cells = [r[key] for r in table.rows if isinstance(r.get(key), Cell)]
    extra = [f for f in ("low", "high", "std") if any(getattr(c, f) is not None for c in cells)]
    return ["value", *extra]


def to_csv(table: Table) -> str:
    header, layout = [], []
    for key, _ in table.columns:
        if any(isinstance(r.get(key), Cell) for r in table.rows):
            fields = _cell_fields(table, key)
            header += [key if f == "value" else f"{key}_{f}" for f in fields]
            layout.append((key, fields))
        else:
            header.append(key)
            layout.append((key, None))
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    for row in table.rows:
        out: list[Any] = []
        for key, fields in layout:
            value = row.get(key, "")
            if fields is None:
                out.append(value)
            else:
                out += ["" if getattr(value, f) is None else getattr(value, f) for f in fields]
        writer.writerow(out)
    return buf.getvalue()


def _json_value(value: str | Cell) -> Any:
    if not isinstance(value, Cell):
        return value
    out = {"value": value.value, "text": value.text(), "best": value.best}
    if value.low is not None and value.high is not None:
        out["ci"] = [value.low, value.high]
    if value.std is not None:
        out["std"] = value.std
    if value.reason:
        out["reason"] = value.reason
    return out


def to_json(table: Table) -> str:
    data = {
        "name": table.name,
        "title": table.title,
        "note": table.note,
        "columns": [{"key": k, "header": h} for k, h in table.columns],
        "rows": [{k: _json_value(row.get(k, "")) for k, _ in table.columns} for row in table.rows],
    }
    return json.dumps(data, indent=2, allow_nan=False)


def write_table(table: Table, out_dir: Path) -> dict[str, Path]:
    """table.md, table.csv and table.json; returns them by format."""
    paths = {}
    for fmt, render in (("md", to_markdown), ("csv", to_csv), ("json", to_json)):
        path = out_dir / f"{table.name}.{fmt}"
        atomic_write_text(path, render(table))
        paths[fmt] = path
    return paths
