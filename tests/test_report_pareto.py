"""Pareto front computation on hand-made points."""

import numpy as np
import pytest

from reports.pareto import dominates, pareto_mask


def test_dominated_points_are_excluded():
    pts = np.array([[1.0, 1.0], [2.0, 2.0], [3.0, 0.5], [0.5, 3.0], [1.5, 1.5]])
    mask = pareto_mask(pts, [True, True])
    assert mask.tolist() == [False, True, True, True, False]


def test_minimised_axis_flips_the_direction():
    # x = FD (lower is better), y = CLIP score (higher is better)
    pts = np.array([[10.0, 27.0], [12.0, 28.0], [11.0, 26.0], [9.0, 25.0]])
    mask = pareto_mask(pts, [False, True])
    assert mask.tolist() == [True, True, False, True]


def test_equal_points_do_not_dominate_each_other():
    pts = np.array([[1.0, 2.0], [1.0, 2.0], [0.5, 1.0]])
    assert pareto_mask(pts, [True, True]).tolist() == [True, True, False]


def test_tie_on_one_axis_is_dominated_by_better_other_axis():
    pts = np.array([[1.0, 2.0], [1.0, 3.0]])
    assert pareto_mask(pts, [True, True]).tolist() == [False, True]


def test_nan_points_are_never_on_the_front_and_dominate_nothing():
    pts = np.array([[np.nan, 9.0], [1.0, 1.0]])
    assert pareto_mask(pts, [True, True]).tolist() == [False, True]


def test_single_and_empty():
    assert pareto_mask(np.array([[3.0, 4.0]]), [True, False]).tolist() == [True]
    assert pareto_mask(np.zeros((0, 2)), [True, True]).tolist() == []


def test_shape_must_match_directions():
    with pytest.raises(ValueError):
        pareto_mask(np.zeros((3, 2)), [True])


def test_dominates_follows_the_rule_of_the_front():
    assert dominates((2.0, 2.0), (1.0, 2.0), [True, True])
    assert not dominates((1.0, 2.0), (1.0, 2.0), [True, True])  # equal points
    assert not dominates((2.0, 1.0), (1.0, 2.0), [True, True])  # a trade-off
    assert dominates((9.0, 28.0), (10.0, 27.0), [False, True])  # lower FD is better
    assert not dominates((np.nan, 9.0), (1.0, 1.0), [True, True])
    assert not dominates((1.0, 1.0), (np.nan, 0.0), [True, True])
    pts = np.array([[1.0, 1.0], [2.0, 2.0], [3.0, 0.5], [0.5, 3.0], [1.5, 1.5]])
    front = [not any(dominates(a, b, [True, True]) for a in pts) for b in pts]
    assert front == pareto_mask(pts, [True, True]).tolist()
    with pytest.raises(ValueError):
        dominates((1.0,), (1.0, 2.0), [True, True])
