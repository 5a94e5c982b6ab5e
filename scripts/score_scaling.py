"""How `bench score` scales: wall time and peak memory at 1x, 4x and 16x the images of
the default digits run (10 classes x 32 samples x {none, spell}), each scored cold (no
feature cache) in its own process. Steps are few: scoring does not depend on them.

    python scripts/score_scaling.py [--out /tmp/score-scaling] [--factors 1,4,16]

Prints one row per factor: images, seconds, peak resident memory, and both relative
to 1x; linear or better means the ratios stay at or below the image ratio.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

SAMPLES = 32  # the default run's samples per class
STEPS = 5


def bench(*args: str, env: dict[str, str]) -> tuple[float, float]:
    """Run `bench ARGS` in its own process: (wall seconds, peak RSS in MiB)."""
    start = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench", *args],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"bench {' '.join(args)} failed: {proc.stderr.read().decode()[-500:]}")
    return seconds, usage.ru_maxrss / 1024


def measure(out: Path, factor: int) -> tuple[int, float, float]:
    name = f"x{factor}"
    env = {**os.environ, "SPELLBENCH_CACHE": str(out / f"cache-{name}")}
    args = ["generate", "--methods", "none,spell", "--samples", str(SAMPLES * factor)]
    args += ["--steps", str(STEPS), "--out", str(out), "--name", name, "--threads", "1"]
    args += ["--logger", "none"]
    bench(*args, env=env)
    shutil.rmtree(out / name / "features", ignore_errors=True)
    shutil.rmtree(out / f"cache-{name}", ignore_errors=True)
    seconds, rss = bench("score", str(out / name), env=env)
    return 2 * 10 * SAMPLES * factor, seconds, rss


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("/tmp/score-scaling"))
    parser.add_argument("--factors", default="1,4,16")
    args = parser.parse_args()
    rows = [measure(args.out, int(f)) for f in args.factors.split(",")]
    images0, seconds0, rss0 = rows[0]
    print("| images | x images | score (s) | x time | peak RSS (MiB) | x memory |")
    print("|---|---|---|---|---|---|")
    for images, seconds, rss in rows:
        print(
            f"| {images} | {images / images0:.0f} | {seconds:.1f} | {seconds / seconds0:.2f} "
            f"| {rss:.0f} | {rss / rss0:.2f} |"
        )


if __name__ == "__main__":
    main()
