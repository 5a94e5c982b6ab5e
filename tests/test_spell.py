"""SPELL against its formula (paper Eq. 5/8, Appendix B)."""

import torch

from bench.shields import ExactShieldSet, shield_delta
from methods.base import BatchContext, PromptContext, Step
from methods.spell import Spell, SpellConfig, intra_batch_delta

STEP = Step(index=0, num_steps=10, timestep=500, t=0.5, alpha=0.7, sigma=0.7)


def ctx(n: int) -> BatchContext:
    return BatchContext("0", 0, list(range(n)), list(range(n)), torch.device("cpu"))


def spell(**kw) -> Spell:
    return Spell(SpellConfig(**kw))


def test_zero_outside_every_shield():
    x0 = torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    delta = spell(radius=3.0).correct(STEP, x0, x0, ctx(3))
    assert torch.count_nonzero(delta) == 0


def test_formula_by_hand_for_two_samples():
    x0 = torch.tensor([[0.0, 0.0], [1.0, 0.0]])
    delta = spell(radius=3.0, overcompensation=1.0).correct(STEP, x0, x0, ctx(2))
    # relu(3 / 1 - 1) * (x_b - x_b') = 2 * (-1, 0) for b = 0 and 2 * (1, 0) for b = 1
    torch.testing.assert_close(delta, torch.tensor([[-2.0, 0.0], [2.0, 0.0]]))


def test_disjoint_shields_land_exactly_on_the_radius():
    torch.manual_seed(0)
    r = 1.0
    centres = torch.tensor([[0.0, 0.0, 0.0], [5.0, 0.0, 0.0], [0.0, 5.0, 0.0]])
    shields = ExactShieldSet(centres)
    inside = centres + 0.3 * torch.nn.functional.normalize(torch.randn(3, 3), dim=1)
    method = Spell(SpellConfig(radius=r, intra_batch=False), static=shields)
    method.begin_prompt(PromptContext("0", torch.device("cpu")))
    moved = inside + method.correct(STEP, inside, inside, ctx(3))
    dist = torch.cdist(moved, centres)
    torch.testing.assert_close(dist.diagonal(), torch.full((3,), r))
    assert (dist >= r - 1e-6).all()


def test_sample_never_repels_from_itself():
    x0 = torch.randn(1, 4)
    delta = spell(radius=100.0).correct(STEP, x0, x0, ctx(1))
    assert torch.count_nonzero(delta) == 0
    assert torch.count_nonzero(intra_batch_delta(torch.cat([x0, x0 + 1]), 0.5, False)) == 0


def test_overcompensation_scales_linearly():
    x0 = torch.randn(4, 6) * 0.1
    d1 = spell(radius=2.0, overcompensation=1.0).correct(STEP, x0, x0, ctx(4))
    d3 = spell(radius=2.0, overcompensation=3.0).correct(STEP, x0, x0, ctx(4))
    assert torch.count_nonzero(d1) > 0
    torch.testing.assert_close(d3, 3.0 * d1)


def test_sequential_repels_only_from_earlier_samples():
    x0 = torch.tensor([[0.0], [1.0], [2.0]])
    delta = spell(radius=5.0, sequential=True).correct(STEP, x0, x0, ctx(3))
    assert delta[0].item() == 0.0
    # sample 1 only from sample 0: relu(5 / 1 - 1) * 1 = 4
    assert delta[1].item() == 4.0


def test_inter_batch_shields_are_earlier_final_outputs():
    method = spell(radius=1.0, intra_batch=False)
    method.begin_prompt(PromptContext("0", torch.device("cpu")))
    first_final = torch.tensor([[0.0, 0.0]])
    query = torch.tensor([[0.5, 0.0]])
    assert torch.count_nonzero(method.correct(STEP, query, query, ctx(1))) == 0
    method.end_batch(first_final, ctx(1))
    delta = method.correct(STEP, query, query, ctx(1))
    torch.testing.assert_close(delta, torch.tensor([[0.5, 0.0]]))
    method.begin_prompt(PromptContext("1", torch.device("cpu")))  # a new prompt forgets them
    assert torch.count_nonzero(method.correct(STEP, query, query, ctx(1))) == 0


def test_shield_delta_matches_brute_force_sum():
    torch.manual_seed(1)
    z = torch.randn(50, 5)
    x = torch.randn(7, 5)
    r = 2.0
    expected = torch.zeros_like(x)
    for b in range(7):
        for k in range(50):
            d = (x[b] - z[k]).norm()
            expected[b] += torch.relu(r / d - 1) * (x[b] - z[k])
    torch.testing.assert_close(shield_delta(x, ExactShieldSet(z, chunk=7), r), expected)


def test_ids_are_stable_and_readable():
    assert spell(radius=2.0, overcompensation=1.6).id == "spell-r2-l1.6"
    assert spell(radius=0.5, sequential=True).id == "spell-r0.5-l1-seq"
