"""Table 2's protected set: built once with `bench protect build`'s code, and the
protection rate of every method-config of a seed's runs.

Images (the digits splits, a folder) are encoded by `bench.protect.build_protected_set`.
On the toy2d models the protected set is points, not images (`images = "toy2d-train"`):
a seeded, class-balanced subset of `count` of the points the toy2d MLP was trained on
(bench.train_toy2d.training_data with the recipe's size and seed), stored as they are by
the same writer (`bench.shields.save_shields`), since rendering them as images and
encoding them back (`encode`: the spot's centroid) would only approximate them.

The scorer already adds `protection_rate` to the runs whose tested method shields the
set (metrics.run_protection), measured with that method's shield radius; those numbers
are read from metrics.json. The main runs shield nothing, and an experiment may ask for
a rate radius other than the shield radius: for those, the scorer's own
`metrics.run_protection.scores_against` measures them (and the copy rates, CT
and AuthPct) with the experiment's radius.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from bench.errors import BenchError
from bench.shields.store import read_manifest
from metrics.protection import is_protection_key
from metrics.run_protection import scores_against
from reports.rundata import RunData

from .aggregate import Aggregate
from .schema import TOY2D_TRAIN, Experiment
from .seeds import Seeds
from .stats import Stat


def shield_count(path: Path) -> int:
    return int(read_manifest(path)["count"])


def shield_dim(path: Path) -> int:
    return int(read_manifest(path)["dim"])


def _is_built(path: Path, meta: dict) -> bool:
    try:
        found = read_manifest(path).get("meta") or {}
    except BenchError:
        return False
    return all(found.get(k) == v for k, v in meta.items())


def toy2d_training_points(count: int, seed: int) -> np.ndarray:
    """`count` of the toy2d training points (count / C per class), chosen with `seed`."""
    from bench.models.toy2d import NUM_CLASSES
    from bench.train_toy2d import RECIPES, training_data

    recipe = RECIPES["toy2d"]["training"]
    points, labels = training_data(recipe["data_size"], recipe["seed"]).tensors
    rng = np.random.default_rng(seed)
    per = [count // NUM_CLASSES + (c < count % NUM_CLASSES) for c in range(NUM_CLASSES)]
    chosen = [
        rng.choice(np.flatnonzero(labels.numpy() == c), size=n, replace=False)
        for c, n in enumerate(per)
    ]
    return points.numpy()[np.sort(np.concatenate(chosen))]


def _build_points(exp: Experiment, path: Path, meta: dict) -> Path:
    from bench.shields import save_shields

    spec = exp.spec.protection
    if not exp.seed_config(exp.seeds[0]).run.model.startswith("toy2d"):
        raise BenchError(f"[protection] images = {TOY2D_TRAIN!r} needs a toy2d model")
    points = toy2d_training_points(spec.count, spec.subset_seed)
    return save_shields(path, torch.from_numpy(points).float(), backend="exact", meta=meta)


def ensure_shields(exp: Experiment, log: Callable[[str], None]) -> Path:
    """The protected set as a stored exact shield set, built once per experiment."""
    from bench.generate import model_kwargs
    from bench.models.registry import load_model
    from bench.protect import build_protected_set

    spec = exp.spec.protection
    assert spec is not None
    config = exp.seed_config(exp.seeds[0])
    path = exp.shield_path
    meta = {"model": config.run.model, "source": spec.source}
    if spec.points:
        meta.update(count=spec.count, subset_seed=spec.subset_seed)
    if _is_built(path, meta):
        return path
    log(f"building the protected set {spec.source} in {path}")
    if spec.points:
        return _build_points(exp, path, meta)
    model = load_model(config.run.model, **model_kwargs(config))
    return build_protected_set(model, spec.source, path, backend="exact", progress=False)


Scores = dict[str, dict[str, float | None]]  # method id -> protection metric -> value


def scored_protection(run: RunData, index: Path, radius: float) -> Scores | None:
    """The scorer's protection metrics, when it measured against the same set with the
    same radius."""
    scored = run.protocol.get("protection") or {}
    same_set = scored.get("index") and Path(scored["index"]).resolve() == index.resolve()
    if not same_set or scored.get("radius") != radius:
        return None
    keys = [k for k in run.metric_keys() if is_protection_key(k)]
    return {c.id: {k: run.metric(c.id, k) for k in keys} for c in run.configs}


def seed_protection(index: Path, radius: float) -> Callable[[RunData], Scores]:
    """Per run: the scored metrics if they answer the question, else measured ones."""

    def scores(run: RunData) -> Scores:
        found = scored_protection(run, index, radius)
        return found if found is not None else scores_against(run.run, index, radius)

    return scores


SPLIT_NAMES = {"train": "training"}


@dataclass(frozen=True)
class ProtectionRow:
    """A row of Table 2: the rate over seeds of one method-config, and its runs."""

    label: str
    method_id: str
    rate: Stat
    runs: Seeds


def protection_rows(agg: Aggregate) -> list[ProtectionRow]:
    """The baseline and the tested default (main runs), then the tested method repelling
    from the protected set (protection runs); empty without protection runs."""
    if not agg.protect or not agg.protect.runs[0].protection:
        return []
    protected_id = agg.protect.runs[0].config_of(agg.exp.method)
    if protected_id is None:
        return []
    base = agg.base or agg.exp.baseline
    rows = [ProtectionRow(agg.exp.baseline, base, agg.seeds.rate(base), agg.seeds)]
    if agg.tested:
        label = f"{agg.exp.label} (diversity shields only)"
        rows.append(ProtectionRow(label, agg.tested, agg.seeds.rate(agg.tested), agg.seeds))
    label = f"{agg.exp.label} + {split_name(agg)} split"
    rows.append(ProtectionRow(label, protected_id, agg.protect.rate(protected_id), agg.protect))
    return rows


def protected_items(agg: Aggregate) -> tuple[str, str]:
    """What the protected set holds and the space of its distances, for the page:
    ("image", "[-1, 1] pixels") or ("point", "2-D points")."""
    spec = agg.exp.spec.protection
    if spec is not None and spec.points:
        return "point", f"{agg.shield_dim}-D points"
    return "image", "[-1, 1] pixels"


def split_name(agg: Aggregate) -> str:
    assert agg.exp.spec.protection is not None
    split = agg.exp.spec.protection.split
    return SPLIT_NAMES.get(split, split)
