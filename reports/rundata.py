"""A scored run directory, read once: manifest, config, method-configs, metrics.

Sample files are not loaded here; `sample_files` lists them so the report can
stream them one prompt at a time.
"""

from __future__ import annotations

import json
import math
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.errors import BenchError
from reports.catalog import ordered


@dataclass(frozen=True)
class MethodConfig:
    """One method-config of the run, e.g. id `spell-r2-l1.6` of method `spell`."""

    id: str
    method: str
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class RunData:
    path: Path
    manifest: dict[str, Any]
    config_text: str
    configs: list[MethodConfig]
    prompt_ids: list[str]
    results: dict[str, dict[str, Any]]
    protocol: dict[str, Any]

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
        value = self.results.get(method_id, {}).get("metrics", {}).get(key)
        if not isinstance(value, int | float) or isinstance(value, bool):
            return None
        return float(value) if math.isfinite(value) else None

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

    def sample_files(self, method_id: str) -> Iterator[Path]:
        """The method-config's per-prompt npz files, in prompt order."""
        for prompt_id in self.prompt_ids:
            path = self.path / "samples" / method_id / f"{prompt_id}.npz"
            if path.exists():
                yield path


def _read_json(path: Path) -> dict[str, Any] | None:
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise BenchError(
            f"{path} is not valid JSON ({err}); rerun the stage that writes it"
        ) from err


def _method_config(run_path: Path, method_id: str, result: dict[str, Any]) -> MethodConfig:
    info = _read_json(run_path / "samples" / method_id / "method.json") or {}
    method = info.get("method") or result.get("method") or method_id.split("-")[0]
    params = info.get("params") or result.get("params") or {}
    return MethodConfig(method_id, method, params)


def _method_ids(run_path: Path, manifest: dict[str, Any], results: dict[str, Any]) -> list[str]:
    ids = list(manifest.get("method_ids") or [])
    samples = run_path / "samples"
    if not ids and samples.is_dir():
        ids = sorted(p.name for p in samples.iterdir() if p.is_dir())
    return ids + [m for m in results if m not in ids]


def _prompt_ids(run_path: Path, manifest: dict[str, Any], method_ids: list[str]) -> list[str]:
    if manifest.get("prompt_ids"):
        return [str(p) for p in manifest["prompt_ids"]]
    found = {f.stem for m in method_ids for f in (run_path / "samples" / m).glob("*.npz")}
    return sorted(found)


def load_run(run_path: Path) -> RunData:
    """Read a run directory; a missing manifest is a one-line error."""
    run_path = Path(run_path)
    manifest = _read_json(run_path / "manifest.json")
    if manifest is None:
        raise BenchError(
            f"{run_path} is not a run directory (no manifest.json); run bench generate"
        )
    metrics = _read_json(run_path / "metrics.json") or {}
    results = {r["method_id"]: r for r in metrics.get("results", []) if "method_id" in r}
    ids = _method_ids(run_path, manifest, results)
    config_path = run_path / "config.toml"
    return RunData(
        path=run_path,
        manifest=manifest,
        config_text=config_path.read_text() if config_path.exists() else "",
        configs=[_method_config(run_path, m, results.get(m, {})) for m in ids],
        prompt_ids=_prompt_ids(run_path, manifest, ids),
        results=results,
        protocol=metrics.get("protocol") or {},
    )
