"""Every method on one model over a few seeds: the metrics' seed mean and spread, NFE and
time per image relative to `none`, as a markdown table.

    python scripts/method_table.py --model toy2d --seeds 5
    python scripts/method_table.py --model digits --seeds 5 --samples 16

Each seed is one `bench run` (resumable) under runs/methods-<model>-seed<k>; methods
share every seed's initial and step noise, so the rows are paired comparisons.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

METRICS = {
    "toy2d": ["exact_precision", "exact_log_density", "mode_coverage", "mode_entropy",
              "exact_recall", "exact_vendi"],
    "digits": ["precision", "recall", "vendi", "coverage", "class_score"],
}
METHODS = ("none,spell,pg,ig,cads,cfg,apg,cfg-zero-star,tcfg,fdg,mag,autoguidance,pag,"
           "seg,slg,spell-feature,pg-feature")


def runnable(model_name: str, names: list[str]) -> list[str]:
    """The methods the model can serve (the others are named on stderr and left out)."""
    from bench.errors import BenchError
    from bench.generate import check_methods_fit
    from bench.models.registry import load_model
    from methods.registry import expand

    model, keep = load_model(model_name), []
    for name in names:
        try:
            check_methods_fit(model, expand(name))
            keep.append(name)
        except BenchError as err:
            print(f"left out: {err}", file=sys.stderr)
    return keep


def run_seed(args, seed: int) -> Path:
    name = f"methods-{args.model}-seed{seed}"
    command = [
        sys.executable, "-m", "bench", "run", "--model", args.model, "--methods", args.methods,
        "--seed", str(seed), "--name", name, "--out", args.out, "--samples", str(args.samples),
        "--prompts", str(args.prompts), "--logger", "none", "--threads", "1",
    ]
    subprocess.run(command, check=True, stdout=sys.stderr)
    return Path(args.out) / name


def load(run: Path) -> dict[str, dict]:
    results = json.loads((run / "metrics.json").read_text())["results"]
    return {r["method_id"]: r for r in results}


def cell(values: list[float | None]) -> str:
    vs = [v for v in values if v is not None]
    if not vs:
        return "-"
    spread = statistics.stdev(vs) if len(vs) > 1 else 0.0
    return f"{statistics.fmean(vs):.3g} ± {spread:.2g}"


def table(runs: list[dict[str, dict]], metrics: list[str]) -> str:
    ids = list(runs[0])
    head = ["method", *metrics, "NFE/img", "time vs none"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for method_id in ids:
        row = [method_id]
        row += [cell([r[method_id]["metrics"].get(m) for r in runs]) for m in metrics]
        row.append(cell([r[method_id]["cost"]["nfe_per_image"] for r in runs]))
        ratios = [r[method_id]["cost"]["seconds_per_image"] / r["none"]["cost"]["seconds_per_image"]
                  for r in runs]
        row.append(f"{statistics.median(ratios):.2f}x")
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="toy2d")
    parser.add_argument("--methods", default=METHODS)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--samples", type=int, default=32)
    parser.add_argument("--prompts", default="all")
    parser.add_argument("--out", default="runs")
    args = parser.parse_args()
    args.methods = ",".join(runnable(args.model, args.methods.split(",")))
    runs = [load(run_seed(args, seed)) for seed in range(args.seeds)]
    metrics = METRICS.get(args.model.split("-")[0], METRICS["digits"])
    print(table(runs, metrics))


if __name__ == "__main__":
    main()
