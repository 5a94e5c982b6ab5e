"""Finding pretrained weight files locally (never downloading) and fingerprinting them."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import torch

from bench.errors import BenchError

_HASH_LIMIT = 64 * 2**20  # hash small files; larger ones are identified by size and mtime


def torch_hub_checkpoints() -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints"


def search_dirs(weights_dir: Path | None) -> list[Path]:
    """Where weights are looked for, in order: `weights_dir`, then torch.hub's cache."""
    dirs = [Path(weights_dir)] if weights_dir is not None else []
    return [*dirs, torch_hub_checkpoints()]


def find_file(names: Iterable[str], dirs: Iterable[Path]) -> Path | None:
    for d in dirs:
        for name in names:
            if (d / name).is_file():
                return d / name
    return None


def file_fingerprint(path: Path) -> dict[str, str | int]:
    """Identity of a weights file for the feature-cache key."""
    path = Path(path).resolve()
    stat = path.stat()
    out: dict[str, str | int] = {"path": str(path), "size": stat.st_size}
    if stat.st_size <= _HASH_LIMIT:
        out["sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
    else:
        out["mtime_ns"] = stat.st_mtime_ns
    return out


def load_error(weights: Path, target: str, err: Exception) -> BenchError:
    """One-line error for a weights file that does not fit the network."""
    detail = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    return BenchError(f"cannot load {weights} into {target}: {detail}")


def library_version(package: str) -> str:
    try:
        return f"{package} {version(package)}"
    except PackageNotFoundError:
        return f"{package} (version unknown)"
