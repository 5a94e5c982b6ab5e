"""One seed's scored runs, read through reports.rundata, and the set of seeds that the
statistics (stats.py) run over."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from reports.cost import Cost
from reports.rundata import RunData, load_run
from reports.tables import run_costs

from .stats import Paired, Stat, paired, stat


@dataclass
class SeedRun:
    """A scored run directory of one seed; `protection`: method id -> its protection
    metrics (protection_rate, copy rates, ct_score, auth_pct)."""

    seed: int
    run: RunData
    protection: dict[str, dict[str, float | None]] = field(default_factory=dict)
    costs: dict[str, Cost | None] = field(default_factory=dict)

    @property
    def path(self) -> Path:
        return self.run.path

    def metric(self, method_id: str, key: str) -> float | None:
        return self.run.metric(method_id, key)

    def protection_value(self, method_id: str, key: str = "protection_rate") -> float | None:
        return self.protection.get(method_id, {}).get(key)

    def cost(self, method_id: str) -> Cost | None:
        return self.costs.get(method_id)

    def image_times(self, method_id: str) -> np.ndarray:
        """Seconds per image of every image of the method-config, prompt order."""
        found: list[float] = []
        for prompt_id in self.run.prompt_ids:
            found += self.run.run.wall_times(method_id, prompt_id) or []
        return np.asarray(found, dtype=float)

    def config_of(self, method: str) -> str | None:
        """The first method-config of `method` in the run."""
        return next((c.id for c in self.run.configs if c.method == method), None)


def load_seed(seed: int, path: Path, rates: Callable[[RunData], dict[str, dict]] | None) -> SeedRun:
    """A scored run; `rates` gives its protection metrics (None: no protected set)."""
    run = load_run(path)
    return SeedRun(seed, run, rates(run) if rates else {}, run_costs(run))


Value = Callable[[SeedRun], float | None]


@dataclass
class Seeds:
    """The runs of every seed of one kind (main or protection), seed order."""

    runs: list[SeedRun]

    def __iter__(self):
        return iter(self.runs)

    def __len__(self) -> int:
        return len(self.runs)

    def __bool__(self) -> bool:
        return bool(self.runs)

    def over(self, value: Value) -> Stat:
        """Mean ± std over seeds of a per-seed value."""
        return stat(value(s) for s in self.runs)

    def pair(self, a: Value, b: Value) -> Paired:
        """Per-seed values of a and b, on the seeds where both have one."""
        return paired((a(s), b(s)) for s in self.runs)

    def metric(self, method_id: str, key: str) -> Stat:
        return self.over(lambda s: s.metric(method_id, key))

    def paired_metric(self, a: str, b: str, key: str) -> Paired:
        return self.pair(lambda s: s.metric(a, key), lambda s: s.metric(b, key))

    def rate(self, method_id: str, key: str = "protection_rate") -> Stat:
        """A protection metric (the L2 rate by default) over seeds."""
        return self.over(lambda s: s.protection_value(method_id, key))
