"""Reference sets per model: what each prompt's generated images are compared with.

A model plugs in with `register_reference(model_name, factory)`; the factory gets
the run directory and returns a `ReferenceProvider`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.errors import BenchError


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


ReferenceFactory = Callable[[Path], ReferenceProvider]
_PROVIDERS: dict[str, ReferenceFactory] = {}


def register_reference(model: str, factory: ReferenceFactory) -> None:
    _PROVIDERS[model] = factory


def get_reference(model: str, run_dir: Path) -> ReferenceProvider:
    """A dataset prompt set's references (bench.data.sets) first, else the model's."""
    from bench.data.references import run_reference

    dataset = run_reference(Path(run_dir))
    if dataset is not None:
        return dataset
    if model not in _PROVIDERS:
        raise BenchError(
            f"no reference set for model {model!r}: scoring supports {sorted(_PROVIDERS)}"
        )
    return _PROVIDERS[model](Path(run_dir))


def _digit_class(prompt_id: str) -> int:
    from bench.data.digits import NUM_CLASSES

    if not prompt_id.isdigit() or int(prompt_id) >= NUM_CLASSES:
        raise BenchError(f"digits prompt ids are 0..{NUM_CLASSES - 1}, got {prompt_id!r}")
    return int(prompt_id)


def _digits_images(prompt_id: str) -> np.ndarray:
    from bench.data.digits import load_split
    from metrics.digits_classifier import unit_to_uint8

    return unit_to_uint8(load_split("held_out").of_class(_digit_class(prompt_id)))


def _digits(_: Path) -> ReferenceProvider:
    return ReferenceProvider(
        name="digits held_out split of the prompt's class (bench.data.digits, uint8-rounded)",
        images=_digits_images,
        extractors=("digits", "pixels"),
        quality="class_score",
        quality_extractor="digits",
        class_index=_digit_class,
    )


register_reference("digits", _digits)
register_reference("digits-gmm", _digits)
