"""Table 2's protected set: built once with `bench protect build`'s code, and the
protection rate of every method-config of a seed's runs.

The scorer already adds `protection_rate` to the runs whose tested method shields the
set (metrics.run_protection), measured with that method's shield radius; those numbers
are read from metrics.json. The main runs shield nothing, and an experiment may ask for
a rate radius other than the shield radius: for those, `measured_rates` runs the
scorer's own functions (metrics.protection.protection_rate over the final latents that
metrics.run_reader reads) with the experiment's radius.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bench.errors import BenchError
from bench.shields.store import load_vectors, read_manifest
from reports.rundata import RunData

from .aggregate import Aggregate
from .schema import Experiment
from .seeds import Seeds
from .stats import Stat


def shield_count(path: Path) -> int:
    return int(read_manifest(path)["count"])


def shield_dim(path: Path) -> int:
    return int(read_manifest(path)["dim"])


def _is_built(path: Path, model: str, source: str) -> bool:
    try:
        meta = read_manifest(path).get("meta") or {}
    except BenchError:
        return False
    return meta.get("model") == model and meta.get("source") == source


def ensure_shields(exp: Experiment, log: Callable[[str], None]) -> Path:
    """The protected images as a stored exact shield set, built once per experiment."""
    from bench.generate import model_kwargs
    from bench.models.registry import load_model
    from bench.protect import build_protected_set

    assert exp.spec.protection is not None
    config = exp.seed_config(exp.seeds[0])
    source, path = exp.spec.protection.source, exp.shield_path
    if _is_built(path, config.run.model, source):
        return path
    log(f"building the protected set {source} in {path}")
    model = load_model(config.run.model, **model_kwargs(config))
    return build_protected_set(model, source, path, backend="exact", progress=False)


def measured_rates(run: RunData, index: Path, radius: float) -> dict[str, float]:
    """Method id -> share of its final latents within `radius` of the stored set."""
    from metrics.protection import protection_rate
    from metrics.run_reader import method_dirs

    vectors = load_vectors(index).float().numpy()
    return {
        m.method_id: protection_rate(m.final_latents(), vectors, radius)
        for m in method_dirs(run.run)
    }


def scored_rates(run: RunData, index: Path, radius: float) -> dict[str, float] | None:
    """The scorer's rates, when it measured against the same set with the same radius."""
    scored = run.protocol.get("protection") or {}
    same_set = scored.get("index") and Path(scored["index"]).resolve() == index.resolve()
    if not same_set or scored.get("radius") != radius:
        return None
    rates = {c.id: run.metric(c.id, "protection_rate") for c in run.configs}
    return {mid: rate for mid, rate in rates.items() if rate is not None}


def rates_against(index: Path, radius: float) -> Callable[[RunData], dict[str, float]]:
    """Per run: the scored rates if they answer the question, else measured ones."""

    def rates(run: RunData) -> dict[str, float]:
        found = scored_rates(run, index, radius)
        return found if found is not None else measured_rates(run, index, radius)

    return rates


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


def split_name(agg: Aggregate) -> str:
    assert agg.exp.spec.protection is not None
    split = agg.exp.spec.protection.split
    return SPLIT_NAMES.get(split, split)
