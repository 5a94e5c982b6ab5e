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
from metrics.values import NONFINITE, Undefined, all_finite, is_defined


def protected_set(methods: list[MethodDir]) -> tuple[Path, float] | None:
    """(index path, radius) of the first method-config that shields a protected set."""
    for method in methods:
        if method.params.get("protect"):
            return Path(method.params["protect"]), float(method.params["radius"])
    return None


def _rates(
    methods: list[MethodDir], vectors: np.ndarray, radius: float
) -> dict[str, float | Undefined]:
    """Method id -> share of its final latents within `radius` of `vectors`; undefined
    when a latent is not finite (it would count as far from every protected vector)."""
    rates: dict[str, float | Undefined] = {}
    for m in methods:
        latents = m.final_latents()
        rates[m.method_id] = (
            protection_rate(latents, vectors, radius)
            if all_finite(latents)
            else Undefined(NONFINITE)
        )
    return rates


def _vectors(index: Path) -> np.ndarray:
    return load_vectors(index).float().numpy()


def rates_against(run: RunDir, index: Path, radius: float) -> dict[str, float]:
    """Method id -> share of its final latents within `radius` of the set stored at
    `index`, for every method-config of the run with a complete prompt (any radius,
    any stored set: the experiment's Table 2 measures the runs that shield nothing).
    A method-config with a non-finite latent is left out."""
    rates = _rates(method_dirs(run), _vectors(index), radius)
    return {mid: rate for mid, rate in rates.items() if is_defined(rate)}


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
        rate = rates[method.method_id]
        result["metrics"]["protection_rate"] = rate if is_defined(rate) else None
        if not is_defined(rate):
            result.setdefault("notes", {}).setdefault("all", {})["protection_rate"] = rate.reason
    return {
        "index": str(path),
        "radius": radius,
        "size": len(vectors),
        "definition": SPEC.definition,
    }
