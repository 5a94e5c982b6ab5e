"""Dataset prompt sets: `[run] prompts` given as a spec instead of the model's own prompts.

Specs (an optional `@N` keeps the first N prompts):
- `imagenet`             the 1000 ImageNet-1k classes (references: `[run] references`)
- `file:PATH`            a .txt, .csv or .jsonl prompt file (see bench.data.prompts)
- `cc12m:DIR[:SPLIT]`    a folder written by `build_cc12m`; SPLIT is test (default),
                         validation (or val) or all
Relative paths are read from the current directory, at generation and at scoring.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from bench.errors import BenchError

if TYPE_CHECKING:  # the CLI parses specs without importing torch
    from bench.models.base import ModelAdapter, Prompt

KINDS = ("imagenet", "file", "cc12m")
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


@dataclass(frozen=True)
class PromptSet:
    """Prompts and, per prompt id, its reference image files (None: reference-free)."""

    description: str
    prompts: list[Prompt]
    references: dict[str, list[Path]] | None = field(default=None, repr=False)

    def head(self, n: int) -> PromptSet:
        prompts = self.prompts[:n]
        refs = self.references
        if refs is not None:
            refs = {p.id: refs[p.id] for p in prompts if p.id in refs}
        return PromptSet(f"{self.description}, first {n}", prompts, refs)


def dataset_spec(value: object) -> str | None:
    """The spec in a `[run] prompts` value (a string, or a one-item list from the CLI)."""
    if isinstance(value, list) and len(value) == 1:
        value = value[0]
    if not isinstance(value, str):
        return None
    return value if value.split(":", 1)[0].split("@", 1)[0] in KINDS else None


def parse_spec(spec: str) -> tuple[str, str, int | None]:
    """`kind:args@N` -> (kind, args, N or None)."""
    body, limit = spec, None
    head, at, tail = spec.rpartition("@")
    if at and tail.isdigit():
        body, limit = head, int(tail)
        if limit <= 0:
            raise BenchError(f"prompt set {spec!r}: @N must be positive")
    kind, _, args = body.partition(":")
    if kind not in KINDS:
        raise BenchError(f"unknown prompt set {spec!r}: use one of {', '.join(KINDS)}")
    if kind == "imagenet" and args:
        raise BenchError(
            f"prompt set {spec!r}: imagenet takes no path; reference images "
            "come from [run] references"
        )
    if kind != "imagenet" and not args:
        raise BenchError(f"prompt set {spec!r} needs a path: {kind}:PATH")
    return kind, args, limit


def open_prompt_set(spec: str, references: Path | None = None, labels: bool = False) -> PromptSet:
    """The prompts of `spec`; `labels`: class-conditional prompts (ImageNet class names)."""
    kind, args, limit = parse_spec(spec)
    if kind == "imagenet":
        from bench.data.imagenet import imagenet_set

        found = imagenet_set(references, labels)
    elif kind == "file":
        from bench.data.prompts import read_prompt_file

        found = read_prompt_file(Path(args), references)
    else:
        from bench.data.cc12m import load_cc12m

        folder, split = _cc12m_args(args)
        found = load_cc12m(folder, split)
    if not found.prompts:
        raise BenchError(f"prompt set {spec!r} is empty: nothing to generate")
    return found.head(limit) if limit is not None else found


def _cc12m_args(args: str) -> tuple[Path, str]:
    head, _, tail = args.rpartition(":")
    if head and tail in ("test", "validation", "val", "all"):
        return Path(head), tail
    return Path(args), "test"


def load_prompt_set(spec: str, model: ModelAdapter) -> list[Prompt]:
    """The prompts of `spec` in the form `model` takes: class labels for class-conditional
    models (ImageNet only), captions otherwise ("a photo of a <class>" for ImageNet)."""
    offered = model.prompts()
    labels = any(p.label is not None for p in offered)
    kind = parse_spec(spec)[0]
    prompts = open_prompt_set(spec, labels=labels).prompts  # a broken file says so first
    if labels and kind != "imagenet":
        raise BenchError(
            f"prompt set {spec!r} holds captions but model {model.name!r} is class-conditional"
        )
    if labels:
        from bench.data.imagenet import NUM_CLASSES

        if len(offered) != NUM_CLASSES:
            raise BenchError(
                f"model {model.name!r} has {len(offered)} classes, not ImageNet's {NUM_CLASSES}"
            )
    return prompts


def check_id(prompt_id: str, where: str) -> str:
    """Prompt ids name sample files: letters, digits, '.', '_', '-'."""
    if not _ID.fullmatch(prompt_id):
        raise BenchError(f"{where}: prompt id {prompt_id!r} must be letters, digits, . _ -")
    return prompt_id
