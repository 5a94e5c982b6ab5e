"""Prompt files: .txt (one prompt a line), .csv or .jsonl, with optional reference images.

- txt: every non-blank line is a prompt; ids are "0", "1", ... in file order.
- csv: a `prompt` (or `text`) column; optional `id` and `references` (a folder) columns.
- jsonl: one object a line with "prompt" (or "text"); optional "id", "references"
  (a folder) or "images" (a list of files; a built cc12m prompts.jsonl reads as is).
Relative reference paths are relative to the prompt file's folder. Without them,
`[run] references = DIR` supplies DIR/<prompt id>/ for every prompt. Either every
prompt has reference images or none has: then only reference-free metrics (Vendi,
CLIP score) have values.
"""

from __future__ import annotations

import csv
import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

from bench.data.folders import image_files
from bench.data.sets import PromptSet, check_id
from bench.errors import BenchError
from bench.models.base import Prompt

Row = tuple[str | None, str, object]  # id, text, references (folder, file list or None)


def read_prompt_file(path: Path, references: Path | None = None) -> PromptSet:
    path = Path(path)
    if not path.is_file():
        raise BenchError(f"prompt file {path} not found")
    readers = {".txt": _txt_rows, ".csv": _csv_rows, ".jsonl": _jsonl_rows}
    if path.suffix.lower() not in readers:
        raise BenchError(f"prompt file {path}: use a .txt, .csv or .jsonl file")
    _check_text(path)
    rows = list(readers[path.suffix.lower()](path))
    prompts = _prompts(rows, path)
    refs = _references(rows, prompts, path, references)
    where = "no reference images" if refs is None else "reference images per prompt"
    return PromptSet(f"prompt file {path} ({where})", prompts, refs)


def _check_text(path: Path) -> None:
    """A prompt file is UTF-8 text: a binary file or another encoding is one line."""
    data = path.read_bytes()
    if b"\0" in data:
        raise BenchError(f"prompt file {path} is binary (it holds NUL bytes), not text")
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise BenchError(
            f"prompt file {path} is not UTF-8 text (byte {err.start}): save it as UTF-8"
        ) from err


def _prompts(rows: list[Row], path: Path) -> list[Prompt]:
    prompts = [
        Prompt(id=check_id(i if i is not None else str(n), str(path)), text=text)
        for n, (i, text, _) in enumerate(rows)
    ]
    repeated = sorted(i for i, n in Counter(p.id for p in prompts).items() if n > 1)
    if repeated:
        raise BenchError(f"{path}: prompt ids {repeated[:5]} appear more than once")
    empty = [p.id for p in prompts if not p.text.strip()]
    if empty:
        raise BenchError(f"{path}: prompts {empty[:5]} have no text")
    return prompts


def _txt_rows(path: Path) -> Iterator[Row]:
    for line in path.read_text("utf-8").splitlines():
        if line.strip():
            yield None, line.strip(), None


def _csv_rows(path: Path) -> Iterator[Row]:
    with path.open(newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        fields = reader.fieldnames or []
        column = "prompt" if "prompt" in fields else "text"
        if column not in fields:
            raise BenchError(f"{path}: the csv needs a 'prompt' or 'text' column, has {fields}")
        for row in reader:
            refs = (row.get("references") or "").strip() or None
            yield _blank_none(row.get("id")), row[column] or "", refs


def _jsonl_rows(path: Path) -> Iterator[Row]:
    for n, line in enumerate(path.read_text("utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as err:
            raise BenchError(f"{path}:{n}: not JSON ({err.msg})") from err
        text = item.get("prompt", item.get("text")) if isinstance(item, dict) else None
        if not isinstance(text, str):
            raise BenchError(f'{path}:{n}: needs a "prompt" or "text" string')
        refs = item.get("images", item.get("references"))
        yield _blank_none(item.get("id")), text, refs


def _blank_none(value: object) -> str | None:
    return None if value is None or str(value).strip() == "" else str(value).strip()


def _references(
    rows: list[Row], prompts: list[Prompt], path: Path, root: Path | None
) -> dict[str, list[Path]] | None:
    refs: dict[str, list[Path]] = {}
    for (_, _, given), prompt in zip(rows, prompts, strict=True):
        files = _files(given, path.parent)
        if files is None and root is not None and (Path(root) / prompt.id).is_dir():
            files = image_files(Path(root) / prompt.id)
        if files is not None:
            refs[prompt.id] = files
    if not refs:
        if root is not None:
            raise BenchError(f"{root} has no folder named by a prompt id of {path}")
        return None
    lacking = [p.id for p in prompts if not refs.get(p.id)]
    if lacking:
        raise BenchError(
            f"{path}: prompts {lacking[:5]} have no reference images; give every prompt "
            "references, or none for reference-free metrics"
        )
    return refs


def _files(given: object, base: Path) -> list[Path] | None:
    if given is None:
        return None
    if isinstance(given, str):
        return image_files(base / given)
    if isinstance(given, list) and all(isinstance(g, str) for g in given):
        return [base / g for g in given]
    raise BenchError(f"reference images must be a folder or a list of files, got {given!r}")
