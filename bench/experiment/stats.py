"""Statistics over seeds, in one place: mean ± std of a value, paired comparisons of two
method-configs seed by seed, paired tests over seeds, and pooling of per-seed (count,
mean, std) summaries.

Every comparison of the page and its claims goes through `Paired`. Its two paired tests,
both two-sided and both of "b - a is centred on 0" over the seeds:

- `sign_test`: the exact sign test. Seeds where b == a (ties) are dropped; under the null
  the number of seeds with b > a among the other n is Binomial(n, 1/2), and
  p = min(1, 2 P(X <= min(k, n - k))) (math.comb). Its direction is the majority sign.
  Exact at any number of seeds, free of any assumption on the differences' distribution
  and blind to their size (one seed with a huge difference counts as one seed).
- `bootstrap`: the paired bootstrap of the mean difference: the per-seed differences
  resampled with replacement (seeded), p = min(1, 2 min(#{m* <= 0} + 1, #{m* >= 0} + 1)
  / (B + 1)) over the B resampled means m*, and the percentile interval. Its direction
  is the sign of the mean difference. Approximate: with few seeds it is anti-conservative.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

import numpy as np

from reports.tables import Cell, fmt_number

TestName = Literal["sign", "bootstrap"]
TEST_NAMES = {"sign": "exact sign test", "bootstrap": "paired bootstrap"}
BOOTSTRAP_RESAMPLES = 10_000
BOOTSTRAP_LEVEL = 0.95


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

    def signs(self) -> tuple[int, int, int]:
        """Seeds with b > a, with b < a, and ties."""
        above = sum(y > x for x, y in zip(self.a, self.b, strict=True))
        below = sum(y < x for x, y in zip(self.a, self.b, strict=True))
        return above, below, self.n - above - below

    def sign_test(self) -> TestResult:
        above, below, ties = self.signs()
        side = (above > below) - (above < below)
        return TestResult("sign", sign_test_p(above, below), side, above + below, ties=ties)

    def bootstrap(self, resamples: int = BOOTSTRAP_RESAMPLES, seed: int = 0) -> TestResult:
        return bootstrap_test(
            tuple(y - x for x, y in zip(self.a, self.b, strict=True)), resamples, seed
        )

    def test(self, name: TestName) -> TestResult:
        return self.sign_test() if name == "sign" else self.bootstrap()


def against(threshold: float, values: Iterable[float | None]) -> Paired:
    """Per-seed values (b) paired with a constant threshold (a): a one-sample question
    ("is the value below t?") asked of the paired tests."""
    return paired((threshold, v) for v in values)


@dataclass(frozen=True)
class TestResult:
    """A two-sided paired test of b against a: its p-value and the side the seeds lean
    to (+1: b above a, -1: below, 0: neither)."""

    test: TestName
    p: float
    side: int
    n: int  # seeds the test used (the sign test drops ties)
    interval: tuple[float, float] | None = None  # the bootstrap's interval of the mean
    ties: int = 0  # seeds the sign test dropped

    def supports(self, higher: bool, alpha: float) -> bool:
        """b significantly above a (`higher`) or below it, at level alpha."""
        return self.side == (1 if higher else -1) and self.p < alpha

    def text(self) -> str:
        dropped = f", {self.ties} tied seed{'s' * (self.ties > 1)} dropped" if self.ties else ""
        return f"{TEST_NAMES[self.test]} p = {fmt_p(self.p)}{dropped}"


def sign_test_p(above: int, below: int) -> float:
    """Two-sided exact sign test p-value for `above` positive and `below` negative
    differences (ties already dropped); 1 with no untied seed."""
    n = above + below
    if n == 0:
        return 1.0
    low = min(above, below)
    tail = sum(math.comb(n, i) for i in range(low + 1)) / 2**n
    return min(1.0, 2 * tail)


def bootstrap_test(
    diffs: tuple[float, ...], resamples: int = BOOTSTRAP_RESAMPLES, seed: int = 0
) -> TestResult:
    """The paired bootstrap of the mean of `diffs` (see the module docstring)."""
    d = np.asarray(diffs, dtype=float)
    if len(d) == 0:
        return TestResult("bootstrap", 1.0, 0, 0)
    rng = np.random.default_rng(seed)
    means = d[rng.integers(0, len(d), size=(resamples, len(d)))].mean(axis=1)
    low = (int((means <= 0).sum()) + 1) / (resamples + 1)
    high = (int((means >= 0).sum()) + 1) / (resamples + 1)
    tail = (1 - BOOTSTRAP_LEVEL) / 2
    interval = (float(np.quantile(means, tail)), float(np.quantile(means, 1 - tail)))
    mean = float(d.mean())
    side = (mean > 0) - (mean < 0)
    return TestResult("bootstrap", min(1.0, 2 * min(low, high)), side, len(d), interval)


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


def fmt_p(p: float) -> str:
    """A p-value: three significant digits, scientific below 0.001."""
    return f"{p:.2e}" if p < 0.001 else f"{p:.3g}"


def pct(value: float | None, signed: bool = False) -> str:
    if value is None:
        return "n/a"
    return f"{100 * value:+.1f}%" if signed else f"{100 * value:.1f}%"
