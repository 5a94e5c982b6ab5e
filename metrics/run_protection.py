"""Protection in a scored run: when a SPELL config shields a protected set (or the
scorer is handed one), every method-config of the run is measured against that set, so
`none` is the baseline:

- `protection_rate`: the share of final latents within r of a protected vector (exact
  search, in the space the shields live in);
- `copy_rate_<space>`: the share of samples whose best cosine similarity to a protected
  image exceeds the space's copy threshold (SSCD: 0.5), per prompt and overall;
- `ct_score` and `auth_pct`: the data-copying test (against the held-out reference
  images) and AuthPct, in the per-prompt feature space.

Prompts stream through one at a time; what is kept between prompts is a few numbers per
sample. Each sample's nearest protected item in every space goes to the run's
neighbours file, for the report's nearest-neighbour grid.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from bench.run_dir import RunDir
from metrics.aggregate import prompt_ci
from metrics.copying import (
    CT_MIN_GENERATED,
    Authenticity,
    DataCopyingTest,
    best_cosine,
    copy_rate,
    copy_rate_key,
)
from metrics.protected_set import ProtectedSet, open_protected_set
from metrics.protection import SPEC, nearest
from metrics.run_reader import MethodDir, method_dirs
from metrics.values import NONFINITE, Undefined, all_finite, is_defined

if TYPE_CHECKING:
    from metrics.method_scores import ScoreSettings
    from metrics.spaces import FeatureSpaces

LATENT_SPACE = "latent"  # the neighbours file's name for the shields' own space
Value = float | Undefined


def protected_set(methods: list[MethodDir]) -> ProtectedSet | None:
    """The set the first shielding method-config repels from, at its radius."""
    for method in methods:
        if method.params.get("protect"):
            return open_protected_set(Path(method.params["protect"]), method.params["radius"])
    return None


def rates_against(run: RunDir, index: Path, radius: float) -> dict[str, float]:
    """Method id -> share of its final latents within `radius` of the set stored at
    `index`, for every method-config of the run with a complete prompt; a method-config
    with a non-finite latent is left out."""
    vectors = open_protected_set(index, radius).vectors()
    rates = {m.method_id: _latent_rate(m, vectors, radius) for m in method_dirs(run)}
    return {mid: rate for mid, rate in rates.items() if is_defined(rate)}


def _latent_rate(method: MethodDir, vectors: np.ndarray, radius: float) -> Value:
    inside, count = 0, 0
    for pid in method.prompt_ids():
        latents = method.latents(pid)
        if not all_finite(latents):
            return Undefined(NONFINITE)
        inside += int((nearest(latents, vectors)[0] < radius).sum())
        count += len(latents)
    return inside / count


@dataclass
class _Fitted:
    """The protected set in each feature space, fitted once per run."""

    features: dict[str, np.ndarray]  # space -> (N, D) protected features
    thresholds: dict[str, float]  # copy spaces -> cosine threshold
    primary: str
    authenticity: Authenticity
    ct: DataCopyingTest


def fit_spaces(
    protected: ProtectedSet,
    spaces: FeatureSpaces,
    names: list[str],
    prompt_ids: list[str],
    thresholds: dict[str, float],
) -> _Fitted:
    """`names[0]` is the space of CT and AuthPct; every space whose extractor declares a
    `copy_threshold` (or that `thresholds` names) gets a copy rate."""
    shape = spaces.run.generated_shape()
    features = {n: spaces.protected_features(n, protected, shape) for n in names}
    copy = {}
    for n in names:
        own = getattr(spaces.extractors[n], "copy_threshold", None)
        if n in thresholds or own is not None:
            copy[n] = float(thresholds.get(n, thresholds.get("*", own)))
    primary = names[0]
    held_out = spaces.held_out_features(primary, protected, prompt_ids)
    seed = int(spaces.run.run_settings().get("seed", 0))
    ct = DataCopyingTest(features[primary], held_out, seed=seed)
    return _Fitted(features, copy, primary, Authenticity(features[primary]), ct)


class _MethodProtection:
    """One method-config's protection metrics, prompt by prompt."""

    def __init__(self, vectors: np.ndarray, radius: float, fitted: _Fitted | None) -> None:
        self.vectors, self.radius, self.fitted = vectors, radius, fitted
        copy_spaces = fitted.thresholds if fitted else {}
        self.copies: dict[str, dict[str, Value]] = {n: {} for n in copy_spaces}
        self.ct_stats: list[np.ndarray] = []
        self.authentic: list[np.ndarray] = []
        self.inside = self.count = 0
        self.nonfinite = False
        self.neighbours: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {}
        self.samples: list[tuple[str, int]] = []

    def add(self, pid: str, latents: np.ndarray, gen: dict | None) -> None:
        features = [] if gen is None else [o["features"] for o in gen.values()]
        if not all_finite(latents, *features):
            self.nonfinite = True
            return
        dist, index = nearest(latents, self.vectors)
        self.inside += int((dist < self.radius).sum())
        self.count += len(latents)
        self.samples.append((pid, len(latents)))
        self._neighbour(LATENT_SPACE, index, dist)
        if self.fitted is not None and gen is not None:
            self._add_features(pid, gen)

    def _add_features(self, pid: str, gen: dict) -> None:
        fitted = self.fitted
        for name, protected in fitted.features.items():
            feats = gen[name]["features"]
            if name in fitted.thresholds:
                similarity, index = best_cosine(feats, protected)
                self.copies[name][pid] = copy_rate(similarity, fitted.thresholds[name])
                self._neighbour(name, index, similarity)
            else:
                distance, index = nearest(feats, protected)
                self._neighbour(name, index, distance)
        primary = gen[fitted.primary]["features"]
        self.ct_stats.append(fitted.ct.statistics(primary))
        self.authentic.append(fitted.authenticity.authentic(primary))

    def _neighbour(self, space: str, index: np.ndarray, value: np.ndarray) -> None:
        self.neighbours.setdefault(space, []).append((np.asarray(index), np.asarray(value)))

    def values(self) -> dict[str, Value]:
        """Run-level values of every protection metric of this method-config."""
        keys = ["protection_rate", *(copy_rate_key(n) for n in self.copies)]
        if self.fitted is not None:
            keys += ["ct_score", "auth_pct"]
        if self.nonfinite:
            return {k: Undefined(NONFINITE) for k in keys}
        out: dict[str, Value] = {"protection_rate": self.inside / self.count}
        for name, rates in self.copies.items():
            out[copy_rate_key(name)] = float(np.mean(list(rates.values())))
        if self.fitted is not None:
            out["ct_score"] = self.fitted.ct.score(np.concatenate(self.ct_stats))
            out["auth_pct"] = self.fitted.authenticity.auth_pct(np.concatenate(self.authentic))
        return out

    def neighbour_arrays(self, method_id: str) -> dict[str, np.ndarray]:
        """The neighbours file's entries of this method-config (sample order: prompts in
        scoring order, samples in file order)."""
        if self.nonfinite or not self.samples:
            return {}
        pids = np.concatenate([np.full(n, p) for p, n in self.samples])
        rows = np.concatenate([np.arange(n) for _, n in self.samples])
        out = {f"{method_id}/prompt": pids.astype(str), f"{method_id}/sample": rows}
        for space, parts in self.neighbours.items():
            out[f"{method_id}/{space}/index"] = np.concatenate([i for i, _ in parts])
            out[f"{method_id}/{space}/value"] = np.concatenate([v for _, v in parts])
        return out


def measure(
    methods: list[MethodDir],
    protected: ProtectedSet,
    spaces: FeatureSpaces | None = None,
    names: list[str] | None = None,
    thresholds: dict[str, float] | None = None,
) -> tuple[dict[str, _MethodProtection], _Fitted | None]:
    """Every method-config against `protected`; feature spaces only when `spaces` is given
    (`names[0]` the per-prompt space)."""
    vectors = protected.vectors()
    fitted = None
    if spaces is not None and names:
        prompt_ids = methods[0].prompt_ids()
        fitted = fit_spaces(protected, spaces, names, prompt_ids, thresholds or {})
    out = {}
    for method in methods:
        tally = _MethodProtection(vectors, protected.radius, fitted)
        for pid in method.prompt_ids():
            gen = None
            if spaces is not None:
                gen = {n: o for n, o in spaces.generated(method, method.load(pid)).items()}
            tally.add(pid, method.latents(pid), gen)
        out[method.method_id] = tally
    return out, fitted


def add_protection(
    results: list[dict],
    methods: list[MethodDir],
    spaces: FeatureSpaces | None = None,
    names: list[str] | None = None,
    settings: ScoreSettings | None = None,
    protected: ProtectedSet | None = None,
) -> dict | None:
    """Adds the protection metrics to each result and writes the neighbours file;
    returns the protocol entry, or None without a protected set. `methods` are the
    scored method dirs (a partial score restricts their prompts)."""
    protected = protected or protected_set(methods)
    if protected is None:
        return None
    thresholds = dict(getattr(settings, "copy_thresholds", None) or {})
    tallies, fitted = measure(methods, protected, spaces, names, thresholds)
    neighbours: dict[str, np.ndarray] = {}
    for result, method in zip(results, methods, strict=True):
        tally = tallies[method.method_id]
        _merge(result, tally, settings)
        neighbours.update(tally.neighbour_arrays(method.method_id))
    methods[0].run.write_neighbours(neighbours)
    return _protocol(protected, fitted)


def _merge(result: dict, tally: _MethodProtection, settings: ScoreSettings | None) -> None:
    notes = result.setdefault("notes", {})
    for key, value in tally.values().items():
        result["metrics"][key] = value if is_defined(value) else None
        if not is_defined(value):
            notes.setdefault("all", {})[key] = value.reason
    for name, rates in tally.copies.items():
        key = copy_rate_key(name)
        for pid, rate in rates.items():
            result.setdefault("per_prompt", {}).setdefault(pid, {})[key] = float(rate)
        if settings is not None and not tally.nonfinite:
            interval = prompt_ci(
                rates,
                settings.bootstrap_resamples,
                settings.bootstrap_level,
                settings.bootstrap_seed,
            )
            defined = is_defined(interval)
            result.setdefault("ci", {})[key] = list(interval) if defined else None
            if not defined:
                notes.setdefault("all", {})[f"{key}_ci"] = interval.reason


def _protocol(protected: ProtectedSet, fitted: _Fitted | None) -> dict:
    out = {
        "index": str(protected.index),
        "radius": protected.radius,
        "size": protected.count,
        "source": protected.source,
        "definition": SPEC.definition,
    }
    if fitted is not None:
        out["copy_thresholds"] = fitted.thresholds
        out["copy_similarity"] = "cosine of L2-normalised features, best over the protected set"
        out["copying_space"] = fitted.primary
        out["ct"] = {
            "held_out": protected.held_out_description(),
            "pca": "to 64 components, fitted on the protected set, when it has more dims",
            "cells": "3 k-means cells of the protected set (n_init 10, seeded by the run)",
            "min_generated": f"a cell counts with more than {CT_MIN_GENERATED} samples",
            "convention": "dgm-eval (layer6ai-labs) compute_CTscore",
        }
        out["auth_pct"] = "dgm-eval (layer6ai-labs) definition, exact float64 distances"
    return out


def scores_against(run: RunDir, index: Path, radius: float) -> dict[str, dict[str, float | None]]:
    """Method id -> every protection metric against the set stored at `index`, in the run
    model's default feature spaces (cached features are reused): for the runs that shield
    nothing, or another radius."""
    from metrics.references import get_reference
    from metrics.spaces import FeatureSpaces

    methods = method_dirs(run)
    reference = get_reference(run.model(), run.path)
    names = list(reference.extractors)
    spaces = FeatureSpaces(run.path, names, reference)
    tallies, _ = measure(methods, open_protected_set(index, radius), spaces, names)
    return {
        mid: {k: (v if is_defined(v) else None) for k, v in tally.values().items()}
        for mid, tally in tallies.items()
    }
