"""`bench experiment FILE`: the SPELL paper's experiments, reproduced over several seeds.

An experiment file is a bench.toml (`[run]`, `[method.*]`; lists are sweeps) plus
`[experiment]`, `[protection]` and `[claims]` (schema.py). For every seed the runner
(runner.py) builds a BenchConfig with `run.seed = seed` and `run.name =
f"{name}-seed{seed}"` and runs it through bench.stages, the generate, score and report
stages of `bench run`, each only when not already done, so a rerun resumes
(`run_reports = "first"` skips the per-run report after the first seed). With
[protection], the protected images (or, on toy2d, training points) are stored once as a
shield set by `bench protect build`'s code (protection.py), and a second run per seed,
`{name}-protect-seed{seed}`, generates the baseline and the tested method repelling
from them.

Then, over the seeds:
    seeds.py      each seed's scored runs (reports.rundata) and the set of seeds
    stats.py      mean ± std over seeds, paired per-seed comparisons and their paired
                  tests (exact sign test, paired bootstrap), pooling
    aggregate.py  the method-configs, default configs and the seed means as a RunData
    timing.py     Table 5: pooled time per image, per-seed time ratios
    tables.py     Tables 1, 2, 4 and 5: reports.tables' tables of the seed means
    fronts.py     Figure 4's dominance check (reports.pareto)
    sparsity.py   Figure 5's numbers from the traces (reports.traces)
    figures.py    Figures 3-5, drawn and saved by reports/
    claims.py     the paper's claims, one function each (keys and test from [claims])
    page.py       the markdown page (reports.table_io's pipe tables; markdown.py: links)
    summary.py    results.json
"""

from .runner import run_experiment
from .schema import Experiment, load_experiment

__all__ = ["Experiment", "load_experiment", "run_experiment"]
