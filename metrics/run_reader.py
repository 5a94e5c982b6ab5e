"""What scoring reads of a run directory (through RunDir): its method-configs and
their per-prompt samples."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from bench.errors import BenchError
from bench.run_dir import RunDir
from metrics.cache import bytes_digest

_SCORED_ARRAYS = ("images", "latents", "nfe", "seconds")


@dataclass(frozen=True)
class PromptSamples:
    """What scoring reads of one prompt's samples; `digest` identifies the file's bytes.
    `seconds` are the wall times per image (None when none were recorded)."""

    prompt_id: str
    digest: str
    arrays: dict[str, np.ndarray] = field(repr=False)
    seconds: np.ndarray | None = field(default=None, repr=False)

    @property
    def images(self) -> np.ndarray:
        return self.arrays["images"]


@dataclass(frozen=True)
class MethodDir:
    """One method-config of a run: `method_id` is its directory under samples/."""

    run: RunDir
    method_id: str
    method: str
    params: dict
    only: frozenset[str] | None = None  # the prompts to score (None: every complete one)

    def prompt_ids(self) -> list[str]:
        done = self.run.complete_prompt_ids(self.method_id)
        return done if self.only is None else [p for p in done if p in self.only]

    def load(self, prompt_id: str) -> PromptSamples:
        data, arrays = self.run.read_prompt(self.method_id, prompt_id, _SCORED_ARRAYS)
        if "images" not in arrays or len(arrays["images"]) == 0:
            where = self.run.sample_file(self.method_id, prompt_id)
            raise BenchError(f"{where} has no images: regenerate it")
        seconds = arrays.pop("seconds", None)  # older runs kept wall times in the npz
        if seconds is None:
            times = self.run.wall_times(self.method_id, prompt_id)
            seconds = None if times is None else np.asarray(times, np.float64)
        return PromptSamples(prompt_id, bytes_digest(data), arrays, seconds)

    def latents(self, prompt_id: str) -> np.ndarray:
        """One prompt's final latents, flattened per sample."""
        latents = self.run.load_samples(self.method_id, prompt_id, ("latents",))["latents"]
        return latents.reshape(len(latents), -1)


def method_dirs(run: RunDir, prompt_ids: list[str] | None = None) -> list[MethodDir]:
    """Every method-config with at least one complete prompt, in id order; `prompt_ids`
    restricts each to those prompts."""
    only = None if prompt_ids is None else frozenset(prompt_ids)
    out = []
    for method_id in run.sampled_method_ids():
        info = run.method_info(method_id)
        out.append(
            MethodDir(
                run=run,
                method_id=method_id,
                method=str(info.get("method", method_id)),
                params=dict(info.get("params", {})),
                only=only,
            )
        )
    if not out:
        raise BenchError(f"no generated samples under {run.samples}: run `bench generate` first")
    return out
