"""`bench perf`: the performance suite (speed targets live here, never in unit tests).

1. `overhead`: a SPELL step over a plain step with K static shields, on the digits
   model and an SD1.5-sized random UNet (goal <= 1.01 for K <= 1024 on the latter).
2. `lookup`: shield search time and recall at N = 10k .. 1.2M, also as a share of
   one SD-sized UNet step (goal <= 0.10 at >= 99% recall at 1.2M).
3. `harness`: spellbench's loop with no method over a raw diffusers loop (<= 1.02).
4. `metrics`: scoring cost per 1000 images.
"""

from __future__ import annotations

from pathlib import Path

from bench.perf.report import PerfReport
from bench.perf.timing import machine, pinned_threads

SUITES = ("overhead", "lookup", "harness", "metrics")


def run_perf(
    suites: tuple[str, ...] = SUITES,
    quick: bool = False,
    threads: int | None = None,
    out: Path | None = None,
    sd_unet: bool = True,
    lookup_sizes: tuple[int, ...] | None = None,
    device: str = "cpu",
) -> PerfReport:
    """Run the named suites and return (and, with `out`, write) the tables.

    `quick` shrinks every suite (N <= 100k, K <= 1024, fewer repetitions, no SD-sized
    UNet). `threads` pins torch and faiss threads, which steadies timings on a shared
    machine. The lookup ratio divides by the SD-sized step measured in `overhead` (or
    measured alone when that suite is not run)."""
    unknown = set(suites) - set(SUITES)
    if unknown:
        from bench.errors import BenchError

        raise BenchError(f"unknown perf suites {sorted(unknown)}: use {', '.join(SUITES)}")
    report = PerfReport(machine())
    with pinned_threads(threads):
        report.machine["torch_threads"] = threads or report.machine["torch_threads"]
        sd = sd_unet and not quick
        step = _overhead(report, quick, sd, device) if "overhead" in suites else None
        if "lookup" in suites:
            _lookup(report, quick, lookup_sizes, step, sd, device)
        if "harness" in suites:
            from bench.perf.harness import harness_overhead

            report.add("harness", harness_overhead(reps=3 if quick else 7))
        if "metrics" in suites:
            from bench.perf.metric_cost import metric_cost

            report.add("metrics", metric_cost())
    if out is not None:
        report.write(out)
    return report


def _overhead(report: PerfReport, quick: bool, sd: bool, device: str) -> float | None:
    from bench.perf.harness import digits_model
    from bench.perf.overhead import SHIELD_COUNTS, spell_overhead

    counts = tuple(k for k in SHIELD_COUNTS if k <= 1024) if quick else SHIELD_COUNTS
    model, label = digits_model()
    rows, _ = spell_overhead(model, label, counts, reps=3 if quick else 7)
    report.add("overhead", rows, note=_OVERHEAD_NOTE)
    if not sd:
        return None
    from bench.perf.sd_unet import SDSizeAdapter

    sd_model = SDSizeAdapter(device=device)
    rows, step = spell_overhead(
        sd_model, "sd15-size (random)", counts, steps=1, reps=2, direct=False, pixel=False
    )
    report.add("overhead", rows)
    return step


def _lookup(report, quick, sizes, step, sd: bool, device: str) -> None:
    from bench.perf.lookup import SIZES, lookup_suite

    if step is None and sd:
        from bench.perf.overhead import plain_step_seconds
        from bench.perf.sd_unet import SDSizeAdapter

        step = plain_step_seconds(SDSizeAdapter(device=device), 8, 1, 2)
    sizes = sizes or ((10_000, 100_000) if quick else SIZES)
    report.add("lookup", lookup_suite(sizes, step_seconds=step), note=_LOOKUP_NOTE)


_OVERHEAD_NOTE = (
    "batch 8, guidance = the model's default (digits: CFG 2, two network rows per sample; "
    "SD-size: 1, one row: the stricter case). ratio_decomposed = (plain step + SPELL's extra "
    "work timed alone) / plain step; ratio_direct = whole batches with / without SPELL."
)
_LOOKUP_NOTE = (
    "d = 1024, batch of 8 queries near data points, r = median 4th-neighbour distance; "
    "recall against exact float32 search; lookup_over_unet_step = lookup time / one "
    "SD1.5-sized UNet step at batch 8 on the same machine and threads."
)
