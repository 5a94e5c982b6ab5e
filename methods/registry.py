"""Method registry: built-ins (one file each in this package), entry points of the
group `spellbench.methods`, and `module:Class` names given on the command line."""

from __future__ import annotations

import importlib
import inspect
import itertools
import pkgutil
import sys
import typing
from importlib.metadata import entry_points
from typing import Any

from bench.errors import BenchError
from methods.base import DiversityMethod

ENTRY_POINT_GROUP = "spellbench.methods"
_REGISTRY: dict[str, type[DiversityMethod]] = {}
_NOT_METHOD_MODULES = {"base", "registry"}


def register(cls: type[DiversityMethod]) -> type[DiversityMethod]:
    """Class decorator: make a method available under `cls.name`."""
    _REGISTRY[cls.name] = cls
    return cls


def _load_builtins() -> None:
    import methods

    for info in pkgutil.iter_modules(methods.__path__):
        if info.name not in _NOT_METHOD_MODULES:
            importlib.import_module(f"methods.{info.name}")


def _load_entry_points() -> None:
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            cls = ep.load()
        except Exception as err:  # a broken plugin is one line, not a traceback
            raise BenchError(f"cannot load method plugin {ep.name!r} ({ep.value}): {err}") from err
        if not (isinstance(cls, type) and issubclass(cls, DiversityMethod)):
            raise BenchError(f"method plugin {ep.name!r} ({ep.value}) is not a DiversityMethod")
        _REGISTRY.setdefault(ep.name, cls)


def available() -> dict[str, type[DiversityMethod]]:
    _load_builtins()
    _load_entry_points()
    return dict(sorted(_REGISTRY.items()))


def _import_class(spec: str) -> type[DiversityMethod]:
    module_name, _, attr = spec.partition(":")
    try:
        cls = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as err:
        raise BenchError(f"cannot import method {spec!r}: {err}") from err
    if not (isinstance(cls, type) and issubclass(cls, DiversityMethod)):
        raise BenchError(f"{spec!r} is not a DiversityMethod subclass")
    return cls


def get_method_class(name: str) -> type[DiversityMethod]:
    if ":" in name:
        return _import_class(name)
    methods = available()
    if name not in methods:
        raise BenchError(f"unknown method {name!r}; available: {', '.join(methods)}")
    return methods[name]


def _is_sequence_field(cls: type[DiversityMethod], key: str) -> bool:
    field = cls.Config.model_fields.get(key)
    if field is None:
        return False
    origin = typing.get_origin(field.annotation)
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        args = typing.get_args(field.annotation)
        return any(typing.get_origin(a) in (list, tuple) for a in args)
    return origin in (list, tuple)


def _sweep_axes(cls: type[DiversityMethod], params: dict[str, Any]) -> dict[str, list[Any]]:
    """A list value is a sweep; for a field that is itself a sequence, a list of lists is."""
    axes = {}
    for key, value in params.items():
        sweep = isinstance(value, list) and (
            not _is_sequence_field(cls, key) or (value and isinstance(value[0], list | tuple))
        )
        axes[key] = value if sweep else [value]
    return axes


def expand(name: str, params: dict[str, Any] | None = None) -> list[DiversityMethod]:
    """All method-configs of one method: the product of its swept parameters."""
    cls = get_method_class(name)
    axes = _sweep_axes(cls, params or {})
    configs = []
    for combo in itertools.product(*axes.values()):
        try:
            config = cls.Config(**dict(zip(axes, combo, strict=True)))
        except Exception as err:  # pydantic ValidationError, flattened to one line
            first = str(err).splitlines()
            raise BenchError(f"bad parameters for method {name!r}: {' '.join(first[:3])}") from err
        configs.append(cls(config))
    return configs


def _toml_value(value: Any) -> str:
    """A default as it would be written in bench.toml."""
    if value is None:
        return "(unset)"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, str):
        return f'"{value}"'
    return str(value)


def _summary(cls: type[DiversityMethod]) -> str:
    doc = inspect.cleandoc(cls.__doc__ or sys.modules[cls.__module__].__doc__ or "")
    return doc.splitlines()[0] if doc else ""


def describe_methods() -> list[str]:
    """`bench list methods`: each method's one-line summary, then its parameters with
    their defaults (as bench.toml would spell them) and descriptions."""
    lines = []
    for name, cls in available().items():
        lines.append(f"{name:8s} {_summary(cls)}")
        fields = cls.Config.model_fields
        width = max((len(k) + len(_toml_value(f.default)) for k, f in fields.items()), default=0)
        for key, field in fields.items():
            setting = f"{key} = {_toml_value(field.default)}"
            lines.append(f"    {setting:{width + 3}s}  {field.description or ''}".rstrip())
    return lines
