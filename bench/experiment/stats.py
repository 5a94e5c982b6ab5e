"""Statistics over seeds, in one place: mean ± std of a value, paired comparisons of two
method-configs seed by seed, and pooling of per-seed (count, mean, std) summaries.

Every comparison of the page and its claims goes through `Paired`, so a paired test over
seeds (a sign test, a paired bootstrap) is one more method there.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable
from dataclasses import dataclass

from reports.tables import Cell, fmt_number


@dataclass(frozen=True)
class Stat:
    """Mean ± sample std (ddof = 1) of the values found; std None for a single value."""

    mean: float | None
    std: float | None
    n: int
    values: tuple[float, ...] = ()

    def cell(self, scale: float = 1.0) -> Cell:
        if self.mean is None:
            return Cell(None)
        return Cell(self.mean * scale, std=None if self.std is None else self.std * scale)

    def text(self, scale: float = 1.0) -> str:
        return self.cell(scale).text()


EMPTY = Stat(None, None, 0)


def stat(values: Iterable[float | None]) -> Stat:
    """Mean ± std of the finite values (None and NaN are skipped)."""
    found = tuple(float(v) for v in values if v is not None and math.isfinite(v))
    if not found:
        return EMPTY
    std = statistics.stdev(found) if len(found) > 1 else None
    return Stat(statistics.fmean(found), std, len(found), found)


@dataclass(frozen=True)
class Paired:
    """The values of a (the reference) and b (the challenger) on the seeds where both
    have one, in seed order."""

    a: tuple[float, ...]
    b: tuple[float, ...]

    @property
    def n(self) -> int:
        return len(self.a)

    def differences(self) -> Stat:
        """b - a per seed."""
        return stat(y - x for x, y in zip(self.a, self.b, strict=True))

    def ratios(self) -> Stat:
        """b / a per seed, over the seeds where a is not zero."""
        return stat(y / x for x, y in zip(self.a, self.b, strict=True) if x)

    def wins(self, higher_is_better: bool) -> tuple[int, int]:
        """Seeds where b is better than a, out of the paired seeds."""
        better = sum(
            (y > x) if higher_is_better else (y < x) for x, y in zip(self.a, self.b, strict=True)
        )
        return better, self.n


def paired(pairs: Iterable[tuple[float | None, float | None]]) -> Paired:
    """Keeps the seeds where both values are numbers."""
    kept = [(float(x), float(y)) for x, y in pairs if x is not None and y is not None]
    return Paired(tuple(x for x, _ in kept), tuple(y for _, y in kept))


def pooled(groups: Iterable[tuple[int, float, float | None]]) -> Stat:
    """Mean ± sample std of the union of groups given as (count, mean, sample std)."""
    parts = [(n, m, s or 0.0) for n, m, s in groups if n]
    total = sum(n for n, _, _ in parts)
    if not total:
        return EMPTY
    mean = sum(n * m for n, m, _ in parts) / total
    ss = sum((n - 1) * s**2 + n * (m - mean) ** 2 for n, m, s in parts)
    return Stat(mean, math.sqrt(ss / (total - 1)) if total > 1 else None, total)


def fmt(value: float | None, places: int | None | str = "auto") -> str:
    return "n/a" if value is None else fmt_number(value, places)


def pct(value: float | None, signed: bool = False) -> str:
    if value is None:
        return "n/a"
    return f"{100 * value:+.1f}%" if signed else f"{100 * value:.1f}%"
