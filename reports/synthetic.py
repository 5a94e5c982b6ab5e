"""A fabricated scored run directory in the run-directory contract (DESIGN.md,
"Run directory"): for report tests, demos and timing without a model.

Numbers follow the paper's qualitative story (a larger SPELL radius buys recall
with precision), but nothing here is measured.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import tomli_w

from bench.atomic import atomic_write_text
from bench.run_dir import RunDir

IMAGE = 8


@dataclass(frozen=True)
class FakeConfig:
    id: str
    method: str
    params: dict[str, Any] = field(default_factory=dict)
    strength: float = 0.0  # 0: no correction; larger: corrects more, longer, harder


SPELL_DEFAULTS = {
    "overcompensation": 1.6,
    "intra_batch": True,
    "sequential": False,
    "inter_batch": True,
    "protect": None,
}

DEFAULT_CONFIGS = [
    FakeConfig("none", "none"),
    FakeConfig("spell-r1-l1.6", "spell", {"radius": 1.0, **SPELL_DEFAULTS}, 0.5),
    FakeConfig("spell-r2-l1.6", "spell", {"radius": 2.0, **SPELL_DEFAULTS}, 1.0),
    FakeConfig("spell-r3-l1.6", "spell", {"radius": 3.0, **SPELL_DEFAULTS}, 1.5),
]


def _image(rng: np.random.Generator) -> np.ndarray:
    """An 8x8 blob, a little like a digit."""
    yy, xx = np.mgrid[0:IMAGE, 0:IMAGE]
    img = np.zeros((IMAGE, IMAGE))
    for _ in range(3):
        cy, cx, s = rng.uniform(1.5, 6.5), rng.uniform(1.5, 6.5), rng.uniform(0.8, 1.8)
        img += np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * s**2))
    return (255 * img / img.max()).astype(np.uint8)[..., None]


def _traces(rng: np.random.Generator, n: int, steps: int, strength: float):
    """Active from the first step until a per-trajectory finish step, or never."""
    if strength == 0:
        return np.zeros((n, steps), bool), np.zeros((n, steps), np.float32)
    corrected = rng.random(n) < min(0.9, 0.4 + 0.3 * strength)
    finish = np.minimum(rng.geometric(1 / (1 + 6 * strength), n), steps)
    active = (np.arange(steps)[None, :] < finish[:, None]) & corrected[:, None]
    ratio = rng.lognormal(np.log(0.04 * strength), 0.6, (n, steps)) * active
    return active, ratio.astype(np.float32)


def _prompt_arrays(
    prompt: int, config: FakeConfig, samples: int, steps: int, batch: int, seed: int
):
    seeds = np.array([seed * 1_000_003 + prompt * 1009 + i for i in range(samples)], np.int64)
    rng = np.random.default_rng([seed, prompt, int(config.strength * 100)])
    active, ratio = _traces(rng, samples, steps, config.strength)
    changed = active.any(axis=1)
    images = np.stack(
        [
            # An uncorrected trajectory ends where `none` does: same seed, same image.
            _image(np.random.default_rng([int(s), int(config.strength * 100) if changed[i] else 0]))
            for i, s in enumerate(seeds)
        ]
    )
    per_image = 0.05 * (1 + 0.03 * config.strength) + rng.normal(0, 0.002, samples // batch + 1)
    return {
        "images": images,
        "latents": images.transpose(0, 3, 1, 2).astype(np.float32) / 255,
        "sample_index": np.arange(samples, dtype=np.int64),
        "seeds": seeds,
        "batch": np.arange(samples, dtype=np.int64) // batch,
        "nfe": np.full(samples, 2 * steps, np.int64),
        "seconds": per_image[np.arange(samples) // batch],
        "trace_t": (1 - np.arange(steps) / steps).astype(np.float32),
        "trace_active": active,
        "trace_delta_norm": ratio * 3,
        "trace_ratio": ratio,
    }


def _metrics(config: FakeConfig, protection: bool) -> dict[str, float]:
    s = config.strength
    values = {
        "recall": 0.25 + 0.06 * s,
        "precision": 0.56 - 0.02 * s - 0.01 * s**2,
        "density": 0.77 - 0.03 * s**1.5,
        "coverage": 0.446 + 0.01 * s - 0.006 * s**2,
        "vendi": 2.5 + 0.15 * s,
        "fd_digits": 106 - 6 * s + 4 * s**2,
        "class_score": 97.0 - 0.4 * s**2,
    }
    if protection:
        values["protection_rate"] = 0.076 / (1 + 20 * s)
    return values


def _result(config: FakeConfig, prompts: list[str], protection: bool, nulls: list[str]):
    metrics: dict[str, float | None] = dict(_metrics(config, protection))
    ci = {k: [v - 0.01 * abs(v) - 0.005, v + 0.01 * abs(v) + 0.005] for k, v in metrics.items()}
    for key in nulls:
        metrics[key], ci[key] = None, None
    notes = {"all": {key: "fewer than k + 1 samples" for key in nulls}} if nulls else {}
    return {
        "method_id": config.id,
        "method": config.method,
        "params": config.params,
        "metrics": metrics,
        "ci": ci,
        "per_prompt": {p: {"recall": metrics["recall"]} for p in prompts},
        "cost": {"seconds_per_image": 0.05, "seconds_per_image_std": 0.002, "nfe_per_image": 40},
        "notes": notes,
    }


def make_run(
    path: Path,
    prompts: int = 10,
    samples: int = 32,
    steps: int = 20,
    batch_size: int = 8,
    configs: list[FakeConfig] | None = None,
    protection: bool = False,
    nulls: dict[str, list[str]] | None = None,
    scored: bool = True,
) -> Path:
    """Write manifest, config, samples (npz + method.json) and, if scored, metrics.json."""
    configs = DEFAULT_CONFIGS if configs is None else configs
    prompt_ids = [str(p) for p in range(prompts)]
    run = RunDir(path)
    for config in configs:
        info = {"id": config.id, "method": config.method, "params": config.params}
        if config.method == "spell":
            info["defaults"] = {"radius": 2.0, **SPELL_DEFAULTS}
        run.write_method_info(config.id, info)
        for p in range(prompts):
            arrays = _prompt_arrays(p, config, samples, steps, batch_size, 0)
            run.save_prompt(config.id, str(p), arrays)
    _write_run_files(run, configs, prompt_ids, samples, steps, batch_size)
    if scored:
        results = [_result(c, prompt_ids, protection, (nulls or {}).get(c.id, [])) for c in configs]
        metrics = {
            "protocol": {"extractor": "digits", "bootstrap": 1000, "k": 5},
            "results": results,
        }
        run.write_metrics(json.dumps(metrics, indent=2), "")
    return path


def _write_run_files(run: RunDir, configs, prompt_ids, samples, steps, batch_size) -> None:
    path = run.path
    sweeps: dict[str, dict[str, list]] = {}
    for c in configs:
        table = sweeps.setdefault(c.method, {})
        for k, v in c.params.items():
            if v is not None and v not in table.setdefault(k, []):
                table[k].append(v)
    method_tables = {
        m: {k: v[0] if len(v) == 1 else v for k, v in params.items() if v}
        for m, params in sweeps.items()
        if params
    }
    methods = list(dict.fromkeys(c.method for c in configs))
    config = {
        "run": {
            "name": path.name,
            "model": "digits",
            "methods": methods,
            "samples": samples,
            "batch_size": batch_size,
            "steps": steps,
            "seed": 0,
        },
        "method": method_tables,
    }
    atomic_write_text(run.config_file, tomli_w.dumps(config))
    manifest = {
        "status": "scored",
        "config_hash": "0123456789abcdef",
        "seed": 0,
        "threads": 2,
        "git_sha": "0" * 40,
        "versions": {"spellbench": "0.1.0", "numpy": np.__version__},
        "hardware": {"platform": "synthetic", "cpu_count": 2, "device": "cpu"},
        "guidance": 2.0,
        "steps": steps,
        "method_ids": [c.id for c in configs],
        "prompt_ids": prompt_ids,
        "generation_seconds": 1.0,
        "images_generated": len(configs) * len(prompt_ids) * samples,
    }
    atomic_write_text(run.manifest_file, json.dumps(manifest, indent=2))
