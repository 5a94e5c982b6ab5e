"""What a manifest records about where a run was made: code version, packages, machine."""

from __future__ import annotations

import os
import platform
import subprocess
import time
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any


def user_cache_dir() -> Path:
    """Where derived files shared by runs are kept (method listings, reference features
    and statistics): $SPELLBENCH_CACHE, else $XDG_CACHE_HOME/spellbench or ~/.cache."""
    given = os.environ.get("SPELLBENCH_CACHE")
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return Path(given) if given else base / "spellbench"

PACKAGES = ("spellbench", "torch", "diffusers", "lightning", "torchmetrics", "numpy")


def git_sha() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=5,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def package_versions() -> dict[str, str]:
    found = {}
    for name in PACKAGES:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            continue
    return found


def hardware(device: str) -> dict[str, Any]:
    import torch

    info = {"platform": platform.platform(), "cpu_count": os.cpu_count(), "device": device}
    if torch.cuda.is_available():
        info["cuda"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    return info


def describe_machine(hw: dict[str, Any]) -> str:
    """One line for a results page: '2-core CPU (Linux-...)', or the GPUs it had."""
    gpus = hw.get("cuda") or []
    where = f"{len(gpus)} x {gpus[0]}" if gpus else f"{hw.get('cpu_count', '?')}-core CPU, no GPU"
    return f"{where}; device {hw.get('device', '?')}; {hw.get('platform', 'unknown platform')}"


RANK_VARIABLES = ("RANK", "LOCAL_RANK", "NODE_RANK", "SLURM_PROCID")


def idle_cores(window: float = 0.1) -> float | None:
    """Cores left idle by every process over `window` seconds (Linux /proc/stat), or None
    where that cannot be read."""

    def sample() -> tuple[int, int]:
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
        return fields[3] + fields[4], sum(fields)  # idle + iowait, total

    try:
        idle0, total0 = sample()
        time.sleep(window)
        idle1, total1 = sample()
    except (OSError, ValueError, IndexError):
        return None
    cores = os.cpu_count() or 1
    return cores * (idle1 - idle0) / max(total1 - total0, 1)


def default_threads(cap: int = 4) -> int:
    """Intra-op threads for a process that sets none: as many as there are idle cores, at
    most `cap`, at least 1. Threads beyond the free cores spin against other work: with
    one busy process on 2 cores, digits generation at 2 threads took 2.7 times as long as
    at 1 (12.0 s vs 4.4 s), while on the quiet machine 2 threads were faster (3.7 s vs 4.7 s)."""
    cores = os.cpu_count() or 1
    idle = idle_cores()
    if idle is None:
        return 1
    return max(1, min(cap, cores, int(idle + 0.5)))


def is_global_zero() -> bool:
    """True in the launching process (or rank 0 under torchrun / SLURM)."""
    return all(int(os.environ.get(k) or 0) == 0 for k in RANK_VARIABLES)
