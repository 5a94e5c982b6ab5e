"""`bench perf`: the performance suite (speed targets live here, never in unit tests).

1. `overhead`: a SPELL step over a plain step with K static shields, on the digits
   model and an SD1.5-sized random UNet (goal <= 1.01 for K <= 1024 on the latter).
2. `lookup`: shield search time and recall at N = 10k .. 1.2M on `device` (d = 1024
   on the CPU, 4096 on a GPU: the paper's ImageNet latents), also as a share of one
   SD-sized UNet step (goal <= 0.10 at recall 1 at 1.2M).
3. `harness`: spellbench's loop with no method over a raw diffusers loop (<= 1.02).
4. `metrics`: scoring cost per 1000 images.
5. `gpu` (only when named): per pipeline model on `device`, the harness over the
   pipeline's own call, images/s and SPELL's step cost at K <= 1024 (bench/perf/gpu.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from bench.perf.report import PerfReport

if TYPE_CHECKING:  # torch only once the flags are checked: a typo is one line, at once
    import torch

SUITES = ("overhead", "lookup", "harness", "metrics")
ALL_SUITES = (*SUITES, "gpu")


def run_perf(
    suites: tuple[str, ...] = SUITES,
    quick: bool = False,
    threads: int | None = None,
    out: Path | None = None,
    sd_unet: bool = True,
    lookup_sizes: tuple[int, ...] | None = None,
    device: str = "cpu",
    dtype: str | None = None,
) -> PerfReport:
    """Run the named suites and return (and, with `out`, write) the tables.

    `quick` shrinks every suite (N <= 100k, K <= 1024, fewer repetitions, no SD-sized
    UNet). `threads` pins torch and faiss threads, which steadies timings on a shared
    machine. The lookup ratio divides by the SD-sized step measured in `overhead` (or
    measured alone when that suite is not run). `dtype` is the networks' (default
    float16 on a GPU, float32 on the CPU)."""
    check_suites(suites)
    from bench.perf.timing import machine, pinned_threads

    dtype = dtype or ("float32" if torch_device(device).type == "cpu" else "float16")
    torch_dtype(dtype)  # an unknown name fails before any suite runs
    report = PerfReport(machine())
    with pinned_threads(threads):
        report.machine["torch_threads"] = threads or report.machine["torch_threads"]
        report.machine.update(device=device, dtype=dtype)
        sd = sd_unet and not quick
        step = _overhead(report, quick, sd, device, dtype) if "overhead" in suites else None
        if "lookup" in suites:
            _lookup(report, quick, lookup_sizes, step, sd, device, dtype)
        if "harness" in suites:
            from bench.perf.harness import harness_overhead

            report.add("harness", harness_overhead(reps=3 if quick else 7))
        if "metrics" in suites:
            from bench.perf.metric_cost import metric_cost

            report.add("metrics", metric_cost())
        if "gpu" in suites:
            from bench.perf.gpu import gpu_suite

            report.add("gpu", gpu_suite(device, dtype, quick), note=_GPU_NOTE)
    if out is not None:
        report.write(out)
    return report


def check_suites(suites: tuple[str, ...]) -> None:
    from bench.errors import BenchError

    unknown = [s for s in suites if s not in ALL_SUITES]
    if unknown:
        raise BenchError(f"unknown perf suites {unknown}: use {', '.join(ALL_SUITES)}")
    if not suites:
        raise BenchError(f"name at least one perf suite: {', '.join(ALL_SUITES)}")


def torch_device(device: str) -> torch.device:
    import torch

    from bench.errors import BenchError

    try:
        where = torch.device(device)
    except RuntimeError as err:
        raise BenchError(f"unknown device {device!r}: use cpu, cuda or cuda:N") from err
    if where.type == "cuda" and not torch.cuda.is_available():
        raise BenchError(f"--device {device}: this machine has no CUDA device torch can use")
    return where


def _overhead(report: PerfReport, quick: bool, sd: bool, device: str, dtype: str) -> float | None:
    from bench.perf.harness import digits_model
    from bench.perf.overhead import SHIELD_COUNTS, spell_overhead

    counts = tuple(k for k in SHIELD_COUNTS if k <= 1024) if quick else SHIELD_COUNTS
    model, label = digits_model()
    rows, _ = spell_overhead(model, label, counts, reps=3 if quick else 7)
    report.add("overhead", rows, note=_OVERHEAD_NOTE)
    if not sd:
        return None
    from bench.perf.sd_unet import SDSizeAdapter

    sd_model = SDSizeAdapter(device=device, dtype=torch_dtype(dtype))
    rows, step = spell_overhead(
        sd_model, "sd15-size (random)", counts, steps=1, reps=2, direct=False, pixel=False
    )
    report.add("overhead", rows)
    return step


def _lookup(report, quick, sizes, step, sd: bool, device: str, dtype: str) -> None:
    from bench.perf.lookup import SIZES, lookup_suite

    if step is None and sd:
        from bench.perf.overhead import plain_step_seconds
        from bench.perf.sd_unet import SDSizeAdapter

        step = plain_step_seconds(SDSizeAdapter(device, torch_dtype(dtype)), 8, 1, 2)
    sizes = sizes or ((10_000, 100_000) if quick else SIZES)
    dim = 1024 if torch_device(device).type == "cpu" else 4096
    rows = lookup_suite(sizes, step_seconds=step, dim=dim, device=device)
    report.add("lookup", rows, note=_LOOKUP_NOTE)


def torch_dtype(name: str):
    from bench.models.pipelines import torch_dtype as parse

    return parse(name)


_OVERHEAD_NOTE = (
    "batch 8, guidance = the model's default (digits: CFG 2, two network rows per sample; "
    "SD-size: 1, one row: the stricter case). ratio_decomposed = (plain step + SPELL's extra "
    "work timed alone) / plain step; ratio_direct = whole batches with / without SPELL."
)
_LOOKUP_NOTE = (
    "batch of 8 queries near data points, r = median 4th-neighbour distance; recall "
    "against exact float32 search; lookup_over_unet_step = lookup time / one "
    "SD1.5-sized UNet step at batch 8 on the same device, dtype and threads."
)
_GPU_NOTE = (
    "one batch per call, the model's default guidance; real weights where present, "
    "else tiny random components (and an SD1.5-sized random pipeline); "
    "harness_over_pipeline = spellbench (method none, decode included) / the "
    "pipeline's __call__ with the same seeds; max_abs_diff between their images; "
    "spell_over_plain_K<k> = (plain step + SPELL's extra work) / plain step."
)
