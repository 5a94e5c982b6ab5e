"""Methods by name: built-ins (one file each in this package, imported lazily), entry
points of the group `spellbench.methods`, and `module:Class` names on the command line.
Also the expansion of a method's swept parameters into method-configs."""

from __future__ import annotations

import hashlib
import importlib.util
import inspect
import itertools
import sys
import typing
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from bench.errors import BenchError, first_error
from bench.registry import Registry

if TYPE_CHECKING:  # torch only once a method is imported
    from methods.base import DiversityMethod

ENTRY_POINT_GROUP = "spellbench.methods"


def _not_a_method(obj) -> str | None:
    from methods.base import DiversityMethod

    if isinstance(obj, type) and issubclass(obj, DiversityMethod):
        return None
    return "is not a DiversityMethod subclass"


BUILT_IN = {
    "none": "methods.none:NoMethod",
    "spell": "methods.spell:Spell",
    "pg": "methods.pg:ParticleGuidance",
    "ig": "methods.ig:IntervalGuidance",
    "cads": "methods.cads:CADS",
    "cfg": "methods.cfg:CFGSweep",
    "spell-feature": "methods.spell_feature:SpellFeature",
    "pg-feature": "methods.pg_feature:PGFeature",
    "autoguidance": "methods.autoguidance:Autoguidance",
    "apg": "methods.guiders:APG",
    "cfg-zero-star": "methods.guiders:CFGZeroStar",
    "tcfg": "methods.guiders:TCFG",
    "fdg": "methods.guiders:FDG",
    "mag": "methods.guiders:MAG",
    "pag": "methods.perturbed:PAG",
    "seg": "methods.perturbed:SEG",
    "slg": "methods.perturbed:SLG",
}


def builtin_registry() -> Registry[type[DiversityMethod]]:
    """A registry of the built-in methods; plugins join it on first lookup."""
    registry: Registry[type[DiversityMethod]] = Registry("method", ENTRY_POINT_GROUP, _not_a_method)
    for name, target in BUILT_IN.items():
        registry.register(name, target)
    return registry


METHODS = builtin_registry()


def available() -> dict[str, type[DiversityMethod]]:
    """Every registered method, built-in and plugin, imported."""
    registry = METHODS
    return {name: registry.get(name) for name in registry.names()}


def get_method_class(name: str) -> type[DiversityMethod]:
    """A registered name, or `module:Class`."""
    return METHODS.get(name)


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
        except ValidationError as err:
            raise BenchError(f"bad parameters for method {name!r}: {first_error(err)}") from err
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


def _source_files() -> list[Path]:
    """The files `describe_methods` reads: this package and every plugin's module."""
    files = sorted(Path(__file__).parent.glob("*.py"))
    for entry in METHODS.entries():
        target = entry.target if isinstance(entry.target, str) else entry.target.__module__
        spec = importlib.util.find_spec(target.partition(":")[0])
        if spec is not None and spec.origin and Path(spec.origin).is_file():
            files.append(Path(spec.origin))
    return files


def _listing_key() -> str:
    digest = hashlib.sha256(",".join(METHODS.names()).encode())
    for path in _source_files():
        stat = path.stat()
        digest.update(f"{path}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    return digest.hexdigest()[:16]


def cached_descriptions() -> list[str]:
    """`describe_methods()`, kept on disk under a key of the sources it is read from (a
    changed or added method file makes a new key), so `bench list methods` needs no
    torch once the listing exists."""
    from bench.atomic import atomic_write_text
    from bench.environment import user_cache_dir

    path = user_cache_dir() / f"methods-{_listing_key()}.txt"
    if path.is_file():
        return path.read_text().splitlines()
    lines = describe_methods()
    try:
        atomic_write_text(path, "\n".join(lines))
    except OSError:  # a read-only home: list without keeping it
        pass
    return lines
