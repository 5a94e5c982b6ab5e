"""Seed-to-seed spread of a CI split, and the baseline whose tolerances come from it.

    python scripts/ci_spread.py ci/bench-ci-toy2d.toml --seeds 8 \
        --baseline ci/baseline-toy2d.json --spread ci/baseline-toy2d.spread.json

Runs the split once per seed (generate + score), takes each metric's standard deviation
over seeds per method-config, and sets its tolerance to `--k` times the largest of them
(absolute). The baseline's values are the run of the config's own seed, the run CI makes.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

from bench.atomic import atomic_write_text
from bench.config import load_config
from bench.regress import make_baseline, run_values
from bench.stages import run_stages


def seed_values(config_path: Path, seeds: list[int], out: Path) -> dict[int, dict]:
    values = {}
    for seed in seeds:
        config = load_config(config_path, {"seed": seed, "out": out, "name": f"seed{seed}"})
        run_stages(config, print, stages=("generate", "score"))
        metrics = json.loads((out / f"seed{seed}" / "metrics.json").read_text())
        values[seed] = run_values(metrics)
    return values


def spread(values: dict[int, dict]) -> dict[str, dict[str, float]]:
    """metric -> method_id -> std over seeds (of the seeds with a number)."""
    out: dict[str, dict[str, float]] = {}
    first = next(iter(values.values()))
    for method_id, metrics in first.items():
        for metric in metrics:
            found = [v[method_id].get(metric) for v in values.values()]
            found = [x for x in found if x is not None]
            if len(found) > 1:
                out.setdefault(metric, {})[method_id] = statistics.stdev(found)
    return out


def tolerances(spreads: dict[str, dict[str, float]], k: float) -> dict[str, dict[str, float]]:
    """k x the largest std per metric; 5% relative for a metric without a spread."""
    found = {m: {"abs": float(f"{k * max(s.values()):.3g}")} for m, s in sorted(spreads.items())}
    return {"*": {"rel": 0.05}, **found}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config", type=Path)
    parser.add_argument("--seeds", type=int, default=8)
    parser.add_argument("--k", type=float, default=3.0, help="tolerance = k x the largest std")
    parser.add_argument("--out", type=Path, default=Path("runs/ci-spread"))
    parser.add_argument("--baseline", type=Path, required=True)
    parser.add_argument("--spread", type=Path, required=True)
    args = parser.parse_args()
    base_seed = load_config(args.config).run.seed
    seeds = [base_seed + i for i in range(args.seeds)]
    values = seed_values(args.config, seeds, args.out)
    spreads = spread(values)
    record = {"config": str(args.config), "seeds": seeds, "k": args.k, "std": spreads}
    atomic_write_text(args.spread, json.dumps(record, indent=2, sort_keys=True) + "\n")
    metrics = {"results": [{"method_id": m, "metrics": v} for m, v in values[base_seed].items()]}
    baseline = make_baseline(metrics, tolerances(spreads, args.k))
    atomic_write_text(args.baseline, json.dumps(baseline, indent=2, sort_keys=True) + "\n")
    print(f"baseline {args.baseline} and spread {args.spread} from seeds {seeds}")


if __name__ == "__main__":
    main()
