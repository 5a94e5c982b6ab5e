"""What a manifest records about where a run was made: code version, packages, machine."""

from __future__ import annotations

import os
import platform
import subprocess
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

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


def is_global_zero() -> bool:
    """True in the launching process (or rank 0 under torchrun / SLURM)."""
    return all(int(os.environ.get(k) or 0) == 0 for k in RANK_VARIABLES)
