"""Reference sets per model: what each prompt's generated images are compared with.

A model plugs in with `register_reference(model_name, factory)`; the factory gets
the run directory and returns a `bench.data.references.ReferenceProvider`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from bench.data.references import ReferenceProvider, run_reference
from bench.errors import BenchError
from bench.registry import Registry

ReferenceFactory = Callable[[Path], ReferenceProvider]
REFERENCES: Registry[ReferenceFactory] = Registry("reference set", direct_imports=False)


def register_reference(model: str, factory: ReferenceFactory | str) -> None:
    REFERENCES.register(model, factory)


def get_reference(model: str, run_dir: Path) -> ReferenceProvider:
    """A dataset prompt set's references (bench.data.sets) first, else the model's."""
    dataset = run_reference(Path(run_dir))
    if dataset is not None:
        return dataset
    if model not in REFERENCES:
        raise BenchError(
            f"no reference set for model {model!r}: scoring supports {REFERENCES.names()}"
        )
    return REFERENCES.get(model)(Path(run_dir))


def _class_index(prompt_id: str, classes: int, model: str) -> int:
    if not prompt_id.isdigit() or int(prompt_id) >= classes:
        raise BenchError(f"{model} prompt ids are 0..{classes - 1}, got {prompt_id!r}")
    return int(prompt_id)


def _digit_class(prompt_id: str) -> int:
    from bench.data.digits import NUM_CLASSES

    return _class_index(prompt_id, NUM_CLASSES, "digits")


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


TOY2D_REFERENCE_SIZE = 512  # exact samples per class, rendered like the generated points


def _toy2d_images(prompt_id: str) -> np.ndarray:
    """Exact i.i.d. samples of the prompt's class, rendered as the model renders points."""
    import torch

    from bench.models.toy2d import render_points, toy2d_ground_truth
    from bench.sampler import to_uint8
    from bench.seeding import derive_seed

    truth = toy2d_ground_truth()
    label = _class_index(prompt_id, truth.num_classes, "toy2d")
    rng = np.random.default_rng(derive_seed("toy2d-reference", label))
    points = torch.from_numpy(truth.sample(TOY2D_REFERENCE_SIZE, rng, label))
    return to_uint8(render_points(points))


def _toy2d(_: Path) -> ReferenceProvider:
    from bench.models.toy2d import NUM_CLASSES

    return ReferenceProvider(
        name=f"{TOY2D_REFERENCE_SIZE} exact samples of the prompt's class (bench.models.toy2d)",
        images=_toy2d_images,
        extractors=("toy2d",),
        quality="class_score",
        quality_extractor="toy2d",
        class_index=lambda pid: _class_index(pid, NUM_CLASSES, "toy2d"),
    )


for _model in ("toy2d", "toy2d-exact", "toy2d-weak"):
    register_reference(_model, _toy2d)
