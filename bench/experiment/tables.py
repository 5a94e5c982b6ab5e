"""The page's Tables 1, 2, 4 and 5, built by reports.tables from the seed means.

Every table here is the report's own table (`defaults_table`, `sweep_table`,
`protection_table`, `cost_table`) over a RunData of seed means (aggregate.py): each
cell is the mean over seeds ± the seed std, the RunData's "std" beside "ci". The page
then names its rows (the method under test by its label, ids as code) and adds what
only a set of seeds has:

- Table 1: the paired difference per seed and the seeds won (stats.Paired), and with
  `[claims] significance` the paired test's two-sided p-value per metric.
- Table 2: the protection rate in %, so its cells keep the digits of the other columns
  (reports shows a single run's rate as a share). Its rows come from two sets of runs
  (main and protection), each cell pooled from its own. Where the claims' quality and
  first diversity keys are not precision and recall, their columns follow.
- Table 5: time and NFE per image pooled over the images of every seed (timing.py, as
  reports' `Cost`); but "× none" is the mean ± std over seeds of the per-seed ratio of
  mean (and of median) times, each row against the `none` of its own runs, where
  reports' `cost_table` divides one run's means by the `none` of that run. Those two
  columns stay the experiment's.
"""

from __future__ import annotations

from dataclasses import replace

from metrics.catalog import metric_info
from metrics.protection import COPY_RATE_PREFIX, protection_keys
from reports.cost import Cost
from reports.rundata import MethodConfig
from reports.tables import (
    Cell,
    Table,
    cost_table,
    defaults_table,
    metric_cell,
    protection_table,
    sweep_table,
)

from .aggregate import Aggregate, mean_result, means_run
from .protection import ProtectionRow, protected_items, split_name
from .seeds import Seeds
from .stats import TEST_NAMES, Stat, fmt_p
from .timing import median_time_ratio, pooled_cost, time_ratio


def _name_rows(table: Table, names: dict[str, str]) -> Table:
    """Rows of a method-config: `names` (by id) in the method column, the id as code."""
    for row in table.rows:
        mid = str(row["id"])
        row["method"] = names.get(mid, row["method"])
        row["id"] = f"`{mid}`"
    return table


def _in_key_order(table: Table, keys: list[str]) -> Table:
    """The metric columns in the experiment's order of keys (`[experiment] metrics`),
    after the others; reports orders them by its catalog."""
    rank = {k: i for i, k in enumerate(keys)}
    others = [c for c in table.columns if c[0] not in rank]
    metrics = sorted((c for c in table.columns if c[0] in rank), key=lambda c: rank[c[0]])
    table.columns = others + metrics
    return table


def _metric_keys(table: Table) -> list[str]:
    skip = {"method", "id", "params"}
    return [key for key, _ in table.columns if key not in skip]


def defaults(agg: Aggregate) -> Table | None:
    """Table 1: the baseline and the tested default, then the paired difference and
    the seeds won per metric."""
    base, tested, label = agg.base, agg.tested, agg.exp.label
    if not (base and tested):
        return None
    means = agg.means(intervals=False)
    by_id = {c.id: c for c in means.configs}
    pair = [by_id[base], by_id[tested]]  # defaults_table: one config per method, in order
    table = _name_rows(defaults_table(replace(means, configs=pair)), {tested: label})
    table = _in_key_order(table, agg.metric_keys)
    keys = _metric_keys(table)
    diff = {k: agg.paired(base, tested, k).differences().cell() for k in keys}
    table.rows.append({"method": f"{label} − {agg.exp.baseline}", "id": "paired", **diff})
    wins = {k: "{}/{}".format(*agg.wins(base, tested, k)) for k in keys}
    table.rows.append({"method": f"{label} better", "id": "seeds", **wins})
    c = agg.exp.spec.claims
    if c.significance is not None:
        tests = {k: agg.paired(base, tested, k).test(c.test) for k in keys}
        p = {k: fmt_p(t.p) for k, t in tests.items()}
        table.rows.append({"method": "p (two-sided)", "id": TEST_NAMES[c.test], **p})
    return table


def sweeps(agg: Aggregate) -> Table:
    """Table 4: every sweep point of every method."""
    return _in_key_order(_name_rows(sweep_table(agg.means(intervals=False)), {}), agg.metric_keys)


def _pooled_cost(runs: Seeds, method_id: str) -> Cost:
    seconds, nfe = pooled_cost(runs, method_id)
    return Cost(seconds.mean, seconds.std, nfe, seconds.n)


def _config(row: ProtectionRow) -> MethodConfig:
    return next(c for c in row.runs.runs[0].run.configs if c.id == row.method_id)


def _percent(cell: str | Cell) -> str | Cell:
    if not isinstance(cell, Cell) or cell.value is None:
        return cell
    return replace(cell, value=cell.value * 100, std=None if cell.std is None else cell.std * 100)


def _protection_keys(agg: Aggregate) -> list[str]:
    """The claims' quality key and first diversity key, after reports' precision and
    recall (the digits keys: nothing more)."""
    c = agg.exp.spec.claims
    return [
        k for k in dict.fromkeys([c.quality, c.diversity[0]]) if k not in ("precision", "recall")
    ]


def _measured_keys(rows: list[ProtectionRow]) -> list[str]:
    """The protection metrics some run of the rows has (the L2 rate always)."""
    found = {k for row in rows for run in row.runs for m in run.protection.values() for k in m}
    return protection_keys(sorted(found | {"protection_rate"}))


def protection(agg: Aggregate, rows: list[ProtectionRow]) -> Table:
    """Table 2 (`rows`: protection_rows, not empty): each row's rate, precision and
    recall over its own runs' seeds, and its time per image pooled over their images."""
    extra = _protection_keys(agg)
    keys = ["precision", "recall", *extra]
    measured = _measured_keys(rows)
    results = {}
    for row in rows:
        result = mean_result(row.runs, row.method_id, keys, intervals=False)
        for key in measured:
            value = row.rate if key == "protection_rate" else row.runs.rate(row.method_id, key)
            result["metrics"][key], result["std"][key] = value.mean, value.std
        results[row.method_id] = result
    means = means_run(agg.exp.folder, [_config(r) for r in rows], results)
    costs = {r.method_id: _pooled_cost(r.runs, r.method_id) for r in rows}
    table = _name_rows(protection_table(means, costs), {r.method_id: r.label for r in rows})
    shares = [k for k in measured if k == "protection_rate" or k.startswith(COPY_RATE_PREFIX)]
    for row, config in zip(table.rows, means.configs, strict=True):
        row.update({k: _percent(row[k]) for k in shares})
        row.update({k: metric_cell(means, config.id, k) for k in extra})
    at = [k for k, _ in table.columns].index("seconds")
    table.columns[at:at] = [(k, metric_info(k).short) for k in extra]
    header = f"Within r of a {split_name(agg)} {protected_items(agg)[0]} (%) ↓"
    table.columns = [(k, header if k == "protection_rate" else h) for k, h in table.columns]
    table.columns = [
        (k, h.replace(" ↓", " (%) ↓") if k.startswith(COPY_RATE_PREFIX) else h)
        for k, h in table.columns
    ]
    return table


def _ratio_cells(table: Table, ratios: dict[str, tuple[Stat, Stat]], baseline: str) -> None:
    """The per-seed time ratios (of means, of medians) in place of reports' "× none"."""
    for row in table.rows:
        mean, median = ratios[str(row["id"])]
        row["relative"], row["median"] = mean.cell(), median.cell()
    at = [k for k, _ in table.columns].index("relative")
    table.columns[at] = ("relative", f"× {baseline} (means)")
    table.columns.insert(at + 1, ("median", f"× {baseline} (medians)"))


def cost(agg: Aggregate, rows: list[ProtectionRow]) -> Table:
    """Table 5: the default config of each method, then the tested method repelling
    from the protected set (against the `none` of the protection runs)."""
    baseline = agg.exp.baseline
    by_id = {c.id: c for c in agg.configs}
    entries = [(by_id[mid], agg.seeds, agg.base) for mid in agg.defaults.values()]
    names = {}
    if rows:
        last = rows[-1]
        entries.append((_config(last), last.runs, last.runs.runs[0].config_of(baseline)))
        names[last.method_id] = last.label
    costs = {c.id: _pooled_cost(runs, c.id) for c, runs, _ in entries}
    table = cost_table(means_run(agg.exp.folder, [c for c, _, _ in entries], {}), costs)
    ratios = {
        c.id: (time_ratio(runs, c.id, base), median_time_ratio(runs, c.id, base))
        for c, runs, base in entries
    }
    _ratio_cells(table, ratios, baseline)
    return _name_rows(table, names)
