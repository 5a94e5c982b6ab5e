"""Prompt files, dataset specs in [run] prompts, and folder references at scoring time."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from bench.config import BenchConfig, RunConfig
from bench.data.prompts import read_prompt_file
from bench.data.sets import dataset_spec, load_prompt_set
from bench.errors import BenchError
from bench.generate import select_prompts
from bench.models.base import Prompt
from metrics.extractors.base import FeatureExtractor
from metrics.references import get_reference
from metrics.score import score_run


class FakeModel:
    def __init__(self, name: str, prompts: list[Prompt]) -> None:
        self.name, self._prompts = name, prompts

    def prompts(self) -> list[Prompt]:
        return self._prompts


CLASS_MODEL = FakeModel("dit", [Prompt(str(i), f"class {i}", i) for i in range(1000)])
TEXT_MODEL = FakeModel("sd3", [Prompt("0", "a cat")])
RED, BLUE = (200, 10, 10), (10, 10, 200)


def _image(path: Path, color, size=(40, 20)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, color).save(path)


def test_txt_prompts_are_reference_free(tmp_path):
    path = tmp_path / "p.txt"
    path.write_text("a red apple\n\n  a blue car  \n")
    found = read_prompt_file(path)
    assert [(p.id, p.text, p.label) for p in found.prompts] == [
        ("0", "a red apple", None),
        ("1", "a blue car", None),
    ]
    assert found.references is None


def test_csv_with_ids_and_reference_folders(tmp_path):
    _image(tmp_path / "refs" / "apple" / "1.png", RED)
    _image(tmp_path / "refs" / "car" / "1.jpg", BLUE)
    path = tmp_path / "p.csv"
    path.write_text("id,text,references\napple,a red apple,refs/apple\ncar,a blue car,refs/car\n")
    found = read_prompt_file(path)
    assert [p.id for p in found.prompts] == ["apple", "car"]
    assert found.references["car"] == [tmp_path / "refs" / "car" / "1.jpg"]


def test_jsonl_and_a_references_root(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text(
        json.dumps({"id": "a", "prompt": "x", "images": ["i/1.png"]})
        + "\n"
        + json.dumps({"id": "b", "text": "y", "images": ["i/2.png"]})
        + "\n"
    )
    assert read_prompt_file(path).references["b"] == [tmp_path / "i" / "2.png"]
    txt = tmp_path / "q.txt"
    txt.write_text("x\ny\n")
    for pid in ("0", "1"):
        _image(tmp_path / "root" / pid / "a.png", RED)
    assert set(read_prompt_file(txt, tmp_path / "root").references) == {"0", "1"}


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("p.csv", "id,prompt\na,x\na,y\n", "more than once"),
        ("p.csv", "id,caption\na,x\n", "'prompt' or 'text' column"),
        ("p.csv", "id,prompt\n../up,x\n", "must be letters"),
        ("p.csv", "id,prompt\na,\n", "no text"),
        ("p.jsonl", '{"id": "a"}\n', '"prompt" or "text"'),
        ("p.jsonl", "{oops\n", "not JSON"),
        ("p.csv", "prompt,references\nx,refs\ny,\n", "no reference images"),
        ("p.yaml", "x", ".txt, .csv or .jsonl"),
    ],
)
def test_bad_prompt_files_are_one_line_errors(tmp_path, name, text, message):
    (tmp_path / "refs").mkdir()
    _image(tmp_path / "refs" / "1.png", RED)
    (tmp_path / name).write_text(text)
    with pytest.raises(BenchError, match=message):
        read_prompt_file(tmp_path / name)


def test_specs_dispatch_and_the_digits_default_is_unchanged(tmp_path, random_digits):
    assert dataset_spec("all") is None and dataset_spec(["0", "7"]) is None
    assert dataset_spec(3) is None and dataset_spec(["file:p.txt"]) == "file:p.txt"
    assert [p.id for p in select_prompts(random_digits, "all")] == [str(c) for c in range(10)]
    assert [p.id for p in select_prompts(random_digits, ["7", "0"])] == ["7", "0"]
    path = tmp_path / "p.txt"
    path.write_text("a\nb\nc\n")
    assert [p.text for p in select_prompts(TEXT_MODEL, f"file:{path}@2")] == ["a", "b"]
    with pytest.raises(BenchError, match="class-conditional"):
        load_prompt_set(f"file:{path}", CLASS_MODEL)
    with pytest.raises(BenchError, match="not found"):
        select_prompts(TEXT_MODEL, f"file:{tmp_path / 'nope.txt'}")


def test_references_do_not_change_the_config_hash():
    plain = BenchConfig(run=RunConfig(prompts="imagenet"))
    with_refs = BenchConfig(run=RunConfig(prompts="imagenet", references=Path("/data/val")))
    assert plain.hash() == with_refs.hash()


def _run(tmp_path: Path, prompts: str, generated: dict[str, np.ndarray]) -> Path:
    run = tmp_path / "run"
    (run / "samples" / "none").mkdir(parents=True)
    (run / "config.toml").write_text(f'[run]\nmodel = "sd3"\nprompts = "{prompts}"\n')
    (run / "samples" / "none" / "method.json").write_text(json.dumps({"id": "none"}))
    for pid, images in generated.items():
        np.savez(run / "samples" / "none" / f"{pid}.npz", images=images)
    return run


def _solid(color, n=6, size=(16, 12)) -> np.ndarray:
    rng = np.random.default_rng(sum(color))
    noise = rng.integers(-8, 9, (n, *size, 3))
    return np.clip(np.array(color) + noise, 0, 255).astype(np.uint8)


def _prompt_file(tmp_path: Path, with_refs: bool) -> Path:
    for k in range(6):
        _image(tmp_path / "refs" / "apple" / f"{k}.png", RED)
        _image(tmp_path / "refs" / "car" / f"{k}.png", BLUE, size=(9, 30))
    rows = "apple,a red apple,refs/apple\ncar,a blue car,refs/car\n"
    if not with_refs:
        rows = rows.replace(",refs/apple", ",").replace(",refs/car", ",")
    path = tmp_path / "p.csv"
    path.write_text("id,prompt,references\n" + rows)
    return path


def test_folder_references_load_at_the_generated_size(tmp_path):
    path = _prompt_file(tmp_path, with_refs=True)
    run = _run(tmp_path, f"file:{path}", {"apple": _solid(RED)})
    provider = get_reference("sd3", run)
    images = provider.images("car")
    assert images.dtype == np.uint8 and images.shape == (6, 16, 12, 3)
    assert np.abs(images.astype(int) - BLUE).max() <= 2
    assert not provider.reference_free and provider.prompt_text("apple") == "a red apple"
    with pytest.raises(BenchError, match="no reference images"):
        provider.images("pear")


class _StubClip(FeatureExtractor):
    """CLIP stand-in: image features are the mean colour; the text 'red' points at red."""

    name, dim, threads = "clip", 3, 1

    def _batch(self, images):
        return {"features": images.float().mean((1, 2))}

    def text_features(self, prompts):
        return np.array([[1.0, 0.0, 0.0] if "red" in p else [0.0, 0.0, 1.0] for p in prompts])


def _score(monkeypatch, tmp_path, with_refs: bool, extractor: str) -> dict:
    from metrics import extractors

    stubbed = extractors.EXTRACTORS.with_entry("clip", lambda **_: _StubClip())
    monkeypatch.setattr(extractors, "EXTRACTORS", stubbed)
    path = _prompt_file(tmp_path, with_refs)
    run = _run(tmp_path, f"file:{path}", {"apple": _solid(RED), "car": _solid(BLUE)})
    torch.manual_seed(0)
    return score_run(run, [extractor])["results"][0]


def test_scoring_with_folder_references(monkeypatch, tmp_path):
    result = _score(monkeypatch, tmp_path, with_refs=True, extractor="pixels")
    assert result["metrics"]["coverage"] is not None and result["metrics"]["clip_score"] > 90
    assert result["counts"]["n_reference"] == 12


def test_reference_free_scoring_keeps_vendi_and_clip_score(monkeypatch, tmp_path):
    # a fixed-dimension extractor, as dinov2 (the default here); pixels has no fixed dim
    result = _score(monkeypatch, tmp_path, with_refs=False, extractor="clip")
    metrics = result["metrics"]
    assert metrics["vendi"] is not None and metrics["clip_score"] > 90
    assert metrics["recall"] is None and metrics["fd_clip"] is None
    assert result["counts"]["n_reference"] == 0
    run = tmp_path / "run"
    assert get_reference("sd3", run).reference_free


def test_samples_references_gives_each_prompt_its_reference_count(tmp_path):
    """The paper's CC12M protocol: as many samples as reference images, at most 128."""
    from bench.generate import REFERENCE_SAMPLES_CAP, with_reference_counts
    from bench.models.base import Prompt

    for i in range(3):
        _image(tmp_path / "refs" / "apple" / f"{i}.png", RED)
    _image(tmp_path / "refs" / "car" / "0.png", BLUE)
    path = tmp_path / "p.csv"
    path.write_text("id,text,references\napple,a red apple,refs/apple\ncar,a blue car,refs/car\n")
    prompts = [Prompt("apple", "a red apple"), Prompt("car", "a blue car")]
    counted = with_reference_counts(prompts, f"file:{path}", None)
    assert [p.samples for p in counted] == [3, 1]
    assert REFERENCE_SAMPLES_CAP == 128
    free = tmp_path / "free.txt"
    free.write_text("a red apple\n")
    with pytest.raises(BenchError, match="needs a prompt set with reference images"):
        with_reference_counts(prompts, f"file:{free}", None)


def test_a_prompts_own_count_sets_its_samples(tmp_path, random_digits):
    """Generation honours Prompt.samples: 3 and 5 samples, batches of 2, one run."""
    from dataclasses import replace

    from bench.loop import Launch, run_generation
    from bench.run_dir import RunDir
    from bench.sampler import SamplingSettings
    from methods.none import NoMethod

    prompts = [
        replace(p, samples=n) for p, n in zip(random_digits.prompts()[:2], (3, 5), strict=True)
    ]
    run = RunDir(tmp_path / "run")
    settings = SamplingSettings(guidance=1.0, steps=2, scheduler="native")
    method = NoMethod()
    done = run_generation(
        run, random_digits, [method], prompts, settings, 0, 2, 0, Launch(), progress=False
    )
    assert done == 2
    counts = [len(run.load_samples(method.id, p.id)["images"]) for p in prompts]
    assert counts == [3, 5]
