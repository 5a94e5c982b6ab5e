"""The metrics of a method-config's whole sample that random subsets or splits of it
define: KID (subsets of both sets), FD-infinity (subsets of growing size) and the
Inception Score (splits of the class probabilities), in every scored space.

Their rows are gathered from the feature cache into memory-mapped files under the run's
features folder, one (space, output) at a time, and read back a subset at a time, so
what is in memory is one prompt's outputs or one subset, never a run's features. The
reference rows are written once per space and shared by every method-config.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np

from metrics.fd_inf import fd_inf_key, fd_infinity
from metrics.frechet import GaussianAccumulator
from metrics.inception_score import inception_score, is_key
from metrics.kid import kernel_inception_distance, kid_key
from metrics.values import Undefined, is_defined

Value = float | Undefined
Chunks = Callable[[], Iterable[np.ndarray]]


class RowFiles:
    """Memory-mapped (N, D) float32 arrays written chunk by chunk, in a temporary folder
    that is removed on exit."""

    def __init__(self, parent: Path) -> None:
        parent.mkdir(parents=True, exist_ok=True)
        self.folder = Path(tempfile.mkdtemp(dir=parent, prefix=".rows-"))
        self._count = 0

    def __enter__(self) -> RowFiles:
        return self

    def __exit__(self, *exc: object) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)

    def write(self, chunks: Iterable[np.ndarray]) -> np.ndarray:
        """One array from its chunks."""
        writer = self.writer()
        for chunk in chunks:
            writer.append("rows", chunk)
        return writer.finish().get("rows", np.zeros((0, 0), np.float32))

    def writer(self) -> RowWriter:
        """Several arrays at once, chunk by chunk (a method's outputs in every space)."""
        self._count += 1
        return RowWriter(self.folder / str(self._count))


class RowWriter:
    def __init__(self, folder: Path) -> None:
        folder.mkdir()
        self.folder = folder
        self._files: dict[Any, tuple[Any, list[int]]] = {}  # key -> (file, [rows, dim])

    def append(self, key: Any, chunk: np.ndarray) -> None:
        if len(chunk) == 0:
            return
        chunk = np.ascontiguousarray(chunk, np.float32).reshape(len(chunk), -1)
        if key not in self._files:
            self._files[key] = (open(self.folder / f"{len(self._files)}.bin", "wb"), [0, 0])
        f, shape = self._files[key]
        f.write(chunk.tobytes())
        shape[0], shape[1] = shape[0] + len(chunk), chunk.shape[1]

    def finish(self) -> dict[Any, np.ndarray]:
        out = {}
        for key, (f, (rows, dim)) in self._files.items():
            f.close()
            out[key] = np.memmap(f.name, np.float32, mode="r", shape=(rows, dim))
        return out


def subset_keys(names: list[str], has_probs: Callable[[str], bool]) -> list[str]:
    """The keys `subset_values` fills, in its order."""
    keys = []
    for name in names:
        keys += [kid_key(name), fd_inf_key(name), *([is_key(name)] if has_probs(name) else [])]
    return keys


def subset_values(
    gen: dict[tuple[str, str], np.ndarray],
    ref: Callable[[str], np.ndarray],
    ref_stats: Callable[[str], GaussianAccumulator],
    names: list[str],
    seed: int,
) -> tuple[dict[str, Value], dict[str, float]]:
    """KID and FD-infinity in each space of `names`, IS in each space with class
    probabilities. `gen[(space, output)]` holds the method's rows (memmaps), `ref` gives
    a space's reference rows, `ref_stats` its Gaussian. Returns the values and the
    spread (std over subsets or splits) of KID and IS."""
    values: dict[str, Value] = {}
    spread: dict[str, float] = {}
    for name in names:
        rows = gen[(name, "features")]
        kid = kernel_inception_distance(rows, ref(name), seed=seed)
        _store(values, spread, kid_key(name), kid)
        values[fd_inf_key(name)] = fd_infinity(rows, ref_stats(name), seed=seed)
        if (name, "probs") in gen:
            probs = gen[(name, "probs")]
            _store(values, spread, is_key(name), inception_score(probs, seed=seed))
    return values, spread


def _store(
    values: dict[str, Value],
    spread: dict[str, float],
    key: str,
    result: tuple[float, float] | Undefined,
) -> None:
    if is_defined(result):
        values[key], spread[key] = float(result[0]), float(result[1])
    else:
        values[key] = result
