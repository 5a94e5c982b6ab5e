"""ImageNet classes as prompts, class folders as references, and the `imagenet` spec."""

import pytest
from PIL import Image

from bench.data.imagenet import (
    CLASSES_FILE,
    class_names,
    imagenet_prompts,
    imagenet_references,
)
from bench.data.sets import load_prompt_set, open_prompt_set
from bench.errors import BenchError
from bench.generate import select_prompts
from bench.models.base import Prompt


class FakeModel:
    def __init__(self, name: str, prompts: list[Prompt]) -> None:
        self.name, self._prompts = name, prompts

    def prompts(self) -> list[Prompt]:
        return self._prompts


CLASS_MODEL = FakeModel("dit", [Prompt(str(i), f"class {i}", i) for i in range(1000)])
TEXT_MODEL = FakeModel("sd3", [Prompt("0", "a cat")])


def test_class_names_ship_with_the_package():
    names = class_names()
    assert CLASSES_FILE.parent.name == "data" and len(names) == 1000
    assert (names[0], names[1], names[999]) == ("tench", "goldfish", "toilet tissue")
    assert len(set(names)) == 1000


def test_prompts_for_class_and_text_models():
    assert imagenet_prompts(labels=True)[0] == Prompt("0", "tench", 0)
    assert imagenet_prompts(labels=False)[2].text == "a photo of a great white shark"
    assert load_prompt_set("imagenet", CLASS_MODEL)[7].text == class_names()[7]
    assert load_prompt_set("imagenet@3", TEXT_MODEL)[1].text == "a photo of a goldfish"
    chosen = select_prompts(CLASS_MODEL, ["imagenet@5"])  # the CLI hands a one-item list
    assert [p.label for p in chosen] == [0, 1, 2, 3, 4]


def test_a_model_without_imagenet_classes_is_refused(random_digits):
    with pytest.raises(BenchError, match="not ImageNet's 1000"):
        select_prompts(random_digits, "imagenet@5")
    with pytest.raises(BenchError, match="imagenet takes no path"):
        open_prompt_set("imagenet:/data/val")


def _image(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (5, 5)).save(path)


def test_index_named_folders(tmp_path):
    _image(tmp_path / "0" / "a.JPEG")
    _image(tmp_path / "0042" / "b.png")
    (tmp_path / "0042" / "notes.txt").write_text("not an image")
    refs = imagenet_references(tmp_path)
    assert set(refs) == {"0", "42"}
    assert [p.name for p in refs["42"]] == ["b.png"]
    assert open_prompt_set("imagenet@50", tmp_path).references.keys() == {"0", "42"}


def test_wnid_folders_map_by_sorted_order(tmp_path):
    wnids = [f"n{10000000 + 7 * i:08d}" for i in range(1000)]
    for w in wnids:
        (tmp_path / w).mkdir()
    _image(tmp_path / wnids[3] / "x.jpg")
    refs = imagenet_references(tmp_path)
    assert len(refs) == 1000 and [p.name for p in refs["3"]] == ["x.jpg"] and refs["4"] == []
    (tmp_path / wnids[0]).rmdir()
    with pytest.raises(BenchError, match="1000 wnids"):
        imagenet_references(tmp_path)
