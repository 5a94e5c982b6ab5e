"""The paper's tables as data: Table 1 (none vs each method's default config),
Table 4 (every sweep point), Table 5 (cost per image), Table 2 (protection)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

from metrics.catalog import metric_info
from metrics.protection import protection_keys
from reports.cost import Cost, cost_from_result
from reports.rundata import MethodConfig, RunData
from reports.sweeps import default_config, recorded_defaults, short_params, swept_params


@dataclass(frozen=True)
class Cell:
    """A number with its interval or spread; None is shown as n/a (with a reason)."""

    value: float | None
    low: float | None = None
    high: float | None = None
    std: float | None = None
    best: bool = False
    reason: str | None = None

    def _decimals(self) -> int | None:
        """The value's own precision, refined until the spread shows one digit."""
        if self.low is not None and self.high is not None:
            spread = (self.high - self.low) / 2
        else:
            spread = self.std or 0.0
        return decimals(self.value or 0.0, spread)

    def main(self) -> str:
        return "n/a" if self.value is None else fmt_number(self.value, self._decimals())

    def spread(self) -> str:
        """`[low, high]` or `± std`, in the value's precision; empty if neither."""
        if self.value is None:
            return ""
        d = self._decimals()
        if self.low is not None and self.high is not None:
            return f"[{fmt_number(self.low, d)}, {fmt_number(self.high, d)}]"
        if self.std is not None:
            return f"± {fmt_number(self.std, d)}"
        return ""

    def text(self) -> str:
        return f"{self.main()} {self.spread()}".strip()


@dataclass
class Table:
    name: str
    title: str
    note: str
    columns: list[tuple[str, str]]  # (key, header)
    rows: list[dict[str, str | Cell]] = field(default_factory=list)


def decimals(v: float, spread: float = 0.0) -> int | None:
    """Decimals for v as in the paper (about three significant digits), more if the
    spread needs them to show its first digit; None means scientific notation."""
    a = abs(v)
    if 0 < a < 0.001:
        return None
    own = 1 if a >= 100 else 2 if a >= 10 else 3 if a >= 0.01 or a == 0 else 4
    if spread > 0:
        own = max(own, min(6, -math.floor(math.log10(spread))))
    return own


def fmt_number(v: float, places: int | None | str = "auto") -> str:
    """v with `places` decimals (default: its own precision); None: scientific."""
    places = decimals(v) if places == "auto" else places
    return f"{v:.2e}" if places is None else f"{v:.{places}f}"


def _reason(run: RunData, method_id: str, key: str) -> str | None:
    """Why a metric is null: bench score writes it to notes["all"][metric]."""
    notes = run.results.get(method_id, {}).get("notes") or {}
    reason = (notes.get("all") or {}).get(key) if isinstance(notes, dict) else None
    return str(reason) if reason else None


def metric_cell(run: RunData, method_id: str, key: str) -> Cell:
    """The metric with its interval ("ci") and its seed spread ("std"), where given."""
    ci = run.interval(method_id, key)
    value = run.metric(method_id, key)
    low, high = ci if ci else (None, None)
    return Cell(
        value,
        low,
        high,
        std=run.spread(method_id, key),
        reason=None if value is not None else _reason(run, method_id, key),
    )


def _mark_best(rows: list[dict[str, str | Cell]], keys: list[str]) -> None:
    """Bold the best value per column (all of them on a tie), by the metric's direction."""
    for key in keys:
        values = [r[key].value for r in rows if isinstance(r.get(key), Cell)]
        values = [v for v in values if v is not None]
        if len(values) < 2:
            continue
        best = max(values) if metric_info(key).higher_is_better else min(values)
        for row in rows:
            cell = row.get(key)
            if isinstance(cell, Cell) and cell.value == best:
                row[key] = replace(cell, best=True)


def metric_columns(keys: list[str]) -> list[tuple[str, str]]:
    return [(k, metric_info(k).short) for k in keys]


def default_configs(run: RunData) -> list[MethodConfig]:
    """`none` first, then the default config of every other method (rule in sweeps.py)."""
    chosen = [
        default_config(configs, recorded_defaults(configs)) for configs in run.methods().values()
    ]
    return sorted(chosen, key=lambda c: c.method != "none")


def defaults_table(run: RunData) -> Table:
    keys = run.metric_keys()
    table = Table(
        "table1-defaults",
        "Table 1: none vs each method's default config",
        "Mean over prompts [bootstrap interval]; best per column in bold. Default config: "
        "the one whose swept parameters equal the method's class defaults, else the middle "
        "sweep point.",
        [("method", "Method"), ("id", "Config")] + metric_columns(keys),
    )
    for config in default_configs(run):
        row: dict[str, str | Cell] = {"method": config.method, "id": config.id}
        row.update({k: metric_cell(run, config.id, k) for k in keys})
        table.rows.append(row)
    _mark_best(table.rows, keys)
    return table


def sweep_table(run: RunData) -> Table:
    keys = run.metric_keys()
    table = Table(
        "table4-sweeps",
        "Table 4: every sweep point of every method",
        "Mean over prompts [bootstrap interval]; the raw data of the Pareto fronts.",
        [("method", "Method"), ("id", "Config"), ("params", "Swept parameters")]
        + metric_columns(keys),
    )
    for method, configs in run.methods().items():
        swept = swept_params(configs)
        for config in configs:
            row: dict[str, str | Cell] = {
                "method": method,
                "id": config.id,
                "params": short_params(config, swept) or "-",
            }
            row.update({k: metric_cell(run, config.id, k) for k in keys})
            table.rows.append(row)
    return table


def run_costs(run: RunData) -> dict[str, Cost | None]:
    """Per method-config, as scoring measured it (metrics.json)."""
    return {c.id: cost_from_result(run.results.get(c.id, {})) for c in run.configs}


def cost_table(run: RunData, costs: dict[str, Cost | None]) -> Table:
    table = Table(
        "table5-cost",
        "Table 5: generation cost per image",
        "Wall time per image, mean ± std over images (a batch's time is split evenly over "
        "its images); network evaluations per image; time relative to none.",
        [
            ("method", "Method"),
            ("id", "Config"),
            ("seconds", "Time per image (s) ↓"),
            ("relative", "× none"),
            ("nfe", "NFE per image ↓"),
        ],
    )
    base = costs.get(run.baseline_id) if run.baseline_id else None
    for config in run.configs:
        cost = costs.get(config.id)
        seconds = cost.seconds_mean if cost else None
        relative = seconds / base.seconds_mean if seconds and base and base.seconds_mean else None
        table.rows.append(
            {
                "method": config.method,
                "id": config.id,
                "seconds": Cell(seconds, std=cost.seconds_std if cost else None),
                "relative": Cell(relative),
                "nfe": Cell(cost.nfe_mean if cost else None),
            }
        )
    return table


def has_protection(run: RunData) -> bool:
    return any("protection_rate" in r.get("metrics", {}) for r in run.results.values())


def protection_table(run: RunData, costs: dict[str, Cost | None]) -> Table:
    # a protection metric undefined on every row (CT on a small run) keeps its column
    keys = [*protection_keys(run.recorded_keys()), "precision", "recall"]
    table = Table(
        "table2-protection",
        "Table 2: protection",
        "Share of generated images within r of their nearest protected image (lower is "
        "better), the copy rate (best cosine to a protected image above the space's "
        "threshold), the data-copying test CT (below 0: copying) and AuthPct, quality and "
        "diversity, and time per image.",
        [("method", "Method"), ("id", "Config")]
        + metric_columns(keys)
        + [("seconds", "Time per image (s) ↓")],
    )
    for config in run.configs:
        cost = costs.get(config.id)
        row: dict[str, str | Cell] = {"method": config.method, "id": config.id}
        row.update({k: metric_cell(run, config.id, k) for k in keys})
        row["seconds"] = Cell(
            cost.seconds_mean if cost else None, std=cost.seconds_std if cost else None
        )
        table.rows.append(row)
    _mark_best(table.rows, keys)
    return table


def all_tables(run: RunData) -> list[Table]:
    from reports.paper_table1 import paper_table

    costs = run_costs(run)
    paper = paper_table(run)
    tables = [defaults_table(run), *([paper] if paper else []), sweep_table(run)]
    tables.append(cost_table(run, costs))
    if has_protection(run):
        tables.append(protection_table(run, costs))
    return tables
