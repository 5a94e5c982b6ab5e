"""A protected set on disk: a directory that is either complete or absent.

    INDEX/vectors.bin      (N, d) row-major float32 or float16, raw (memory-mapped on load)
    INDEX/ivf.faiss        the trained, empty faiss IndexIVFFlat (only for faiss-ivf)
    INDEX/ivf_assign.npy   each row's Voronoi cell, so loading skips the assignment
    INDEX/manifest.json    written last: format, count, dim, dtype, files and sizes, and
                           `rounding`: the max and mean L2 distance between the stored
                           rows and the vectors given (nonzero for float16 storage)

Everything is written into a hidden sibling directory and renamed into place only
after the manifest is written, so an interrupted build never leaves an index at
INDEX, and loading checks the manifest against the files it names.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bench.errors import BenchError
from bench.shields.base import ShieldSet
from bench.shields.exact import default_chunk
from bench.shields.factory import DEFAULT_NPROBE, make_shield_set

FORMAT = "spellbench-shields"
VERSION = 1
MANIFEST = "manifest.json"
VECTORS = "vectors.bin"
IVF_INDEX = "ivf.faiss"
IVF_ASSIGN = "ivf_assign.npy"
DISK_DTYPES = {"float32": torch.float32, "float16": torch.float16}
BUILD_BACKENDS = ("exact", "faiss-ivf")


def _dtype_name(dtype: torch.dtype) -> str:
    for name, value in DISK_DTYPES.items():
        if value == dtype:
            return name
    raise BenchError(f"protected sets are stored as float32 or float16, not {dtype}")


def _check_target(out: Path) -> None:
    if out.exists() and not (out / MANIFEST).exists() and any(out.iterdir()):
        raise BenchError(f"{out} exists and is not a protected set: choose another --out")


class ShieldWriter:
    """Streams shield vectors to disk; `commit` finishes the index and installs it.

    Use as a context manager: an exception inside the block removes everything.
    """

    def __init__(
        self,
        out: Path,
        dtype: torch.dtype = torch.float32,
        backend: str = "exact",
        nlist: int | None = None,
        meta: dict[str, Any] | None = None,
    ) -> None:
        if backend not in BUILD_BACKENDS:
            choices = " or ".join(BUILD_BACKENDS)
            raise BenchError(f"unknown index backend {backend!r}: use {choices}")
        self.out = Path(out)
        _check_target(self.out)
        self.out.parent.mkdir(parents=True, exist_ok=True)
        self.dtype_name = _dtype_name(dtype)
        self.backend, self.nlist, self.meta = backend, nlist, dict(meta or {})
        self.tmp = Path(
            tempfile.mkdtemp(dir=self.out.parent, prefix=f".{self.out.name}.", suffix=".partial")
        )
        self._file = open(self.tmp / VECTORS, "wb")
        self.count = 0
        self.item_shape: tuple[int, ...] | None = None
        self.source_dtype: torch.dtype | None = None
        self._rounding_max = 0.0
        self._rounding_sum = 0.0

    def __enter__(self) -> ShieldWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.abort()

    def append(self, batch: torch.Tensor) -> None:
        """Add (n, ...) vectors; every batch must have the same item shape."""
        shape = tuple(batch.shape[1:])
        if self.item_shape is None:
            self.item_shape = shape
        elif shape != self.item_shape:
            first = self.item_shape
            raise BenchError(f"vector shape {shape} differs from the first batch's {first}")
        source = batch.detach().reshape(batch.shape[0], -1).cpu()
        with np.errstate(over="ignore"):  # out-of-range values are refused just below
            stored = np.ascontiguousarray(source.numpy(), dtype=self.dtype_name)
        self._measure_rounding(source, stored)
        self._file.write(stored.tobytes())
        self.count += batch.shape[0]

    def _measure_rounding(self, source: torch.Tensor, stored: np.ndarray) -> None:
        """Track how far storage moves the rows: SPELL keeps outputs at distance >= r
        from the stored vectors, so >= r - max from the vectors given."""
        seen = self.source_dtype or source.dtype
        self.source_dtype = torch.promote_types(seen, source.dtype)
        if source.dtype == DISK_DTYPES[self.dtype_name]:
            return
        error = np.linalg.norm(stored.astype(np.float64) - source.double().numpy(), axis=1)
        if not np.isfinite(error).all():
            raise BenchError(
                f"vectors exceed the {self.dtype_name} range (|x| > "
                f"{torch.finfo(DISK_DTYPES[self.dtype_name]).max:g}): store them as float32"
            )
        self._rounding_max = max(self._rounding_max, float(error.max(initial=0.0)))
        self._rounding_sum += float(error.sum())

    def commit(self) -> Path:
        """Finish the index files, write the manifest last, rename into place."""
        try:
            self._file.close()
            if self.count == 0:
                raise BenchError("no vectors to protect: the image source is empty")
            manifest = self._manifest_base()
            if self.backend == "faiss-ivf":
                manifest["ivf"] = self._write_ivf(manifest)
            manifest["files"] = {p.name: p.stat().st_size for p in sorted(self.tmp.iterdir())}
            (self.tmp / MANIFEST).write_text(json.dumps(manifest, indent=2))
            _install(self.tmp, self.out)
        except BaseException:
            self.abort()
            raise
        return self.out

    def abort(self) -> None:
        self._file.close()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def _manifest_base(self) -> dict[str, Any]:
        assert self.item_shape is not None
        return {
            "format": FORMAT,
            "version": VERSION,
            "count": self.count,
            "dim": int(np.prod(self.item_shape)),
            "item_shape": list(self.item_shape),
            "dtype": self.dtype_name,
            "backend": self.backend,
            "meta": self.meta,
            "rounding": {
                "source_dtype": str(self.source_dtype).removeprefix("torch."),
                "max_l2": self._rounding_max,
                "mean_l2": self._rounding_sum / self.count,
            },
        }

    def _write_ivf(self, manifest: dict[str, Any]) -> dict[str, int]:
        from bench.shields.ivf import assign_lists, default_nlist, import_faiss, train_ivf

        data = _memmap(self.tmp / VECTORS, manifest)
        nlist = self.nlist or default_nlist(self.count)
        index = train_ivf(data, nlist)
        np.save(self.tmp / IVF_ASSIGN, assign_lists(index, data, default_chunk(data.shape[1])))
        import_faiss().write_index(index, str(self.tmp / IVF_INDEX))
        return {"nlist": nlist}


def _install(tmp: Path, out: Path) -> None:
    """Rename the finished directory into place, replacing an older index."""
    if not out.exists():
        os.replace(tmp, out)
        return
    old = out.with_name(f".{out.name}.old-{os.getpid()}")
    os.replace(out, old)
    os.replace(tmp, out)
    shutil.rmtree(old, ignore_errors=True)


def save_shields(
    path: Path,
    vectors: torch.Tensor,
    dtype: torch.dtype = torch.float32,
    backend: str = "exact",
    nlist: int | None = None,
    meta: dict[str, Any] | None = None,
) -> Path:
    """Write a whole (N, ...) tensor of shields as an index directory."""
    with ShieldWriter(path, dtype, backend, nlist, meta) as writer:
        writer.append(vectors)
    return Path(path)


def read_manifest(path: Path) -> dict[str, Any]:
    """The manifest of a complete index; a clear BenchError for anything else."""
    path = Path(path)
    rebuild = "rebuild it with `bench protect build`"
    if not path.exists():
        raise BenchError(f"protected set {path} not found: build it with `bench protect build`")
    if not (path / MANIFEST).is_file():
        raise BenchError(f"{path} is not a complete protected set (no {MANIFEST}): {rebuild}")
    try:
        manifest = json.loads((path / MANIFEST).read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise BenchError(f"unreadable manifest in {path}: {rebuild}") from err
    if manifest.get("format") != FORMAT or manifest.get("version") != VERSION:
        raise BenchError(f"{path} is not a {FORMAT} v{VERSION} index: {rebuild}")
    for name, size in manifest.get("files", {}).items():
        file = path / name
        if not file.is_file() or file.stat().st_size != size:
            raise BenchError(f"{file} is missing or has the wrong size: {rebuild}")
    return manifest


def describe_shields(path: Path) -> str:
    """One line on a stored set: size, storage type and, when storage rounded the
    vectors, how far (the tolerance on SPELL's distance guarantee)."""
    manifest = read_manifest(path)
    line = (
        f"protected set: {path} ({manifest['count']} vectors of dim {manifest['dim']}, "
        f"{manifest['dtype']}, {manifest['backend']})"
    )
    rounding = manifest.get("rounding") or {}
    if rounding.get("max_l2"):
        line += (
            f"; {manifest['dtype']} rounding moved the {rounding['source_dtype']} vectors by "
            f"at most {rounding['max_l2']:.3g} L2 (mean {rounding['mean_l2']:.3g}): distances "
            f"to them differ from those to the stored shields by up to {rounding['max_l2']:.3g}"
        )
    return line


def _memmap(file: Path, manifest: dict[str, Any]) -> torch.Tensor:
    shape = (manifest["count"], manifest["dim"])
    # Copy-on-write mapping: writable for torch, shared pages, the file never changes.
    array = np.memmap(file, dtype=manifest["dtype"], mode="c", shape=shape)
    return torch.from_numpy(array)


def load_vectors(path: Path) -> torch.Tensor:
    """The stored (N, d) vectors, memory-mapped (pages are read on first use)."""
    path = Path(path)
    return _memmap(path / VECTORS, read_manifest(path))


def load_shields(
    path: Path,
    backend: str | None = None,
    device: torch.device | str = "cpu",
    dtype: torch.dtype | None = None,
    nprobe: int = DEFAULT_NPROBE,
) -> ShieldSet:
    """A ShieldSet over a stored index.

    `backend` None means as built: faiss-ivf for an index built with it, else `auto`.
    `dtype` defaults to the stored type; on the CPU with the stored type the vectors
    are used from the memory map, not copied."""
    path = Path(path)
    manifest = read_manifest(path)
    if backend is None:
        backend = "faiss-ivf" if "ivf" in manifest else "auto"
    vectors = _memmap(path / VECTORS, manifest)
    dtype = dtype or DISK_DTYPES[manifest["dtype"]]
    index = assign = None
    if backend == "faiss-ivf" and "ivf" in manifest:
        from bench.shields.ivf import import_faiss

        index = import_faiss().read_index(str(path / IVF_INDEX))
        assign = np.load(path / IVF_ASSIGN)
    return make_shield_set(
        vectors, backend, device, dtype, nprobe=nprobe, ivf_index=index, ivf_assign=assign
    )
