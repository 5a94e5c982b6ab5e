"""Bootstrap intervals are computed at the level asked for: recomputed here with the
same resampling recipe, the interval must be np.quantile's at (1 - level) / 2 and
1 - (1 - level) / 2, exactly."""

import numpy as np
import pytest

import bench.experiment.stats as stats
from bench.experiment.stats import bootstrap_test, paired
from metrics.bootstrap import bootstrap_mean_ci

LEVELS = (0.8, 0.95, 0.99)


def resampled_means(values, resamples: int, seed: int) -> np.ndarray:
    v = np.asarray(values, dtype=np.float64)
    idx = np.random.default_rng(seed).integers(0, len(v), size=(resamples, len(v)))
    return v[idx].mean(axis=1)


def percentile_interval(means: np.ndarray, level: float) -> tuple[float, float]:
    tail = (1.0 - level) / 2.0
    lo, hi = np.quantile(means, [tail, 1.0 - tail])
    return float(lo), float(hi)


def skewed(n: int = 23, seed: int = 5) -> np.ndarray:
    """Skewed values: their interval is not symmetric about the mean."""
    return np.random.default_rng(seed).exponential(size=n)


@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("resamples, seed", [(1000, 0), (777, 3)])
def test_mean_ci_is_the_percentile_interval_at_the_level(level, resamples, seed):
    values = skewed()
    got = bootstrap_mean_ci(values, resamples=resamples, level=level, seed=seed)
    assert got == percentile_interval(resampled_means(values, resamples, seed), level)


def test_mean_ci_widens_with_the_level():
    values = skewed()
    (lo80, hi80), (lo95, hi95), (lo99, hi99) = (
        bootstrap_mean_ci(values, level=level) for level in LEVELS
    )
    assert lo99 < lo95 < lo80 < values.mean() < hi80 < hi95 < hi99


def expected_test(diffs, resamples: int, seed: int, level: float):
    """p, side and interval of the paired bootstrap, by the module docstring's recipe."""
    means = resampled_means(diffs, resamples, seed)
    low = (int((means <= 0).sum()) + 1) / (resamples + 1)
    high = (int((means >= 0).sum()) + 1) / (resamples + 1)
    mean = float(np.mean(diffs))
    side = (mean > 0) - (mean < 0)
    return min(1.0, 2 * min(low, high)), side, percentile_interval(means, level)


# A small mean difference: p is neither 1 nor its floor 2 / (B + 1).
DIFFS = tuple(float(x) for x in skewed(9, seed=7) - 0.8)


def test_bootstrap_test_interval_and_p_at_its_level():
    assert stats.BOOTSTRAP_LEVEL == 0.95
    result = bootstrap_test(DIFFS, resamples=4999, seed=2)
    p, side, interval = expected_test(DIFFS, 4999, 2, 0.95)
    assert 2 / 5000 < p < 1
    assert (result.p, result.side, result.n, result.interval) == (p, side, len(DIFFS), interval)


@pytest.mark.parametrize("level", (0.8, 0.99))
def test_bootstrap_test_follows_the_level_constant(level, monkeypatch):
    """bootstrap_test takes no level: it reads BOOTSTRAP_LEVEL; the interval follows it
    and the p-value (a count of resampled means on each side of 0) does not."""
    monkeypatch.setattr(stats, "BOOTSTRAP_LEVEL", level)
    result = bootstrap_test(DIFFS, resamples=4999, seed=2)
    p, side, interval = expected_test(DIFFS, 4999, 2, level)
    assert (result.p, result.side, result.interval) == (p, side, interval)
    assert result.interval != expected_test(DIFFS, 4999, 2, 0.95)[2]


def test_paired_bootstrap_is_the_test_of_the_differences():
    a = tuple(float(x) for x in skewed(9, seed=8))
    b = tuple(x + d for x, d in zip(a, DIFFS, strict=True))
    pair = paired(zip(a, b, strict=True))
    diffs = tuple(y - x for x, y in zip(a, b, strict=True))
    assert pair.bootstrap(resamples=999, seed=4) == bootstrap_test(diffs, 999, 4)
    p, side, interval = expected_test(diffs, stats.BOOTSTRAP_RESAMPLES, 0, 0.95)
    result = pair.test("bootstrap")
    assert (result.p, result.side, result.interval) == (p, side, interval)


def test_bootstrap_test_counts_resampled_means_at_zero_on_both_sides():
    diffs = (-2.0, -1.0, 0.0, 1.0, 2.0, 1.0, -1.0)  # many resampled means are exactly 0
    means = resampled_means(diffs, 999, 1)
    assert (means == 0).sum() > 20
    result = bootstrap_test(diffs, resamples=999, seed=1)
    assert result.p == expected_test(diffs, 999, 1, 0.95)[0]
