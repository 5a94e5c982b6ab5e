"""The soft-label CC12M subset of the SPELL paper (Appendix E), built from local files.

Inputs: the CC12M TSV (url<TAB>caption per line, 12M lines; a "url<TAB>caption"
header is skipped) and its images as img2dataset writes them with
`--output_format files`: DIR/00000/000000000.jpg beside a .json sidecar whose
"url" key names the source.

Rules (Appendix E): group images by caption; drop captions that contain an
automatic-caption marker or <PERSON>; keep captions with 4 to 128 images; drop
groups whose most frequent domain holds 75% or more of the urls; split 554
validation / 5000 test captions with a fixed seed (fewer survivors: the same
proportions, and the summary says so). Two readings of the paper's words:
- an image is a distinct url of the caption with a downloaded file, so every kept
  caption really has 4..128 reference images; with a complete download this is
  the paper's rule on the TSV.
- "top-level domain" is the site (registrable domain: host without "www.", its last
  two labels, three for country domains such as example.co.uk); a literal TLD such
  as ".com" would drop nearly every group.

Memory: the TSV is streamed twice. Pass 1 keeps an 8-byte hash per row whose caption
passes the text filters (about 100 MB for 12M rows) to find the captions with at
least 4 rows; pass 2 holds the caption -> urls map for those captions only, never
more than the full grouped map. The image scan keeps url -> file for those urls.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from array import array
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np

from bench.atomic import atomic_write_text
from bench.data.folders import IMAGE_SUFFIXES
from bench.data.sets import PromptSet
from bench.errors import BenchError
from bench.models.base import Prompt

AUTO_CAPTION_MARKERS = (
    "Display larger image",
    "This image may contain",
    "This is the product title",
    "Image result for",
)
PERSON = "<PERSON>"
MIN_IMAGES, MAX_IMAGES = 4, 128
DOMAIN_SHARE = 0.75
SPLIT_SIZES = {"validation": 554, "test": 5000}
SPLIT_NAMES = {"validation": "validation", "val": "validation", "test": "test"}
TABLE3_BINS = ((4, 5), (6, 10), (11, 20), (21, 30), (31, 40), (41, 50), (51, 128))
_SECOND_LEVEL = {"ac", "co", "com", "edu", "gov", "ne", "net", "or", "org"}


def build_cc12m(tsv: Path, images: Path, out: Path, seed: int = 0, force: bool = False) -> dict:
    """Write the dataset folder `out` (prompts.jsonl, index.jsonl, summary.json, images/)
    and return the summary. `out` appears complete or not at all."""
    tsv, images, out = Path(tsv), Path(images), Path(out)
    if not tsv.is_file():
        raise BenchError(f"CC12M TSV {tsv} not found")
    if out.exists() and any(out.iterdir()) and not force:
        raise BenchError(f"{out} exists and is not empty: choose another --out or remove it")
    candidates, stats = candidate_hashes(tsv)
    groups = group_captions(tsv, candidates)
    found = index_images(images, {u for urls in groups.values() for u in urls})
    kept, dropped = select_groups(groups, found)
    chosen = assign_splits(sorted(kept), seed)
    summary = _summary(tsv, images, seed, stats, len(groups), dropped, kept, chosen)
    _write(out, chosen, kept, found, images, summary)
    return summary


def excluded(caption: str) -> bool:
    return PERSON in caption or any(m in caption for m in AUTO_CAPTION_MARKERS)


def site(url: str) -> str:
    host = (urlsplit(url).hostname or "").removeprefix("www.")
    labels = host.split(".")
    country = len(labels) >= 3 and len(labels[-1]) == 2 and labels[-2] in _SECOND_LEVEL
    return ".".join(labels[-3:] if country else labels[-2:])


def dominated(urls: list[str]) -> bool:
    """The most frequent site holds DOMAIN_SHARE or more of the urls."""
    top = Counter(site(u) for u in urls).most_common(1)[0][1]
    return top >= DOMAIN_SHARE * len(urls)


def tsv_rows(tsv: Path) -> Iterator[tuple[str, str]]:
    with Path(tsv).open(encoding="utf-8", errors="replace") as f:
        for n, line in enumerate(f):
            url, tab, caption = line.rstrip("\r\n").partition("\t")
            if n == 0 and (url, caption) == ("url", "caption"):
                continue
            if tab and url.strip() and caption:
                yield url.strip(), caption


def _hash(caption: str) -> int:
    return int.from_bytes(hashlib.blake2b(caption.encode(), digest_size=8).digest(), "little")


def candidate_hashes(tsv: Path) -> tuple[set[int], dict[str, int]]:
    """Pass 1: hashes of captions with at least MIN_IMAGES rows. A hash collision can only
    add a candidate (pass 2 counts exactly), never lose one."""
    hashes, rows = array("Q"), 0
    for _, caption in tsv_rows(tsv):
        rows += 1
        if not excluded(caption):
            hashes.append(_hash(caption))
    values, counts = np.unique(np.frombuffer(hashes, np.uint64), return_counts=True)
    stats = {"tsv_rows": rows, "rows_with_excluded_caption": rows - len(hashes)}
    return set(values[counts >= MIN_IMAGES].tolist()), stats


def group_captions(tsv: Path, candidates: set[int]) -> dict[str, list[str]]:
    """Pass 2: caption -> its distinct urls, for the candidate captions only."""
    groups: dict[str, list[str]] = {}
    for url, caption in tsv_rows(tsv):
        if _hash(caption) in candidates and not excluded(caption):
            groups.setdefault(caption, []).append(url)
    return {c: list(dict.fromkeys(urls)) for c, urls in groups.items()}


def index_images(images: Path, wanted: set[str]) -> dict[str, Path]:
    """url -> downloaded file, from the img2dataset sidecars, for the `wanted` urls."""
    images = Path(images)
    shards = sorted(p for p in images.iterdir() if p.is_dir()) if images.is_dir() else []
    if not shards:
        raise BenchError(
            f"no img2dataset shard folders (00000/ ...) under {images}: download the images "
            "with img2dataset --output_format files"
        )
    found: dict[str, Path] = {}
    for shard in shards:
        names = {e.name for e in os.scandir(shard)}
        for name in sorted(n for n in names if n.endswith(".json")):
            url = _sidecar_url(shard / name)
            image = _image_beside(shard, name[: -len(".json")], names)
            if url in wanted and url not in found and image is not None:
                found[url] = image
    return found


def _sidecar_url(path: Path) -> str | None:
    try:
        url = json.loads(path.read_text("utf-8")).get("url")
    except (OSError, ValueError, AttributeError):
        return None
    return url.strip() if isinstance(url, str) else None


def _image_beside(shard: Path, stem: str, names: set[str]) -> Path | None:
    for suffix in IMAGE_SUFFIXES:
        if stem + suffix in names:
            return shard / (stem + suffix)
    return None


def select_groups(
    groups: dict[str, list[str]], found: dict[str, Path]
) -> tuple[dict[str, list[str]], Counter]:
    """Caption -> its downloaded urls, for the captions that pass count and domain rules."""
    kept: dict[str, list[str]] = {}
    dropped: Counter = Counter()
    for caption, urls in groups.items():
        local = [u for u in urls if u in found]
        if not MIN_IMAGES <= len(local) <= MAX_IMAGES:
            dropped["image_count"] += 1
        elif dominated(local):
            dropped["domain"] += 1
        else:
            kept[caption] = local
    return kept, dropped


def split_sizes(n: int) -> dict[str, int]:
    total = sum(SPLIT_SIZES.values())
    if n >= total:
        return dict(SPLIT_SIZES)
    validation = round(n * SPLIT_SIZES["validation"] / total)
    return {"validation": validation, "test": n - validation}


def assign_splits(captions: list[str], seed: int) -> list[tuple[str, str]]:
    """(caption, split) in the seeded random order: validation first, then test."""
    sizes = split_sizes(len(captions))
    order = np.random.default_rng(seed).permutation(len(captions))[: sum(sizes.values())]
    return [
        (captions[i], "validation" if k < sizes["validation"] else "test")
        for k, i in enumerate(order)
    ]


def _summary(tsv, images, seed, stats, grouped, dropped, kept, chosen) -> dict:
    sizes = Counter(split for _, split in chosen)
    summary = {
        "source": {"tsv": str(tsv), "images": str(images)},
        "seed": seed,
        **stats,
        "captions_with_4_rows": grouped,
        "dropped": {"image_count": dropped["image_count"], "domain": dropped["domain"]},
        "kept": len(kept),
        "splits": {s: sizes[s] for s in SPLIT_SIZES},
        "unused": len(kept) - len(chosen),
        "images": {s: sum(len(kept[c]) for c, x in chosen if x == s) for s in SPLIT_SIZES},
        "images_per_caption": {s: _histogram(kept, chosen, s) for s in SPLIT_SIZES},
    }
    if len(kept) < sum(SPLIT_SIZES.values()):
        summary["note"] = (
            f"{len(kept)} captions survived, fewer than the paper's 5554: split in the "
            "paper's 554:5000 proportion"
        )
    elif len(kept) > len(chosen):
        summary["note"] = f"{len(kept)} captions survived: {summary['unused']} left unused"
    return summary


def _histogram(kept: dict[str, list[str]], chosen: list[tuple[str, str]], split: str) -> dict:
    counts = [len(kept[c]) for c, s in chosen if s == split]
    return {f"{lo}-{hi}": sum(lo <= n <= hi for n in counts) for lo, hi in TABLE3_BINS}


def _write(out, chosen, kept, found, images, summary) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    try:
        tmp.chmod(0o755)
        prompts, index = [], []
        for k, (caption, split) in enumerate(chosen):
            pid = f"{k:04d}"
            files = _copy_images(tmp, pid, [found[u] for u in kept[caption]])
            prompts.append({"id": pid, "text": caption, "split": split, "images": files})
            for url, file in zip(kept[caption], files, strict=True):
                source = found[url].relative_to(images).as_posix()
                index.append({"path": file, "prompt_id": pid, "url": url, "source": source})
        atomic_write_text(tmp / "prompts.jsonl", _jsonl(prompts))
        atomic_write_text(tmp / "index.jsonl", _jsonl(index))
        atomic_write_text(tmp / "summary.json", json.dumps(summary, indent=2) + "\n")
        _swap_in(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _copy_images(root: Path, pid: str, sources: list[Path]) -> list[str]:
    files = []
    for j, source in enumerate(sources):
        relative = f"images/{pid}/{j:03d}{source.suffix.lower()}"
        target = root / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(source, target)  # same filesystem: no copy of 40k images
        except OSError:
            shutil.copyfile(source, target)
        files.append(relative)
    return files


def _jsonl(items: list[dict]) -> str:
    return "".join(json.dumps(item, ensure_ascii=False) + "\n" for item in items)


def _swap_in(tmp: Path, out: Path) -> None:
    if not out.exists():
        os.replace(tmp, out)
        return
    old = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".old", dir=out.parent))
    os.replace(out, old / out.name)
    os.replace(tmp, out)
    shutil.rmtree(old, ignore_errors=True)


def load_cc12m(folder: Path, split: str = "test") -> PromptSet:
    """The prompts of one split (test, validation/val, or all) of a built folder."""
    folder = Path(folder)
    path = folder / "prompts.jsonl"
    if not path.is_file():
        raise BenchError(f"{folder} is not a built CC12M folder: run `bench data build cc12m`")
    if split != "all" and split not in SPLIT_NAMES:
        raise BenchError(f"unknown CC12M split {split!r}: use test, validation or all")
    items = [json.loads(line) for line in path.read_text("utf-8").splitlines() if line]
    if split != "all":
        items = [i for i in items if i["split"] == SPLIT_NAMES[split]]
    prompts = [Prompt(id=i["id"], text=i["text"]) for i in items]
    refs = {i["id"]: [folder / f for f in i["images"]] for i in items}
    return PromptSet(f"soft-label CC12M {split} split of {folder}", prompts, refs)
