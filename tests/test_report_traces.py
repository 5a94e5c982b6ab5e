"""Streamed trace statistics against direct computation on all trajectories."""

import numpy as np

from reports.traces import TraceStats, trace_stats


def write(path, active, ratio, t):
    np.savez(path, trace_active=active, trace_ratio=ratio, trace_t=t)
    return path


def test_counts_finish_and_never_by_hand(tmp_path):
    t = np.array([1.0, 0.75, 0.5, 0.25], np.float32)
    active = np.array(
        [
            [1, 1, 0, 0],  # ends for good at step 2 (t = 0.5)
            [1, 0, 1, 0],  # bounces back: ends for good at step 3 (t = 0.25)
            [0, 0, 0, 0],  # never corrected
            [1, 1, 1, 1],  # corrected to the end
        ],
        bool,
    )
    ratio = np.where(active, 0.1, 0.0)
    stats = trace_stats([write(tmp_path / "a.npz", active, ratio, t)])
    assert stats.trajectories == 4 and stats.never == 1
    assert stats.active.tolist() == [3, 2, 2, 1]
    assert stats.finish.tolist() == [0, 0, 1, 1, 1]
    assert stats.finish_t().tolist() == [1.0, 0.75, 0.5, 0.25, 0.0]
    np.testing.assert_allclose(stats.active_share(), [0.75, 0.5, 0.5, 0.25])


def test_streaming_over_files_equals_one_pass(tmp_path):
    rng = np.random.default_rng(0)
    t = np.linspace(1, 0, 12, endpoint=False)
    files, all_active, all_ratio = [], [], []
    for i in range(5):
        active = rng.random((20, 12)) < 0.4
        ratio = np.where(active, rng.lognormal(np.log(0.05), 0.8, (20, 12)), 0.0)
        files.append(write(tmp_path / f"{i}.npz", active, ratio, t))
        all_active.append(active)
        all_ratio.append(ratio)
    stats = trace_stats(files)
    active, ratio = np.concatenate(all_active), np.concatenate(all_ratio)
    assert stats.trajectories == 100
    assert stats.active.tolist() == active.sum(0).tolist()
    np.testing.assert_allclose(stats.ratio_max, np.where(active, ratio, 0).max(0))
    for q in (0.05, 0.5, 0.95):
        # the order statistic ceil(q n) lies in the bin the histogram reads (40 per decade)
        exact = [np.quantile(ratio[active[:, s], s], q, method="inverted_cdf") for s in range(12)]
        np.testing.assert_allclose(stats.ratio_quantile(q), exact, rtol=0.06)
        pooled = np.quantile(ratio[active], q, method="inverted_cdf")
        np.testing.assert_allclose(stats.pooled_ratio_quantile(q), pooled, rtol=0.06)


def test_no_correction_at_all(tmp_path):
    t = np.linspace(1, 0, 5, endpoint=False)
    z = np.zeros((3, 5))
    stats = trace_stats([write(tmp_path / "z.npz", z.astype(bool), z, t)])
    assert isinstance(stats, TraceStats) and not stats.corrects and stats.never == 3
    assert np.isnan(stats.ratio_quantile(0.5)).all()
    assert np.isnan(stats.pooled_ratio_quantile(0.5))
    assert trace_stats([]) is None
