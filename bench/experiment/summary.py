"""results.json beside the page's figures: the seed statistics and verdicts, for machines."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .aggregate import Aggregate
from .claims import Claim
from .protection import ProtectionRow
from .sparsity import SparsityStats


def _configs(agg: Aggregate) -> dict[str, Any]:
    configs = {}
    for c in agg.configs:
        metrics = {}
        for k in agg.metric_keys:
            s = agg.metric(c.id, k)
            metrics[k] = {"mean": s.mean, "std": s.std, "n": s.n, "values": list(s.values)}
        configs[c.id] = {"method": c.method, "params": c.params, "metrics": metrics}
    return configs


def summary(
    agg: Aggregate,
    claims: list[Claim],
    sparsity: list[SparsityStats],
    protection: list[ProtectionRow],
) -> dict[str, Any]:
    """Seed means/stds per config and metric, protection rates, sparsity and verdicts."""
    return {
        "experiment": agg.exp.name,
        "method": agg.exp.method,
        "baseline": agg.exp.baseline,
        "seeds": [s.seed for s in agg.seeds],
        "defaults": agg.defaults,
        "verdicts": {
            "significance": agg.exp.spec.claims.significance,
            "test": agg.exp.spec.claims.test if agg.exp.spec.claims.significance else None,
        },
        "configs": _configs(agg),
        "protection": {
            row.method_id: {
                "label": row.label,
                "mean": row.rate.mean,
                "std": row.rate.std,
                "values": list(row.rate.values),
            }
            for row in protection
        },
        "sparsity": [s.__dict__ for s in sparsity],
        "claims": [
            {"key": c.key, "title": c.title, "holds": c.holds, "text": c.text} for c in claims
        ],
    }


def _json_default(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    raise TypeError(type(value))


def summary_json(data: dict[str, Any]) -> str:
    return json.dumps(data, indent=2, default=_json_default) + "\n"
