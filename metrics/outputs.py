"""metrics.json, metrics.csv and the printed table of a scored run."""

from __future__ import annotations

import csv
import io
import json

from bench.run_dir import RunDir

_COUNTS = ("n_generated", "n_reference")


def metric_names(results: list[dict]) -> list[str]:
    names: list[str] = []
    for r in results:
        for scope in [r["metrics"], *r["per_prompt"].values()]:
            names += [k for k in scope if k not in names and k not in _COUNTS]
    return names


def csv_text(result: dict) -> str:
    """One row per method-config and scope ("all" or a prompt id)."""
    names = metric_names(result["results"])
    with_ci = [n for n in names if any(r["ci"].get(n) for r in result["results"])]
    ci_cols = [f"{n}_ci_{e}" for n in with_ci for e in ("lo", "hi")]
    header = ["method_id", "method", "params", "scope", *_COUNTS, *names, *ci_cols]
    header += ["seconds_per_image", "nfe_per_image", "notes"]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=header, lineterminator="\n")
    writer.writeheader()
    for r in result["results"]:
        for row in _rows(r, names):
            writer.writerow(row)
    return buf.getvalue()


def _rows(r: dict, names: list[str]) -> list[dict]:
    base = {
        "method_id": r["method_id"],
        "method": r["method"],
        "params": json.dumps(r["params"], sort_keys=True),
    }
    cost = r.get("cost", {})
    rows = [{**base, "scope": "all", **_values(r["metrics"], names), **_ci(r["ci"])}]
    rows[0].update({k: r["counts"][k] for k in _COUNTS})
    rows[0].update({k: cost.get(k) for k in ("seconds_per_image", "nfe_per_image")})
    for pid, values in r["per_prompt"].items():
        rows.append({**base, "scope": pid, **{k: values[k] for k in _COUNTS}})
        rows[-1].update(_values(values, names))
    for row in rows:
        row["notes"] = "; ".join(f"{k}: {v}" for k, v in r["notes"].get(row["scope"], {}).items())
    return rows


def _values(values: dict, names: list[str]) -> dict:
    return {n: values[n] for n in names if n in values}


def _ci(ci: dict) -> dict:
    out = {}
    for name, interval in ci.items():
        if interval is not None:
            out[f"{name}_ci_lo"], out[f"{name}_ci_hi"] = interval
    return out


def write_outputs(run: RunDir, result: dict) -> None:
    text = json.dumps(result, indent=2, allow_nan=False) + "\n"
    run.write_metrics(text, csv_text(result), partial=bool(result.get("partial")))


def format_table(result: dict) -> str:
    """Methods as rows, run-level metrics as columns; "n/a" where undefined."""
    names = metric_names(result["results"])
    names = [n for n in names if any(n in r["metrics"] for r in result["results"])]
    header = ["method", *names, "s/img"]
    rows = [header]
    for r in result["results"]:
        cells = [r["method_id"], *(_fmt(r["metrics"].get(n)) for n in names)]
        rows.append([*cells, _fmt(r.get("cost", {}).get("seconds_per_image"))])
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = [
        "  ".join(
            c.rjust(w) if i else c.ljust(w)
            for i, (c, w) in enumerate(zip(row, widths, strict=True))
        )
        for row in rows
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _fmt(value: float | None) -> str:
    if value is None:
        return "n/a"
    return f"{value:.4g}" if abs(value) >= 1e-3 or value == 0 else f"{value:.2e}"
