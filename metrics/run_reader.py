"""Reading a run directory: its model, its method dirs and their per-prompt sample files."""

from __future__ import annotations

import io
import json
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bench.errors import BenchError
from metrics.cache import bytes_digest

_SCORED_ARRAYS = ("images", "nfe", "seconds")


@dataclass(frozen=True)
class PromptSamples:
    """What scoring reads of one `<prompt-id>.npz`; `digest` identifies the file's bytes."""

    prompt_id: str
    digest: str
    arrays: dict[str, np.ndarray] = field(repr=False)

    @property
    def images(self) -> np.ndarray:
        return self.arrays["images"]


@dataclass(frozen=True)
class MethodDir:
    method_id: str
    method: str
    params: dict
    path: Path

    def prompt_ids(self) -> list[str]:
        return sort_prompt_ids([p.stem for p in self.path.glob("*.npz")])

    def load(self, prompt_id: str) -> PromptSamples:
        data = (self.path / f"{prompt_id}.npz").read_bytes()
        with np.load(io.BytesIO(data), allow_pickle=False) as f:
            arrays = {k: f[k] for k in _SCORED_ARRAYS if k in f.files}
        if "images" not in arrays or len(arrays["images"]) == 0:
            raise BenchError(f"{self.path / prompt_id}.npz has no images: regenerate it")
        return PromptSamples(prompt_id, bytes_digest(data), arrays)


def sort_prompt_ids(ids: list[str]) -> list[str]:
    return sorted(ids, key=lambda s: (0, int(s), s) if s.isdigit() else (1, 0, s))


def run_model(run_dir: Path) -> str:
    config = Path(run_dir) / "config.toml"
    if not config.is_file():
        raise BenchError(f"{config} is missing: is {run_dir} a run directory?")
    with config.open("rb") as f:
        model = tomllib.load(f).get("run", {}).get("model")
    if not isinstance(model, str):
        raise BenchError(f'{config} has no [run] model = "..." entry')
    return model


def method_dirs(run_dir: Path) -> list[MethodDir]:
    samples = Path(run_dir) / "samples"
    dirs = sorted(p for p in samples.glob("*") if p.is_dir()) if samples.is_dir() else []
    out = [_method_dir(p) for p in dirs if any(p.glob("*.npz"))]
    if not out:
        raise BenchError(f"no generated samples under {samples}: run `bench generate` first")
    return out


def _method_dir(path: Path) -> MethodDir:
    info_path = path / "method.json"
    info = json.loads(info_path.read_text()) if info_path.is_file() else {}
    return MethodDir(
        method_id=str(info.get("id", path.name)),
        method=str(info.get("method", path.name)),
        params=dict(info.get("params", {})),
        path=path,
    )
