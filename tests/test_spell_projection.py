"""SPELL's `project` option: the nearest point outside overlapping shields, in a box."""

import pytest
import torch
from pydantic import ValidationError

from bench.data.digits import load_split
from bench.models.digits import load_digits
from bench.sampler import SamplingSettings, generate_prompt
from bench.shields import ExactShieldSet, shield_delta
from bench.shields.project import Hits, project_out
from methods.base import BatchContext, PromptContext, Step
from methods.none import NoMethod
from methods.spell import Spell, SpellConfig, intra_batch_delta

STEP = Step(index=0, num_steps=10, timestep=500, t=0.5, alpha=0.7, sigma=0.7)
# Five unit balls around the origin of the plane: every point near it is in several.
CENTRES = torch.tensor([[0.6, 0.0], [-0.6, 0.0], [0.0, 0.6], [0.0, -0.6], [0.5, 0.5]])


def ctx(n: int) -> BatchContext:
    return BatchContext("0", 0, list(range(n)), list(range(n)), torch.device("cpu"))


def finder(centres: torch.Tensor, calls: list | None = None):
    centres = centres.double()

    def find(points, which, radius):
        if calls is not None:
            calls.append(len(points))
        rows, cols = torch.nonzero(torch.cdist(points, centres) < radius, as_tuple=True)
        return Hits(rows, cols, centres[cols])

    return find


def test_off_is_bit_identical_to_the_paper_formula():
    gen = torch.Generator().manual_seed(0)
    x0 = 0.4 * torch.randn(6, 8, generator=gen)
    static = ExactShieldSet(0.4 * torch.randn(20, 8, generator=gen))
    earlier = 0.4 * torch.randn(4, 8, generator=gen)
    for fields in ({}, {"sequential": True}, {"overcompensation": 1.6}):
        outs = []
        for extra in ({}, {"project": False}):
            config = SpellConfig(radius=1.5, **fields, **extra)
            method = Spell(config, static=static)
            method.begin_prompt(PromptContext("0", torch.device("cpu")))
            method.end_batch(earlier, ctx(4))
            outs.append(method.correct(STEP, x0, x0, ctx(6)))
        flat, lam = x0.float(), fields.get("overcompensation", 1.0)
        want = intra_batch_delta(flat, 1.5, fields.get("sequential", False))
        want += shield_delta(flat, ExactShieldSet(earlier), 1.5)
        want += shield_delta(flat, static, 1.5)
        assert torch.count_nonzero(want) > 0
        assert torch.equal(outs[0], lam * want) and torch.equal(outs[1], lam * want)


@pytest.mark.parametrize("box", [None, 1.5, 1.0])
def test_projection_leaves_every_overlapping_ball_and_stays_in_the_box(box):
    targets = torch.tensor([[0.0, 0.0], [0.01, 0.02], [0.3, 0.1], [-0.2, 0.3], [0.0, 1.5]])
    result = project_out(targets, finder(CENTRES), 1.0, box)
    assert result.feasible.all()
    assert torch.cdist(result.points, CENTRES.double()).min() >= 1.0
    if box is not None:
        assert result.points.abs().max() <= box


def test_shields_a_move_lands_in_are_searched_for_again():
    """y is only in the first ball; leaving it radially lands in the second, which the
    first search around y does not return."""
    centres = torch.tensor([[0.0, 0.0], [1.9, 0.0]])
    calls = []
    result = project_out(torch.tensor([[0.1, 0.0]]), finder(centres, calls), 1.0)
    assert result.feasible.all() and len(calls) >= 3
    assert torch.cdist(result.points, centres.double()).min() >= 1.0


def test_projection_is_near_the_nearest_feasible_point():
    """Against a 0.002 grid of the plane: within one grid step of the best point."""
    target = torch.tensor([[0.1, -0.05]])
    got = project_out(target, finder(CENTRES), 1.0).points[0]
    axis = torch.arange(-2.0, 2.0, 0.002, dtype=torch.float64)
    grid = torch.cartesian_prod(axis, axis)
    outside = torch.cdist(grid, CENTRES.double()).min(1).values >= 1.0
    best = (grid[outside] - target.double()).norm(dim=1).min()
    assert (got - target[0].double()).norm() <= best + 0.003


def test_points_outside_every_ball_are_kept_exactly():
    targets = torch.tensor([[3.0, 3.0], [0.0, -1.7], [-1.9, 0.2]])
    result = project_out(targets, finder(CENTRES), 1.0, box=None)
    assert result.feasible.all() and torch.equal(result.points, targets.double())
    config = SpellConfig(radius=1.0, intra_batch=False, project=True, clip_box=1.0)
    method = Spell(config, static=ExactShieldSet(CENTRES))
    far = torch.tensor([[3.0, 3.0], [0.0, 0.0], [-1.9, 0.2]])  # the first is out of the box
    delta = method.correct(STEP, far, far, ctx(3))
    assert torch.count_nonzero(delta[[0, 2]]) == 0 and torch.count_nonzero(delta[1]) > 0


def test_small_dimension_cluster_with_a_box():
    gen = torch.Generator().manual_seed(1)
    centres = 0.5 * torch.randn(12, 6, generator=gen)
    targets = 0.3 * torch.randn(10, 6, generator=gen)
    result = project_out(targets, finder(centres), 1.0, box=1.2)
    assert result.feasible.all()
    assert torch.cdist(result.points, centres.double()).min() >= 1.0
    assert result.points.abs().max() <= 1.2


def test_intra_batch_shields_are_projected_out_of_too():
    x0 = torch.tensor([[0.0, 0.0], [0.6, 0.0], [-0.6, 0.0]])
    method = Spell(SpellConfig(radius=1.0, project=True, sequential=True))
    moved = x0 + method.correct(STEP, x0, x0, ctx(3))
    # sample b only repels from b' < b: sample 2 leaves both balls around x0_hat 0 and 1
    assert torch.cdist(moved[2:], x0[:2]).min() >= 1.0
    assert torch.equal(moved[0], x0[0])


def test_the_method_id_names_the_option():
    assert Spell(SpellConfig()).id == "spell-r2-l1"
    assert Spell(SpellConfig(project=True)).id == "spell-r2-l1-proj"
    assert Spell(SpellConfig(project=True, clip_box=1.0)).id == "spell-r2-l1-proj-box1"
    with pytest.raises(ValidationError, match="clip_box"):
        SpellConfig(clip_box=1.0)


def test_digits_outputs_leave_overlapping_shields_only_with_the_option():
    torch.set_num_threads(1)
    model = load_digits()
    prompt, settings, radius = model.prompts()[0], SamplingSettings(guidance=2.0, steps=10), 2.0

    def outputs(method):
        latents = generate_prompt(model, method, prompt, 8, 8, 0, settings)["latents"]
        latents = torch.from_numpy(latents).flatten(1)
        return latents.double(), model.encode(model.decode(latents)).double()

    plain, _ = outputs(NoMethod())
    train = torch.from_numpy(load_split("train").images).flatten(1).double()
    shields = train[torch.cdist(plain, train).min(0).values.argsort()[:6]]
    assert (torch.pdist(shields) < 2 * radius).sum() >= 5  # the shields overlap
    dists = {}
    for project in (False, True):
        config = SpellConfig(
            radius=radius,
            intra_batch=False,
            inter_batch=False,
            project=project,
            clip_box=1.0 if project else None,
        )
        latents, decoded = outputs(Spell(config, static=ExactShieldSet(shields.float())))
        dists[project] = [torch.cdist(v, shields).min(1).values for v in (latents, decoded)]
    assert min(int((d < radius).sum()) for d in dists[False]) >= 1
    assert all(d.min() >= radius for d in dists[True])
