"""Protection in a scored run: when a SPELL config shields a protected set, every
method-config of the run gets the share of its final latents within r of that set
(exact search, in the space the shields live in), so `none` is the baseline."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bench.run_dir import RunDir
from bench.shields.store import load_vectors
from metrics.protection import SPEC, protection_rate
from metrics.run_reader import MethodDir, method_dirs


def protected_set(methods: list[MethodDir]) -> tuple[Path, float] | None:
    """(index path, radius) of the first method-config that shields a protected set."""
    for method in methods:
        if method.params.get("protect"):
            return Path(method.params["protect"]), float(method.params["radius"])
    return None


def _rates(methods: list[MethodDir], vectors: np.ndarray, radius: float) -> dict[str, float]:
    """Method id -> share of its final latents within `radius` of `vectors`."""
    return {m.method_id: protection_rate(m.final_latents(), vectors, radius) for m in methods}


def _vectors(index: Path) -> np.ndarray:
    return load_vectors(index).float().numpy()


def rates_against(run: RunDir, index: Path, radius: float) -> dict[str, float]:
    """Method id -> share of its final latents within `radius` of the set stored at
    `index`, for every method-config of the run with a complete prompt (any radius,
    any stored set: the experiment's Table 2 measures the runs that shield nothing)."""
    return _rates(method_dirs(run), _vectors(index), radius)


def add_protection(results: list[dict], methods: list[MethodDir]) -> dict | None:
    """Adds `protection_rate` to each result; returns the protocol entry, or None.
    `methods` are the scored method dirs (a partial score restricts their prompts),
    measured by the same loop as `rates_against`."""
    found = protected_set(methods)
    if found is None:
        return None
    path, radius = found
    vectors = _vectors(path)
    rates = _rates(methods, vectors, radius)
    for result, method in zip(results, methods, strict=True):
        result["metrics"]["protection_rate"] = rates[method.method_id]
    return {
        "index": str(path),
        "radius": radius,
        "size": len(vectors),
        "definition": SPEC.definition,
    }
