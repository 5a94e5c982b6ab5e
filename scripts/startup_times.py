"""Start-up benchmark: wall time of the quick commands, time from `bench run` to its
first finished prompt on digits, and where that time goes (`python -X importtime`).

    python scripts/startup_times.py [--reps 3]

Each figure is the median of `--reps` whole processes, run in turn; on a shared
machine read them as upper bounds.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = [sys.executable, "-m", "bench"]
QUICK = {
    "bench --help": ["--help"],
    "bench list models": ["list", "models"],
    "bench list methods": ["list", "methods"],
    "bench run --model nope": ["run", "--model", "nope"],
    "bench run --samples -3": ["run", "--samples", "-3"],
    "bench score /nonexistent": ["score", "/nonexistent"],
}


def command_seconds(args: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run([*BENCH, *args], capture_output=True, check=False)
    return time.perf_counter() - start


def first_prompt_seconds(out: Path, extra: tuple[str, ...] = ()) -> float:
    """From process start to the first prompt's sample file of a default `bench run`."""
    cmd = [*BENCH, "run", "--out", str(out), "--logger", "none", *extra]
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        while proc.poll() is None:
            if any(out.glob("*/samples/*/*.npz")):
                return time.perf_counter() - start
            time.sleep(0.01)
    finally:
        proc.kill()
        proc.wait()
    raise RuntimeError(proc.stderr.read().decode() or "bench run wrote no sample file")


def import_profile(out: Path) -> dict[str, float]:
    """Import seconds per top-level package (each module's own time, so nothing is
    counted twice: torch._dynamo is torch's even when diffusers imports it) for a
    one-prompt `bench generate`: the imports a first prompt waits for. Largest first."""
    cmd = [
        *BENCH[:1],
        "-X",
        "importtime",
        *BENCH[1:],
        "generate",
        "--out",
        str(out),
        "--force",
        "--logger",
        "none",
        "--prompts",
        "1",
        "--methods",
        "none",
    ]
    err = subprocess.run(cmd, capture_output=True, text=True, check=False).stderr
    seconds: dict[str, float] = {}
    for line in err.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        own, _, name = line.removeprefix("import time:").split("|")
        package = name.strip().split(".")[0]
        seconds[package] = seconds.get(package, 0.0) + int(own) / 1e6
    return dict(sorted(seconds.items(), key=lambda item: -item[1]))


def medians(fns: dict[str, callable], reps: int) -> dict[str, float]:
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(reps):
        for name, fn in fns.items():
            times[name].append(fn())
    return {name: statistics.median(t) for name, t in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=3)
    reps = parser.parse_args().reps
    with tempfile.TemporaryDirectory() as tmp:
        fns = {label: (lambda a=args: command_seconds(a)) for label, args in QUICK.items()}
        fresh = (Path(tmp) / f"run{i}" for i in itertools.count())  # nothing to resume
        fns["bench run: first prompt written"] = lambda: first_prompt_seconds(next(fresh))
        print("| command | median s |\n|---|---|")
        for label, seconds in medians(fns, reps).items():
            print(f"| `{label}` | {seconds:.2f} |")
        profile = import_profile(Path(tmp) / "p")
        print("\n| package (imported before the first prompt) | import s |\n|---|---|")
        for name, seconds in list(profile.items())[:8]:
            print(f"| {name} | {seconds:.2f} |")
        print(f"| (all {len(profile)} packages) | {sum(profile.values()):.2f} |")


if __name__ == "__main__":
    main()
