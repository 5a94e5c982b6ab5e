"""Bootstrap intervals over prompts, means over prompts, CLIP/class scores, protection."""

import numpy as np
import pytest

from bench.errors import BenchError
from metrics.aggregate import mean_over_prompts, prompt_ci
from metrics.bootstrap import bootstrap_mean_ci
from metrics.protection import nearest_distances, protection_rate
from metrics.quality import class_scores, clip_scores
from metrics.values import Undefined


def test_bootstrap_is_deterministic_and_brackets_the_mean():
    v = np.random.default_rng(0).uniform(0, 1, 10)
    lo, hi = bootstrap_mean_ci(v)
    assert (lo, hi) == bootstrap_mean_ci(v)
    assert lo < v.mean() < hi
    assert bootstrap_mean_ci(v, seed=1) != (lo, hi)


def test_bootstrap_interval_narrows_with_more_prompts():
    rng = np.random.default_rng(0)
    lo1, hi1 = bootstrap_mean_ci(rng.normal(size=10))
    lo2, hi2 = bootstrap_mean_ci(rng.normal(size=1000))
    assert hi2 - lo2 < (hi1 - lo1) / 3


def test_bootstrap_of_constant_values_is_a_point():
    assert bootstrap_mean_ci(np.full(5, 0.7)) == pytest.approx((0.7, 0.7))


def test_bootstrap_needs_two_values():
    assert isinstance(bootstrap_mean_ci(np.array([0.5])), Undefined)


def test_mean_over_prompts_skips_undefined_and_says_so():
    mean, note = mean_over_prompts({"0": 0.2, "1": Undefined("few"), "2": 0.4})
    assert mean == pytest.approx(0.3)
    assert "2 of 3" in note
    mean, note = mean_over_prompts({"0": Undefined("few"), "1": Undefined("few")})
    assert isinstance(mean, Undefined) and "few" in mean.reason
    assert isinstance(prompt_ci({"0": Undefined("few")}, 100, 0.95, 0), Undefined)


def test_clip_score_is_100_times_clipped_cosine():
    img = np.array([[1.0, 0.0], [1.0, 1.0], [-1.0, 0.0]])
    txt = np.array([[2.0, 0.0], [1.0, 0.0], [1.0, 0.0]])
    assert clip_scores(img, txt) == pytest.approx([100.0, 100 / np.sqrt(2), 0.0])


def test_class_score_picks_the_prompt_class_probability():
    probs = np.array([[0.9, 0.1], [0.3, 0.7]])
    assert class_scores(probs, np.array([0, 0])) == pytest.approx([90.0, 30.0])


def test_protection_rate_matches_brute_force_and_is_strict():
    rng = np.random.default_rng(0)
    gen, prot = rng.standard_normal((50, 3, 4, 4)), rng.standard_normal((70, 3, 4, 4))
    brute = np.sqrt(((gen.reshape(50, 1, -1) - prot.reshape(1, 70, -1)) ** 2).sum(-1)).min(1)
    assert nearest_distances(gen, prot, chunk=16) == pytest.approx(brute, rel=1e-12)
    r = float(np.median(brute))
    assert protection_rate(gen, prot, r, chunk=7) == pytest.approx((brute < r).mean())
    # an image at exactly distance r is not "closer than r"
    assert protection_rate(np.ones((1, 2)), np.array([[1.0, 3.0]]), 2.0) == 0.0
    assert protection_rate(np.ones((1, 2)), np.array([[1.0, 3.0]]), 2.0001) == 1.0


@pytest.mark.parametrize("r", [0.0, -1.0])
def test_protection_rate_rejects_non_positive_radius(r):
    with pytest.raises(BenchError, match="radius"):
        protection_rate(np.zeros((2, 3)), np.zeros((2, 3)), r)


def test_protection_rate_rejects_shape_mismatch_and_empty_sets():
    with pytest.raises(BenchError):
        protection_rate(np.zeros((2, 3)), np.zeros((2, 4)), 1.0)
    with pytest.raises(BenchError):
        protection_rate(np.zeros((2, 3)), np.zeros((0, 3)), 1.0)
