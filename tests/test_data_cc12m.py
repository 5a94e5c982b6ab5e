"""The soft-label CC12M builder on a synthetic TSV and a fake img2dataset download."""

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bench.data.cc12m import (
    assign_splits,
    build_cc12m,
    candidate_hashes,
    group_captions,
    site,
    split_sizes,
)
from bench.data.sets import open_prompt_set
from bench.errors import BenchError

DOMAINS = ("https://a.com/{}", "http://www.b.org/{}", "https://img.c.co.uk/{}", "http://d.net/{}")


def _urls(name: str, n: int) -> list[str]:
    return [DOMAINS[i % len(DOMAINS)].format(f"{name}/{i}.jpg") for i in range(n)]


def _rows() -> tuple[list[tuple[str, str]], set[str]]:
    """(url, caption) rows and the urls whose download failed."""
    rows = []
    for k in range(11):
        rows += [(u, f"good caption {k}") for u in _urls(f"good{k}", 4 + k % 3)]
    rows += [(u, "one hundred twenty eight") for u in _urls("max", 128)]
    rows += [(u, "one hundred twenty nine") for u in _urls("over", 129)]
    rows += [(u, "a dog in the snow") for u in _urls("dog", 3)]
    album = ["https://photos.example.com/1", "http://www.example.com/2", "https://example.com/3"]
    rows += [(u, "holiday album") for u in [*album, "https://a.com/other"]]
    rows += [(u, "Image result for cats") for u in _urls("auto", 4)]
    rows += [(u, "<PERSON> on stage") for u in _urls("person", 4)]
    blue = _urls("blue", 5)
    rows += [(u, "a blue car") for u in blue]
    tree = _urls("tree", 3)
    rows += [(u, "a green tree") for u in [tree[0], *tree]]
    return rows, set(blue[:2])


def make_download(root: Path) -> tuple[Path, Path]:
    rows, failed = _rows()
    tsv = root / "cc12m.tsv"
    tsv.write_text("url\tcaption\n" + "".join(f"{u}\t{c}\n" for u, c in rows))
    images = root / "download"
    for k, (url, caption) in enumerate(rows):
        shard = images / f"{k // 64:05d}"
        shard.mkdir(parents=True, exist_ok=True)
        key = f"{k:09d}"
        ok = url not in failed
        sidecar = {"url": url, "caption": caption, "key": key, "status": "success" if ok else "x"}
        (shard / f"{key}.json").write_text(json.dumps(sidecar))
        if ok:
            (shard / f"{key}.txt").write_text(caption)
            Image.new("RGB", (6, 4), (k % 256, 0, 0)).save(shard / f"{key}.jpg")
    (images / "00000_stats.json").write_text("{}")
    return tsv, images


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("cc12m")
    tsv, images = make_download(root)
    out = root / "soft"
    return tsv, images, out, build_cc12m(tsv, images, out, seed=0)


def _items(folder: Path, name: str = "prompts.jsonl") -> list[dict]:
    return [json.loads(line) for line in (folder / name).read_text().splitlines()]


def test_filters_of_appendix_e(built):
    _, _, out, summary = built
    texts = {i["text"] for i in _items(out)}
    assert texts == {f"good caption {k}" for k in range(11)} | {"one hundred twenty eight"}
    assert summary["kept"] == 12
    assert summary["rows_with_excluded_caption"] == 8
    assert summary["dropped"] == {"image_count": 3, "domain": 1}
    assert summary["captions_with_4_rows"] == 16  # the dog's 3 rows are never grouped


def test_proportional_split_is_said(built):
    _, _, out, summary = built
    assert summary["splits"] == {"validation": 1, "test": 11}
    assert "proportion" in summary["note"]
    items = _items(out)
    assert [i["id"] for i in items] == [f"{k:04d}" for k in range(12)]
    assert [i["split"] for i in items] == ["validation"] + ["test"] * 11
    assert summary["images"]["validation"] + summary["images"]["test"] == sum(
        len(i["images"]) for i in items
    )


def test_images_match_their_caption(built):
    _, images, out, _ = built
    by_id = {i["id"]: i for i in _items(out)}
    index = _items(out, "index.jsonl")
    assert len(index) == sum(len(i["images"]) for i in by_id.values())
    for entry in index:
        caption = (images / entry["source"]).with_suffix(".txt").read_text()
        assert caption == by_id[entry["prompt_id"]]["text"]
        assert entry["path"] in by_id[entry["prompt_id"]]["images"]
        assert Image.open(out / entry["path"]).size == (6, 4)


def test_seeded_and_atomic(built, tmp_path):
    tsv, images, out, _ = built
    same = tmp_path / "same"
    build_cc12m(tsv, images, same, seed=0)
    assert (same / "prompts.jsonl").read_text() == (out / "prompts.jsonl").read_text()
    with pytest.raises(BenchError, match="not empty"):
        build_cc12m(tsv, images, same, seed=1)
    build_cc12m(tsv, images, same, seed=1, force=True)
    assert (same / "prompts.jsonl").read_text() != (out / "prompts.jsonl").read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["same"]  # no temporary left


def test_loads_as_a_prompt_set(built):
    out = built[2]
    test = open_prompt_set(f"cc12m:{out}")
    assert len(test.prompts) == 11 and test.prompts[0].label is None
    val = open_prompt_set(f"cc12m:{out}:val")
    assert [p.id for p in val.prompts] == ["0000"]
    assert all(p.is_file() for p in val.references["0000"])
    assert len(open_prompt_set(f"cc12m:{out}:all@3").prompts) == 3
    with pytest.raises(BenchError, match="not a built CC12M"):
        open_prompt_set(f"cc12m:{out / 'nope'}:test")


def test_two_passes_keep_only_candidates(built):
    tsv = built[0]
    candidates, stats = candidate_hashes(tsv)
    groups = group_captions(tsv, candidates)
    assert "a dog in the snow" not in groups and "Image result for cats" not in groups
    assert groups["a green tree"] == _urls("tree", 3)  # distinct urls, in order
    assert stats["tsv_rows"] == len(_rows()[0])


def test_split_sizes_and_sites():
    assert split_sizes(5554) == {"validation": 554, "test": 5000}
    assert split_sizes(9000) == {"validation": 554, "test": 5000}
    assert split_sizes(100) == {"validation": 10, "test": 90}
    chosen = assign_splits([f"c{i}" for i in range(6000)], seed=3)
    assert len(chosen) == 5554 and sum(s == "validation" for _, s in chosen) == 554
    assert len({c for c, _ in chosen}) == 5554
    assert site("https://photos.example.com/x.jpg") == "example.com"
    assert site("http://www.shop.co.uk/a") == "shop.co.uk"
    assert site("http://a.b.example.de/") == "example.de"
    assert np.unique([site(u) for u in _urls("x", 8)]).size == 4


def test_missing_download_is_one_line_error(built, tmp_path):
    with pytest.raises(BenchError, match="img2dataset"):
        build_cc12m(built[0], tmp_path / "empty", tmp_path / "out")
