"""ImageNet-1k classes as prompts, and their reference images from a local ImageFolder.

`imagenet_classes.txt` holds the 1000 class names in the standard class-index
order (written once from torchvision's ResNet50_Weights.IMAGENET1K_V1 metadata).
Prompt ids are the class indices as strings ("0" .. "999"), as the class-conditional
adapters (dit) name them. Text-to-image models get "a photo of a <class>", as the
SPELL paper does for SD3.

References (`[run] references = DIR`, e.g. the validation set) have one subfolder
per class, named either
- by class index ("0", "7", "0042": any subset of the classes), or
- by WordNet id ("n01440764", ...): then all 1000 must be present, and the sorted
  wnids give the class index, which is the standard ImageNet-1k order
  (torchvision's ImageFolder assigns the same indices).
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

from bench.data.folders import image_files
from bench.data.sets import PromptSet
from bench.errors import BenchError
from bench.models.base import Prompt

CLASSES_FILE = Path(__file__).with_name("imagenet_classes.txt")
NUM_CLASSES = 1000
TEMPLATE = "a photo of a {}"
_WNID = re.compile(r"n\d{8}")


@lru_cache(maxsize=1)
def class_names() -> tuple[str, ...]:
    names = tuple(line.strip() for line in CLASSES_FILE.read_text("utf-8").splitlines())
    names = tuple(n for n in names if n)
    if len(names) != NUM_CLASSES:
        raise BenchError(f"{CLASSES_FILE} holds {len(names)} class names, not {NUM_CLASSES}")
    return names


def imagenet_prompts(labels: bool) -> list[Prompt]:
    """Class names with labels (class-conditional models) or the caption template."""
    return [
        Prompt(id=str(i), text=name if labels else TEMPLATE.format(name), label=i)
        for i, name in enumerate(class_names())
    ]


def imagenet_references(root: Path) -> dict[str, list[Path]]:
    """Prompt id -> the image files of that class's folder under `root`."""
    root = Path(root)
    if not root.is_dir():
        raise BenchError(f"ImageNet reference folder {root} not found")
    folders = sorted(p for p in root.iterdir() if p.is_dir())
    names = [p.name for p in folders]
    if names and all(n.isdigit() for n in names):
        index = [int(n) for n in names]
        if max(index) >= NUM_CLASSES or len(set(index)) < len(index):
            raise BenchError(f"{root}: class folders must be distinct class indices 0..999")
    elif len(names) == NUM_CLASSES and all(_WNID.fullmatch(n) for n in names):
        index = list(range(NUM_CLASSES))
    else:
        raise BenchError(
            f"{root} needs class subfolders named by class index (0..999) or by the "
            f"1000 wnids (n01440764 ...); found {len(names)} other folders"
        )
    return {str(i): image_files(folder) for i, folder in zip(index, folders, strict=True)}


def imagenet_set(references: Path | None, labels: bool) -> PromptSet:
    refs = imagenet_references(references) if references is not None else None
    where = f"images under {references}" if refs is not None else "no reference images"
    return PromptSet(f"ImageNet-1k classes ({where})", imagenet_prompts(labels), refs)
