"""The seeds of an experiment taken together: its method-configs, their default configs,
and the seed means as a RunData, the input the report's figure builders take."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.errors import BenchError
from bench.run_dir import RunDir
from metrics.catalog import metric_info, ordered
from reports.rundata import MethodConfig, RunData
from reports.tables import default_configs

from .schema import Experiment
from .seeds import Seeds
from .stats import Paired, Stat


@dataclass
class Aggregate:
    exp: Experiment
    seeds: Seeds
    protect: Seeds
    configs: list[MethodConfig]  # the main runs' method-configs, run order
    metric_keys: list[str]
    defaults: dict[str, str]  # method -> default config id (the tested one: its `default`)
    shield_count: int | None = None
    shield_dim: int | None = None

    @property
    def tested(self) -> str | None:
        """The default config of the method under test (Table 1, Figure 5)."""
        return self.defaults.get(self.exp.method)

    @property
    def base(self) -> str | None:
        """The default config of the baseline method."""
        return self.defaults.get(self.exp.baseline)

    def metric(self, method_id: str, key: str) -> Stat:
        return self.seeds.metric(method_id, key)

    def paired(self, a: str, b: str, key: str) -> Paired:
        return self.seeds.paired_metric(a, b, key)

    def wins(self, a: str, b: str, key: str) -> tuple[int, int]:
        """Seeds where b beats a on `key`, out of the seeds with both numbers."""
        return self.paired(a, b, key).wins(metric_info(key).higher_is_better)

    def of_method(self, method: str) -> list[MethodConfig]:
        return [c for c in self.configs if c.method == method]

    def means(self, intervals: bool = True) -> RunData:
        """A RunData of every method-config whose metrics are the seed means (see
        `mean_result`)."""
        results = {
            c.id: mean_result(self.seeds, c.id, self.metric_keys, intervals) for c in self.configs
        }
        return means_run(self.exp.folder, self.configs, results)


def mean_result(
    seeds: Seeds, method_id: str, keys: list[str], intervals: bool = True
) -> dict[str, Any]:
    """A RunData result of one method-config over the seeds: "metrics" the seed means,
    "std" their sample std over seeds, and, with `intervals`, "ci" mean ± std (the
    figures' error bars; the tables show the std, so they take it without)."""
    metrics, std, ci = {}, {}, {}
    for key in keys:
        s = seeds.metric(method_id, key)
        if s.mean is None:
            continue
        metrics[key] = s.mean
        if s.std is not None:
            std[key] = s.std
            if intervals:
                ci[key] = [s.mean - s.std, s.mean + s.std]
    return {"method_id": method_id, "metrics": metrics, "ci": ci, "std": std}


def means_run(folder: Path, configs: list[MethodConfig], results: dict[str, dict]) -> RunData:
    """A RunData of seed-mean `results`, the input reports' figures and tables take."""
    return RunData(
        run=RunDir(folder),
        path=folder,
        manifest={},
        config_text="",
        configs=list(configs),
        prompt_ids=[],
        results=results,
        protocol={},
    )


def table_keys(exp: Experiment, found: list[str]) -> list[str]:
    """The metric keys the tables and figures show: `[experiment] metrics` (in its
    order), else every key the runs have; each key a claim reads must be among those
    the runs have."""
    wanted = exp.spec.experiment.metrics
    for where, keys in (
        ("[experiment] metrics", wanted or []),
        ("[claims]", exp.spec.claims.keys()),
    ):
        missing = [k for k in keys if k not in found]
        if missing:
            raise BenchError(f"{where} names {missing}, not metrics of the runs: {found}")
    return list(wanted) if wanted else found


def aggregate(exp: Experiment, seeds: Seeds, protect: Seeds) -> Aggregate:
    first = seeds.runs[0].run
    keys = table_keys(exp, ordered({k for s in seeds for k in s.run.metric_keys()}))
    defaults = {c.method: c.id for c in default_configs(first)}
    wanted = exp.spec.experiment.default
    ids = {c.id for c in first.configs}
    if wanted is not None and wanted not in ids:
        raise BenchError(
            f"the default {wanted!r} of {exp.method} is not a method-config of the run: "
            f"{sorted(ids)}"
        )
    if wanted is not None:
        defaults[exp.method] = wanted
    return Aggregate(exp, seeds, protect, list(first.configs), keys, defaults)


def sweep_param(agg: Aggregate) -> str | None:
    """The swept parameter of the tested method that Figure 3 puts on x (SPELL: radius)."""
    from reports.hyper import x_param
    from reports.sweeps import swept_params

    configs = agg.of_method(agg.exp.method)
    keys = swept_params(configs)
    return x_param(keys, configs) if keys else None
