"""Protection in a scored run: when a SPELL config shields a protected set, every
method-config of the run gets the share of its final latents within r of that set
(exact search, in the space the shields live in), so `none` is the baseline."""

from __future__ import annotations

from pathlib import Path

from bench.shields.store import load_vectors
from metrics.protection import SPEC, protection_rate
from metrics.run_reader import MethodDir


def protected_set(methods: list[MethodDir]) -> tuple[Path, float] | None:
    """(index path, radius) of the first method-config that shields a protected set."""
    for method in methods:
        if method.params.get("protect"):
            return Path(method.params["protect"]), float(method.params["radius"])
    return None


def add_protection(results: list[dict], methods: list[MethodDir]) -> dict | None:
    """Adds `protection_rate` to each result; returns the protocol entry, or None."""
    found = protected_set(methods)
    if found is None:
        return None
    path, radius = found
    vectors = load_vectors(path).float().numpy()
    for result, method in zip(results, methods, strict=True):
        result["metrics"]["protection_rate"] = protection_rate(
            method.final_latents(), vectors, radius
        )
    return {
        "index": str(path),
        "radius": radius,
        "size": len(vectors),
        "definition": SPEC.definition,
    }
