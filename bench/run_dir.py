"""The run directory: resolved config, manifest, and atomically written samples.

A sample file exists only once complete (written to a temporary name, then
renamed), so a killed run never leaves a file that reads as finished.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np
import tomli_w

from bench.atomic import atomic_save_npz, atomic_write_text
from bench.config import BenchConfig
from bench.errors import BenchError

PACKAGES = ("spellbench", "torch", "diffusers", "lightning", "torchmetrics", "numpy")


def _git_sha() -> str | None:
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


def _versions() -> dict[str, str]:
    found = {}
    for name in PACKAGES:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            continue
    return found


def _hardware(device: str) -> dict[str, Any]:
    import torch

    info = {"platform": platform.platform(), "cpu_count": os.cpu_count(), "device": device}
    if torch.cuda.is_available():
        info["cuda"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    return info


class RunDir:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    @property
    def samples(self) -> Path:
        return self.path / "samples"

    def sample_file(self, method_id: str, prompt_id: str) -> Path:
        return self.samples / method_id / f"{prompt_id}.npz"

    def time_file(self, method_id: str, prompt_id: str) -> Path:
        return self.samples / method_id / f"{prompt_id}.time.json"

    def save_prompt(self, method_id: str, prompt_id: str, arrays: dict[str, np.ndarray]) -> None:
        """Wall times go beside the samples (they differ run to run); the .npz holds only
        what is reproducible, byte for byte, and is written last: it marks completion."""
        arrays = dict(arrays)
        seconds = arrays.pop("seconds")
        times = {"seconds_per_image": [round(float(x), 6) for x in seconds]}
        atomic_write_text(self.time_file(method_id, prompt_id), json.dumps(times))
        atomic_save_npz(self.sample_file(method_id, prompt_id), arrays)

    def is_complete(self, method_id: str, prompt_id: str) -> bool:
        return self.sample_file(method_id, prompt_id).exists()

    def manifest(self) -> dict[str, Any] | None:
        path = self.path / "manifest.json"
        return json.loads(path.read_text()) if path.exists() else None

    def prepare(self, config: BenchConfig, force: bool = False) -> None:
        """Create the directory, or check an existing one was made by the same config."""
        old = self.manifest()
        if old is not None and old.get("config_hash") != config.hash():
            if not force:
                raise BenchError(
                    f"{self.path} holds a run with another config (hash {old.get('config_hash')}); "
                    "use another --name, or --force to start it afresh"
                )
            import shutil

            shutil.rmtree(self.path)
        self.path.mkdir(parents=True, exist_ok=True)
        for stale in self.path.glob("samples/*/.*.tmp"):  # left by a killed run
            stale.unlink()
        config_text = tomli_w.dumps(config.model_dump(mode="json", exclude_none=True))
        atomic_write_text(self.path / "config.toml", config_text)

    def write_manifest(self, config: BenchConfig, status: str, **extra: Any) -> None:
        manifest = {
            "status": status,
            "config_hash": config.hash(),
            "seed": config.run.seed,
            "threads": config.run.threads,
            "git_sha": _git_sha(),
            "versions": _versions(),
            "hardware": _hardware(config.run.device),
            "updated": datetime.now(UTC).isoformat(timespec="seconds"),
            **extra,
        }
        atomic_write_text(self.path / "manifest.json", json.dumps(manifest, indent=2))

    def write_method_info(self, method_id: str, info: dict[str, Any]) -> None:
        atomic_write_text(self.samples / method_id / "method.json", json.dumps(info, indent=2))
