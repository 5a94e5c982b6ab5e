"""Scores of one method dir: per-prompt metrics, their aggregates, marginal FDs and cost."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from bench.errors import BenchError
from metrics.aggregate import mean_over_prompts, prompt_ci
from metrics.bootstrap import DEFAULT_LEVEL, DEFAULT_RESAMPLES, DEFAULT_SEED
from metrics.exact import SPECS as EXACT_SPECS
from metrics.exact import exact_scores
from metrics.frechet import GaussianAccumulator, fd_key
from metrics.prdc import DEFAULT_K, PRDC_KEYS, compute_prdc
from metrics.quality import class_scores, clip_scores
from metrics.run_reader import MethodDir, PromptSamples
from metrics.spaces import FeatureSpaces, Outputs
from metrics.subset_metrics import subset_keys, subset_values
from metrics.values import NONFINITE, Undefined, all_finite
from metrics.vendi import vendi_score

PER_PROMPT = ("recall", "precision", "density", "coverage", "vendi")
Value = float | Undefined


@dataclass(frozen=True)
class ScoreSettings:
    k: int = DEFAULT_K
    bootstrap_resamples: int = DEFAULT_RESAMPLES
    bootstrap_level: float = DEFAULT_LEVEL
    bootstrap_seed: int = DEFAULT_SEED
    # copy spaces' cosine thresholds over the extractors' own (SSCD: 0.5)
    copy_thresholds: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class GroundTruthScoring:
    """A model whose true distribution is known: the exact metrics of metrics/exact.py on
    each prompt's final latents (prompt ids are class labels)."""

    truth: Any
    batch_size: int
    seed: int

    def values(self, prompt_id: str, latents: np.ndarray | None, k: int) -> dict[str, Value]:
        if not prompt_id.isdigit():
            raise BenchError(f"ground-truth prompt ids are class labels, got {prompt_id!r}")
        if latents is None:
            raise BenchError(f"prompt {prompt_id!r} has no latents: regenerate it")
        points = latents.reshape(len(latents), -1)
        return exact_scores(points, self.truth, int(prompt_id), self.batch_size, self.seed, k)

    @staticmethod
    def keys() -> tuple[str, ...]:
        return tuple(spec.key for spec in EXACT_SPECS)


def score_method(
    method: MethodDir,
    spaces: FeatureSpaces,
    names: list[str],
    settings: ScoreSettings,
    exact: GroundTruthScoring | None = None,
) -> dict:
    """The `results` entry of metrics.json for one method-config."""
    tally, cost = _Tally(names, spaces.reference.quality), _CostTally()
    rows = spaces.row_files.writer()  # every space's outputs, for the subset metrics
    prompt_ids = method.prompt_ids()
    for pid in prompt_ids:
        samples = method.load(pid)
        gen, ref = spaces.generated(method, samples), spaces.reference_outputs(pid)
        latents = samples.arrays.get("latents")
        reason = nonfinite_reason(gen, ref, latents)
        if reason is not None:
            tally.skip(pid, gen, ref, reason, () if exact is None else exact.keys())
        else:
            extra = {} if exact is None else exact.values(pid, latents, settings.k)
            tally.add(pid, gen, ref, _quality_scores(spaces, pid, gen), settings.k, extra)
            for name in names:
                for output, values in gen[name].items():
                    rows.append((name, output), values)
        cost.add(samples)
    metrics, ci = tally.aggregate(settings)
    frechet = tally.frechet({n: spaces.reference_statistics(n, prompt_ids) for n in names})
    subsets, spread = _subset_scores(rows.finish(), spaces, names, prompt_ids, tally, settings)
    return {
        "method_id": method.method_id,
        "method": method.method,
        "params": method.params,
        "metrics": {**metrics, **frechet, **subsets},
        "ci": ci,
        "spread": spread,
        "per_prompt": tally.per_prompt,
        "counts": tally.counts(),
        "cost": cost.summary(),
        "notes": {scope: n for scope, n in tally.notes.items() if n},
    }


def _subset_scores(
    rows: dict[tuple[str, str], np.ndarray],
    spaces: FeatureSpaces,
    names: list[str],
    prompt_ids: list[str],
    tally: _Tally,
    settings: ScoreSettings,
) -> tuple[dict[str, float | None], dict[str, float]]:
    """KID, FD-infinity and IS (metrics.subset_metrics), null when a prompt was left out."""

    def has_probs(name: str) -> bool:
        return "probs" in spaces.reference_outputs(prompt_ids[0])[name]

    left_out = tally.left_out()
    if left_out is not None:
        values, spread = {k: left_out for k in subset_keys(names, has_probs)}, {}
    else:
        values, spread = subset_values(
            rows,
            lambda n: spaces.reference_rows(n, prompt_ids),
            lambda n: spaces.reference_statistics(n, prompt_ids),
            names,
            settings.bootstrap_seed,
        )
    return {k: _plain(k, v, tally.notes["all"]) for k, v in values.items()}, spread


def nonfinite_reason(
    gen: dict[str, Outputs], ref: dict[str, Outputs], latents: np.ndarray | None
) -> str | None:
    """Why none of a prompt's metrics has a value, if a NaN or inf is in what they are
    computed from: every extractor's outputs, and the final latents (the ground-truth
    metrics' features; non-finite latents decode to meaningless uint8 images)."""
    generated = [a for outputs in gen.values() for a in outputs.values()]
    if not all_finite(*generated, *([] if latents is None else [latents])):
        return NONFINITE
    if not all_finite(*(a for outputs in ref.values() for a in outputs.values())):
        return "non-finite reference features"
    return None


def _quality_scores(spaces: FeatureSpaces, pid: str, gen: dict[str, Outputs]) -> np.ndarray:
    ref = spaces.reference
    if ref.quality == "class_score" and ref.class_index is not None:
        probs = gen[ref.quality_extractor]["probs"]
        return class_scores(probs, np.full(len(probs), ref.class_index(pid)))
    image = gen[ref.quality_extractor]["features"]
    return clip_scores(image, np.repeat(spaces.text_features(pid), len(image), axis=0))


class _Tally:
    """Per-prompt values as prompts come in; run-level values at the end."""

    def __init__(self, names: list[str], quality: str) -> None:
        self.names, self.quality = names, quality
        self.raw: dict[str, dict[str, Value]] = {m: {} for m in (*PER_PROMPT, quality)}
        self.per_prompt: dict[str, dict] = {}
        self.notes: dict[str, dict[str, str]] = {"all": {}}
        self.gen = {n: GaussianAccumulator() for n in names}
        self.quality_sum, self.quality_count = 0.0, 0
        self.nonfinite: dict[str, str] = {}  # prompts left out of every metric, FD included

    def add(self, pid: str, gen: dict, ref: dict, quality: np.ndarray, k: int, extra: dict) -> None:
        for n in self.names:
            self.gen[n].update(gen[n]["features"])
        self.quality_sum += float(np.sum(quality, dtype=np.float64))
        self.quality_count += len(quality)
        primary = self.names[0]
        values = _prompt_values(gen[primary]["features"], ref[primary]["features"], k)
        values[self.quality] = float(quality.mean())
        values.update(extra)
        self._record(pid, gen, ref, values)

    def skip(self, pid: str, gen: dict, ref: dict, reason: str, extra: tuple[str, ...]) -> None:
        """A prompt whose every metric is undefined: missing from the means, and the
        running FD sums never see it (the FD itself is then undefined)."""
        self.nonfinite[pid] = reason
        undefined = Undefined(reason)
        self._record(pid, gen, ref, {m: undefined for m in (*PER_PROMPT, self.quality, *extra)})

    def _record(self, pid: str, gen: dict, ref: dict, values: dict[str, Value]) -> None:
        for m, v in values.items():
            self.raw.setdefault(m, {})[pid] = v
        notes = self.notes.setdefault(pid, {})
        primary = self.names[0]
        self.per_prompt[pid] = {
            "n_generated": len(gen[primary]["features"]),
            "n_reference": len(ref[primary]["features"]),
            **{m: _plain(m, v, notes) for m, v in values.items()},
        }

    def aggregate(self, s: ScoreSettings) -> tuple[dict, dict]:
        metrics, ci, notes = {}, {}, self.notes["all"]
        for m, values in self.raw.items():
            mean, note = mean_over_prompts(values)
            # CLIP-score convention: over all (image, prompt) pairs
            if m == self.quality and not isinstance(mean, Undefined):
                mean = self.quality_sum / self.quality_count
            metrics[m] = _plain(m, mean, notes)
            if note:
                notes[m] = note
            interval = prompt_ci(values, s.bootstrap_resamples, s.bootstrap_level, s.bootstrap_seed)
            ci[m] = list(interval) if not isinstance(interval, Undefined) else None
            if isinstance(interval, Undefined):
                notes[f"{m}_ci"] = interval.reason
        return metrics, ci

    def frechet(self, reference: dict[str, GaussianAccumulator]) -> dict[str, float | None]:
        out = {}
        for n in self.names:
            key = fd_key(n)
            value = self.left_out() or self.gen[n].frechet(reference[n])
            out[key] = _plain(key, value, self.notes["all"])
        return out

    def left_out(self) -> Undefined | None:
        if not self.nonfinite:
            return None
        reasons = " / ".join(sorted(set(self.nonfinite.values())))
        return Undefined(f"{reasons} in prompt(s) {', '.join(self.nonfinite)}")

    def counts(self) -> dict[str, int]:
        return {
            "n_generated": sum(p["n_generated"] for p in self.per_prompt.values()),
            "n_reference": sum(p["n_reference"] for p in self.per_prompt.values()),
            "prompts": len(self.per_prompt),
        }


def _prompt_values(gen: np.ndarray, ref: np.ndarray, k: int) -> dict[str, Value]:
    prdc = compute_prdc(ref, gen, k)
    values: dict[str, Value] = {
        m: prdc if isinstance(prdc, Undefined) else prdc[m] for m in PRDC_KEYS
    }
    values["vendi"] = vendi_score(gen)
    return values


def _plain(name: str, value: Value, notes: dict[str, str]) -> float | None:
    """JSON value: the number, or None with the reason recorded in `notes`."""
    if isinstance(value, Undefined):
        notes[name] = value.reason
        return None
    return float(value)


class _CostTally:
    """Seconds per image (mean, standard deviation) and mean NFE. Per-image values are
    kept as arrays: eight bytes an image, and the mean then equals numpy's to the bit."""

    def __init__(self) -> None:
        self.seconds: list[np.ndarray] = []
        self.nfe: list[np.ndarray] = []

    def add(self, samples: PromptSamples) -> None:
        if "nfe" in samples.arrays:
            self.nfe.append(np.asarray(samples.arrays["nfe"], np.float64).ravel())
        if samples.seconds is not None:
            self.seconds.append(np.asarray(samples.seconds, np.float64).ravel())

    def summary(self) -> dict[str, float]:
        out = {}
        if self.seconds:
            seconds = np.concatenate(self.seconds)
            out["seconds_per_image"] = float(seconds.mean())
            out["seconds_per_image_std"] = float(seconds.std(ddof=1)) if len(seconds) > 1 else 0.0
        if self.nfe:
            out["nfe_per_image"] = float(np.concatenate(self.nfe).mean())
        return out
