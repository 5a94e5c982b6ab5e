"""A protected set on disk: shield vectors in the model's diffusion space (safetensors)."""

from __future__ import annotations

import os
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from bench.errors import BenchError
from bench.shields.exact import ExactShieldSet


def save_shields(path: Path, vectors: torch.Tensor) -> None:
    """Write atomically: a half-written file never loads as a complete set."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    save_file({"vectors": vectors.flatten(1).float().contiguous().cpu()}, str(tmp))
    os.replace(tmp, path)


def load_shields(path: Path, device: torch.device | str = "cpu") -> ExactShieldSet:
    path = Path(path)
    if not path.exists():
        raise BenchError(f"protected set {path} not found: build it with `bench protect build`")
    return ExactShieldSet(load_file(str(path))["vectors"], device=device)
