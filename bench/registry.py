"""One generic registry for methods, models, extractors and reference sets.

An entry is an object or a lazy `"module:attr"` string, imported on first use (so
`bench list` does not import diffusers). Plugins come from an entry-point group per
kind; a name registered twice, by the project or by a plugin, is an error; an
unknown name gets a "did you mean". Where the kind allows it, a `module:attr` name
that is not registered is imported directly (`--model mypkg:factory`).
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any, Generic, TypeVar

from bench.errors import BenchError

T = TypeVar("T")

_IMPORTED: dict[str, None] = {}  # plugin code imported by this process, in order


def imported_plugins() -> list[str]:
    """The plugin code this process imported: `module:attr` names and entry points."""
    return list(_IMPORTED)


def import_attr(spec: str, what: str) -> Any:
    """`module:attr` -> the attribute; a one-line error when either is missing."""
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise BenchError(f"{what} {spec!r} is not of the form module:attr")
    try:
        return getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as err:
        raise BenchError(f"cannot import {what} {spec!r}: {err}") from err


@dataclass
class Entry(Generic[T]):
    name: str
    target: T | str
    description: str = ""
    source: str = "built-in"


class Registry(Generic[T]):
    """`kind` names the things in errors ("method", "model"); `check` validates a loaded
    object (returns an error message or None); `group` is the entry-point group."""

    def __init__(
        self,
        kind: str,
        group: str | None = None,
        check: Callable[[Any], str | None] | None = None,
        direct_imports: bool = True,
    ) -> None:
        self.kind, self.group, self.check = kind, group, check
        self.direct_imports = direct_imports
        self._entries: dict[str, Entry[T]] = {}
        self._plugins_loaded = group is None

    def register(
        self, name: str, target: T | str, description: str = "", source: str = "built-in"
    ) -> None:
        if name in self._entries:
            old = self._entries[name]
            raise BenchError(
                f"{self.kind} {name!r} is registered twice ({old.source} and {source}); "
                "rename one of them"
            )
        self._entries[name] = Entry(name, target, description, source)

    def __call__(self, name: str, description: str = "") -> Callable[[T], T]:
        """Decorator form: `@REGISTRY("name")`."""

        def decorate(obj: T) -> T:
            self.register(name, obj, description)
            return obj

        return decorate

    def with_entry(self, name: str, target: T | str, description: str = "") -> Registry[T]:
        """A copy in which `name` is `target` (tests swap a model or extractor this way)."""
        other = Registry(self.kind, self.group, self.check, self.direct_imports)
        other._entries = dict(self._entries)
        other._plugins_loaded = self._plugins_loaded
        other._entries[name] = Entry(name, target, description, "replaced")
        return other

    def names(self) -> list[str]:
        self._load_plugins()
        return sorted(self._entries)

    def entries(self) -> Iterator[Entry[T]]:
        for name in self.names():
            yield self._entries[name]

    def __contains__(self, name: str) -> bool:
        self._load_plugins()
        return name in self._entries

    def get(self, name: str) -> T:
        if self.direct_imports and ":" in name and name not in self._entries:
            found = self._validated(name, import_attr(name, self.kind))
            _IMPORTED[f"{self.kind} {name}"] = None
            return found
        self._load_plugins()
        if name not in self._entries:
            raise BenchError(self._unknown(name))
        entry = self._entries[name]
        if isinstance(entry.target, str):
            spec = entry.target
            entry.target = self._validated(name, import_attr(spec, self.kind))
            if entry.source.startswith("plugin"):
                _IMPORTED[f"{self.kind} {name} (entry point {spec})"] = None
        return entry.target

    def _validated(self, name: str, obj: Any) -> Any:
        problem = self.check(obj) if self.check is not None else None
        if problem:
            raise BenchError(f"{self.kind} {name!r} {problem}")
        return obj

    def _unknown(self, name: str) -> str:
        known = sorted(self._entries)
        close = difflib.get_close_matches(name, known, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        return f"unknown {self.kind} {name!r}{hint}; available: {', '.join(known)}"

    def _load_plugins(self) -> None:
        if self._plugins_loaded:
            return
        self._plugins_loaded = True
        for ep in entry_points(group=self.group):
            self.register(ep.name, ep.value, source=f"plugin {ep.value}")
