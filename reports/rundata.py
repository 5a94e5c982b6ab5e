"""A scored run directory, read once: manifest, config, method-configs, metrics.

Sample files are not loaded here; `sample_files` lists them so the report can
stream them one prompt at a time.
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.errors import BenchError
from bench.run_dir import RunDir
from metrics.catalog import ordered


@dataclass(frozen=True)
class MethodConfig:
    """One method-config of the run, e.g. id `spell-r2-l1.6` of method `spell`, with its
    class's defaults and parameter descriptions as generation recorded them."""

    id: str
    method: str
    params: dict[str, Any] = field(default_factory=dict)
    defaults: dict[str, Any] | None = None
    descriptions: dict[str, str] = field(default_factory=dict)


@dataclass
class RunData:
    run: RunDir
    path: Path
    manifest: dict[str, Any]
    config_text: str
    configs: list[MethodConfig]
    prompt_ids: list[str]
    results: dict[str, dict[str, Any]]
    protocol: dict[str, Any]
    partial: bool = False  # scored on the prompts every method finished, not all

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def config(self) -> dict[str, Any]:
        try:
            return tomllib.loads(self.config_text)
        except tomllib.TOMLDecodeError:
            return {}

    @property
    def baseline_id(self) -> str | None:
        """The method-config of `none` (no method), if the run has one."""
        return next((c.id for c in self.configs if c.method == "none"), None)

    def methods(self) -> dict[str, list[MethodConfig]]:
        """Method name -> its configs, in the run's order."""
        grouped: dict[str, list[MethodConfig]] = {}
        for config in self.configs:
            grouped.setdefault(config.method, []).append(config)
        return grouped

    def metric(self, method_id: str, key: str) -> float | None:
        return _number(self.results.get(method_id, {}).get("metrics", {}).get(key))

    def spread(self, method_id: str, key: str) -> float | None:
        """The seed spread (std over seeds) of a result that is a mean over seeds, given
        as `"std": {key: value}` beside "ci"; None for a single run's result."""
        return _number(self.results.get(method_id, {}).get("std", {}).get(key))

    def interval(self, method_id: str, key: str) -> tuple[float, float] | None:
        ci = self.results.get(method_id, {}).get("ci", {}).get(key)
        if not ci or len(ci) != 2 or not all(isinstance(v, int | float) for v in ci):
            return None
        return float(ci[0]), float(ci[1])

    def metric_keys(self) -> list[str]:
        """Every metric some method-config has a number for."""
        keys = {
            k
            for result in self.results.values()
            for k, v in result.get("metrics", {}).items()
            if isinstance(v, int | float) and not isinstance(v, bool)
        }
        return ordered(keys)

    def recorded_keys(self) -> list[str]:
        """Every metric key of the results, with a number or null (undefined)."""
        keys = {k for result in self.results.values() for k in result.get("metrics", {})}
        return ordered(keys)

    def sample_files(self, method_id: str) -> Iterator[Path]:
        """The method-config's complete per-prompt sample files, in prompt order."""
        for prompt_id in self.prompt_ids:
            path = self.run.sample_file(method_id, prompt_id)
            if path.exists():
                yield path


def _number(value: Any) -> float | None:
    """A finite number as float; None for anything else (null, NaN, a bool, text)."""
    if not isinstance(value, int | float) or isinstance(value, bool):
        return None
    return float(value) if math.isfinite(value) else None


def _method_config(run: RunDir, method_id: str, result: dict[str, Any]) -> MethodConfig:
    info = run.method_info(method_id)
    method = info.get("method") or result.get("method") or method_id.split("-")[0]
    params = info.get("params") or result.get("params") or {}
    return MethodConfig(
        method_id, method, params, info.get("defaults"), info.get("descriptions") or {}
    )


def load_run(run_path: Path) -> RunData:
    """Read a run directory; a missing manifest is a one-line error."""
    run = RunDir(run_path)
    manifest = run.manifest()
    if manifest is None:
        raise BenchError(
            f"{run.path} is not a run directory (no manifest.json); run bench generate"
        )
    metrics = run.metrics() or {}
    results = {r["method_id"]: r for r in metrics.get("results", []) if "method_id" in r}
    ids = run.method_ids()
    ids += [m for m in results if m not in ids]
    return RunData(
        run=run,
        path=run.path,
        manifest=manifest,
        config_text=run.config_text(),
        configs=[_method_config(run, m, results.get(m, {})) for m in ids],
        prompt_ids=metrics.get("prompts") or run.prompt_ids(),
        results=results,
        protocol=metrics.get("protocol") or {},
        partial=bool(metrics.get("partial")),
    )
