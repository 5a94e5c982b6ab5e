"""The report page: one static, self-contained HTML file that links the figures,
grids and tables written beside it (relative paths; no network, no scripts)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from html import escape
from pathlib import Path
from typing import Any
from urllib.parse import quote

from reports.rundata import RunData
from reports.tables import Cell, Table

CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 0;
       color: #1d1d1f; background: #fafafa; line-height: 1.45; }
main { max-width: 1500px; margin: 0 auto; padding: 1.5rem 2rem 4rem; }
h1 { margin: 0 0 .2rem; font-size: 1.7rem; }
h2 { margin-top: 2.4rem; border-bottom: 2px solid #ddd; padding-bottom: .3rem; }
h3 { margin: 1.4rem 0 .4rem; font-size: 1.05rem; }
nav { margin: .8rem 0 1rem; } nav a { margin-right: 1.1rem; color: #0a5fa3; }
.sub { color: #666; margin: 0; } .note { color: #555; font-size: .9rem; margin: .2rem 0 .6rem; }
.scroll { overflow-x: auto; background: #fff; border: 1px solid #e3e3e3; border-radius: 6px; }
table { border-collapse: collapse; font-size: .85rem; white-space: nowrap; }
th, td { padding: .35rem .7rem; text-align: right; border-bottom: 1px solid #eee; }
th { background: #f1f3f5; position: sticky; top: 0; }
td.text, th.text { text-align: left; } tbody tr:nth-child(even) { background: #fbfbfc; }
td.best { font-weight: 700; } td.na { color: #999; }
table.kv td { text-align: left; white-space: normal; } table.kv td:first-child { color: #555; }
pre { background: #fff; border: 1px solid #e3e3e3; border-radius: 6px; padding: .8rem 1rem;
      font-size: .8rem; overflow-x: auto; }
.figs { display: grid; grid-template-columns: repeat(auto-fill, minmax(520px, 1fr)); gap: 1rem; }
.wide { grid-column: 1 / -1; }
figure { margin: 0; background: #fff; border: 1px solid #e3e3e3; border-radius: 6px;
         padding: .6rem; }
figure img { max-width: 100%; height: auto; display: block; margin: 0 auto; }
.flow { display: flex; flex-wrap: wrap; gap: 1rem; align-items: flex-start; }
.flow figure { flex: 0 1 auto; max-width: 100%; }
.spread { color: #666; font-size: .75rem; font-weight: 400; }
figcaption { font-size: .85rem; color: #444; margin-top: .4rem; }
.swatch { display: inline-block; width: .9rem; height: .9rem; border-radius: 2px;
          vertical-align: -2px; margin-right: .4rem; }
.files a { margin-right: .6rem; font-size: .8rem; }
"""


@dataclass(frozen=True)
class FigureRef:
    png: str  # relative to the report directory
    caption: str
    svg: str | None = None
    wide: bool = False
    grid: bool = False


@dataclass(frozen=True)
class TableRef:
    table: Table
    files: dict[str, str]  # format -> relative path


@dataclass
class Section:
    anchor: str
    title: str
    intro: str = ""
    figures: list[FigureRef] = field(default_factory=list)
    links: list[tuple[str, str]] = field(default_factory=list)  # (label, relative path)
    flow: bool = False  # figures at their natural size, wrapped, instead of a grid


@dataclass
class Page:
    run: RunData
    colors: dict[str, str]
    tables: list[TableRef]
    sections: list[Section]
    notes: list[str] = field(default_factory=list)


def _td(value: str | Cell) -> str:
    if not isinstance(value, Cell):
        return f'<td class="text">{escape(str(value))}</td>'
    classes = "best" if value.best else ("na" if value.value is None else "")
    title = f' title="{escape(value.reason)}"' if value.reason else ""
    spread = value.spread()
    # Intervals go on a second, smaller line, so wide metric tables still fit the page.
    sep = "<br>" if spread.startswith("[") else " "
    extra = f'{sep}<span class="spread">{escape(spread)}</span>' if spread else ""
    return f'<td class="{classes}"{title}>{escape(value.main())}{extra}</td>'


def table_html(ref: TableRef) -> str:
    t = ref.table
    text_keys = {k for k, _ in t.columns if not any(isinstance(r.get(k), Cell) for r in t.rows)}
    head = "".join(
        f'<th class="{"text" if k in text_keys else ""}">{escape(h)}</th>' for k, h in t.columns
    )
    body = "".join(
        "<tr>" + "".join(_td(row.get(k, "")) for k, _ in t.columns) + "</tr>" for row in t.rows
    )
    files = " ".join(f'<a href="{escape(quote(p))}">{fmt}</a>' for fmt, p in ref.files.items())
    return (
        f'<h3 id="{escape(t.name)}">{escape(t.title)}</h3>'
        f'<p class="note">{escape(t.note)} <span class="files">{files}</span></p>'
        f'<div class="scroll"><table class="data" data-table="{escape(t.name)}">'
        f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>"
    )


def figure_html(ref: FigureRef) -> str:
    classes = " ".join(c for c, on in (("wide", ref.wide), ("grid", ref.grid)) if on)
    svg = f' (<a href="{escape(quote(ref.svg))}">SVG</a>)' if ref.svg else ""
    png = escape(quote(ref.png))
    return (
        f'<figure class="{classes}"><a href="{png}">'
        f'<img src="{png}" alt="{escape(ref.caption)}" loading="eager"></a>'
        f"<figcaption>{escape(ref.caption)}{svg}</figcaption></figure>"
    )


def _kv(rows: list[tuple[str, Any]]) -> str:
    body = "".join(
        f"<tr><td>{escape(k)}</td><td>{escape(_plain(v))}</td></tr>"
        for k, v in rows
        if v not in (None, "", {}, [])
    )
    return f'<div class="scroll"><table class="kv">{body}</table></div>'


def _plain(value: Any) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k}: {_plain(v)}" for k, v in value.items())
    if isinstance(value, list):
        return ", ".join(_plain(v) for v in value)
    return str(value)


def _run_rows(run: RunData) -> list[tuple[str, Any]]:
    m = run.manifest
    prompts = run.prompt_ids
    shown = ", ".join(prompts[:20]) + (f" … ({len(prompts)} in all)" if len(prompts) > 20 else "")
    return [
        ("status", m.get("status")),
        ("updated", m.get("updated")),
        ("config hash", m.get("config_hash")),
        ("git sha", m.get("git_sha")),
        ("seed", m.get("seed")),
        ("threads", m.get("threads")),
        ("steps", m.get("steps")),
        ("guidance", m.get("guidance")),
        ("prompts", shown),
        ("method-configs", len(run.configs)),
        ("images generated", m.get("images_generated")),
        ("generation seconds", m.get("generation_seconds")),
        ("device", (m.get("hardware") or {}).get("device")),
        ("hardware", m.get("hardware")),
        ("versions", m.get("versions")),
    ]


def _configs_html(run: RunData, colors: dict[str, str]) -> str:
    rows = "".join(
        f'<tr><td class="text"><span class="swatch" style="background:{colors[c.method]}">'
        f'</span>{escape(c.method)}</td><td class="text">{escape(c.id)}</td>'
        f'<td class="text">{escape(json.dumps(c.params, sort_keys=True))}</td></tr>'
        for c in run.configs
    )
    return (
        '<div class="scroll"><table class="data" data-table="method-configs"><thead><tr>'
        '<th class="text">Method</th><th class="text">Config</th><th class="text">Parameters</th>'
        f"</tr></thead><tbody>{rows}</tbody></table></div>"
    )


def _section_html(section: Section) -> str:
    links = " ".join(f'<a href="{escape(quote(p))}">{escape(t)}</a>' for t, p in section.links)
    intro = f'<p class="note">{escape(section.intro)} <span class="files">{links}</span></p>'
    if not section.figures:
        return (
            f'<h2 id="{section.anchor}">{escape(section.title)}</h2>{intro}'
            '<p class="note">Nothing to draw for this run.</p>'
        )
    figs = "".join(figure_html(f) for f in section.figures)
    heading = f'<h2 id="{section.anchor}">{escape(section.title)}</h2>'
    layout = "flow" if section.flow else "figs"
    return f'{heading}{intro}<div class="{layout}">{figs}</div>'


def render_page(page: Page) -> str:
    run = page.run
    nav_items = [("run", "Run"), ("configs", "Method-configs"), ("tables", "Tables")]
    nav_items += [(s.anchor, s.title) for s in page.sections] + [("config", "Config")]
    nav = "".join(f'<a href="#{a}">{escape(t)}</a>' for a, t in nav_items)
    notes = "".join(f"<li>{escape(n)}</li>" for n in page.notes)
    protocol = "<h3>Scoring protocol</h3>" + _kv(list(run.protocol.items())) if run.protocol else ""
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>spellbench report: {escape(run.name)}</title><style>{CSS}</style></head>
<body><main>
<h1>spellbench report: {escape(run.name)}</h1>
<p class="sub">{escape(str(run.path.resolve()))}</p>
<nav>{nav}</nav>
{f'<ul class="note">{notes}</ul>' if notes else ""}
<h2 id="run">Run</h2>{_kv(_run_rows(run))}{protocol}
<h2 id="configs">Method-configs</h2>{_configs_html(run, page.colors)}
<h2 id="tables">Tables</h2>{"".join(table_html(t) for t in page.tables)}
{"".join(_section_html(s) for s in page.sections)}
<h2 id="config">Config (config.toml)</h2><pre>{escape(run.config_text or "(missing)")}</pre>
</main></body></html>
"""


def relative(path: Path, report_dir: Path) -> str:
    return path.relative_to(report_dir).as_posix()
