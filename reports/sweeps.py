"""Sweeps of one method: which parameters vary, their order, the default config.

The default config of a method (Table 1) is the config whose swept parameters
all take the method class's default values (recorded in method.json); parameters
the user fixed in bench.toml are their choice and not compared. When no config
matches (or no defaults were recorded), it is the middle sweep point: index (n - 1) // 2 of
the configs sorted by their swept values.
"""

from __future__ import annotations

import json
from typing import Any

from reports.rundata import MethodConfig


def _canon(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def swept_params(configs: list[MethodConfig]) -> list[str]:
    """Parameters whose value differs among the configs, in first-seen order."""
    keys: list[str] = []
    for config in configs:
        keys += [k for k in config.params if k not in keys]
    return [k for k in keys if len({_canon(c.params.get(k)) for c in configs}) > 1]


def sort_value(value: Any) -> tuple:
    if isinstance(value, bool) or value is None:
        return (1, str(value))
    if isinstance(value, int | float):
        return (0, float(value))
    if isinstance(value, list | tuple):
        return (0, *[sort_value(v) for v in value])
    return (1, str(value))


def sort_configs(configs: list[MethodConfig], keys: list[str] | None = None) -> list[MethodConfig]:
    """Configs in sweep order: by their swept values, first key slowest."""
    keys = swept_params(configs) if keys is None else keys
    return sorted(configs, key=lambda c: tuple(sort_value(c.params.get(k)) for k in keys))


def recorded_defaults(configs: list[MethodConfig]) -> dict[str, Any] | None:
    """The method class's default params, as generation wrote them into method.json
    (None for a run made before they were recorded)."""
    defaults = next((c.defaults for c in configs if c.defaults is not None), None)
    return None if defaults is None else json.loads(_canon(defaults))


def default_config(configs: list[MethodConfig], defaults: dict[str, Any] | None) -> MethodConfig:
    """The documented rule above; `configs` are one method's configs."""
    keys = swept_params(configs)
    if defaults is not None:
        for config in configs:
            if all(_canon(config.params.get(k)) == _canon(defaults.get(k)) for k in keys):
                return config
    ordered_configs = sort_configs(configs, keys)
    return ordered_configs[(len(ordered_configs) - 1) // 2]


def short_params(config: MethodConfig, keys: list[str]) -> str:
    """`radius=2, overcompensation=1.6` for the swept keys only."""
    return ", ".join(f"{k}={fmt_value(config.params.get(k))}" for k in keys)


def fmt_value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(fmt_value(v) for v in value) + "]"
    return str(value)


def short_values(config: MethodConfig, keys: list[str]) -> str:
    """`2` or `0.001, 0.6`: the swept values only, for point labels."""
    return ", ".join(fmt_value(config.params.get(k)) for k in keys)


def param_label(config: MethodConfig, key: str) -> str:
    """Axis label of a parameter: its name and, if the method documents it, its meaning."""
    description = config.descriptions.get(key)
    return f"{key}: {description}" if description else key
