"""Reference sets of runs whose `[run] prompts` is a dataset spec (bench.data.sets).

Reference images come from local folders and are loaded as uint8 (N, H, W, C) at the
size and channel count of the run's generated images. A prompt set without reference
images gives a reference-free provider: empty reference sets, so only Vendi and the
CLIP score get values (the reference-based metrics are null, with the reason noted).
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import numpy as np

from bench.data.folders import load_images
from bench.data.sets import PromptSet, dataset_spec, open_prompt_set
from bench.errors import BenchError
from metrics.references import ReferenceProvider

EXTRACTORS = ("dinov2", "inception")  # per prompt: DINOv2, as the paper; marginal: + FID
FREE_EXTRACTORS = ("dinov2",)


def run_reference(run_dir: Path, references: Path | None = None) -> ReferenceProvider | None:
    """The provider for a run made from a dataset spec, or None for a model's own prompts.
    `references` overrides the run's `[run] references` folder."""
    settings = _run_settings(Path(run_dir))
    spec = dataset_spec(settings.get("prompts"))
    if spec is None:
        return None
    references = references or settings.get("references")
    prompt_set = open_prompt_set(spec, Path(references) if references else None)
    return folder_reference(prompt_set, Path(run_dir))


def _run_settings(run_dir: Path) -> dict:
    config = run_dir / "config.toml"
    if not config.is_file():
        return {}
    with config.open("rb") as f:
        return tomllib.load(f).get("run", {})


def folder_reference(prompt_set: PromptSet, run_dir: Path) -> ReferenceProvider:
    texts = {p.id: p.text for p in prompt_set.prompts}
    refs, where = prompt_set.references, prompt_set.description
    shape: list[int] = []  # the generated (H, W, C), read once on first use

    def images(prompt_id: str) -> np.ndarray:
        if refs is None:
            return np.zeros((0, 1, 1, 3), np.uint8)
        if not refs.get(prompt_id):
            raise BenchError(f"no reference images for prompt {prompt_id!r}: {where}")
        if not shape:
            shape.extend(generated_shape(run_dir))
        height, width, channels = shape
        return load_images(refs[prompt_id], (height, width), channels)

    def prompt_text(prompt_id: str) -> str:
        if prompt_id not in texts:
            raise BenchError(f"prompt {prompt_id!r} is not in {where}")
        return texts[prompt_id]

    return ReferenceProvider(
        name=prompt_set.description,
        images=images,
        extractors=FREE_EXTRACTORS if refs is None else EXTRACTORS,
        quality="clip_score",
        quality_extractor="clip",
        prompt_text=prompt_text,
        reference_free=refs is None,
    )


def generated_shape(run_dir: Path) -> tuple[int, int, int]:
    """(H, W, C) of the run's generated images (the first sample file found)."""
    for path in sorted(Path(run_dir).glob("samples/*/*.npz")):
        with np.load(path, allow_pickle=False) as f:
            if "images" in f.files:
                return tuple(f["images"].shape[1:4])
    raise BenchError(f"no generated samples under {run_dir}/samples: run `bench generate` first")
