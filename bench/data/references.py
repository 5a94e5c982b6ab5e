"""Reference sets of runs whose `[run] prompts` is a dataset spec (bench.data.sets).

Reference images come from local folders and are loaded as uint8 (N, H, W, C) at the
size and channel count of the run's generated images. A prompt set without reference
images gives a reference-free provider: empty reference sets, so only Vendi and the
CLIP score get values (the reference-based metrics are null, with the reason noted).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.data.folders import load_images
from bench.data.sets import PromptSet, dataset_spec, open_prompt_set
from bench.errors import BenchError
from bench.run_dir import RunDir


@dataclass(frozen=True)
class ReferenceProvider:
    """`images(prompt_id)` -> uint8 (N, H, W, C) reference images of that prompt.

    `extractors`: default feature spaces, the first one for the per-prompt metrics.
    `quality`: "class_score" (needs `class_index` and a classifier extractor, named
    by `quality_extractor`) or "clip_score" (needs `prompt_text`).
    """

    name: str
    images: Callable[[str], np.ndarray]
    extractors: tuple[str, ...]
    quality: str
    quality_extractor: str
    class_index: Callable[[str], int] | None = None
    prompt_text: Callable[[str], str] | None = None
    reference_free: bool = False  # no reference images: only Vendi and CLIP score have values


EXTRACTORS = ("dinov2", "inception")  # per prompt: DINOv2, as the paper; marginal: + FID
FREE_EXTRACTORS = ("dinov2",)


def run_reference(run_dir: Path, references: Path | None = None) -> ReferenceProvider | None:
    """The provider for a run made from a dataset spec, or None for a model's own prompts.
    `references` overrides the run's `[run] references` folder."""
    settings = RunDir(run_dir).run_settings()
    spec = dataset_spec(settings.get("prompts"))
    if spec is None:
        return None
    references = references or settings.get("references")
    prompt_set = open_prompt_set(spec, Path(references) if references else None)
    return folder_reference(prompt_set, Path(run_dir))


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
            shape.extend(RunDir(run_dir).generated_shape())
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
