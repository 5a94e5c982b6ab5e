"""The seeds of an experiment taken together: its method-configs, their default configs,
and the seed means as a RunData, the input the report's figure builders take."""

from __future__ import annotations

from dataclasses import dataclass

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

    def means(self) -> RunData:
        """A RunData whose metrics are the seed means and whose intervals are mean ± std."""
        results = {}
        for config in self.configs:
            metrics, ci = {}, {}
            for key in self.metric_keys:
                s = self.metric(config.id, key)
                if s.mean is None:
                    continue
                metrics[key] = s.mean
                if s.std is not None:
                    ci[key] = [s.mean - s.std, s.mean + s.std]
            results[config.id] = {"method_id": config.id, "metrics": metrics, "ci": ci}
        return RunData(
            run=RunDir(self.exp.folder),
            path=self.exp.folder,
            manifest={},
            config_text="",
            configs=list(self.configs),
            prompt_ids=[],
            results=results,
            protocol={},
        )


def aggregate(exp: Experiment, seeds: Seeds, protect: Seeds) -> Aggregate:
    first = seeds.runs[0].run
    keys = ordered({k for s in seeds for k in s.run.metric_keys()})
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
