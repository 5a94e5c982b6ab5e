"""SPELL's repulsion stays accurate for large, nearly equal samples (real latents have
norms in the hundreds while the shields' radius is a few units)."""

import pytest
import torch

import methods.spell as spell_module
from bench.shields import ExactShieldSet, shield_delta
from methods.base import BatchContext, Step
from methods.spell import Spell, SpellConfig, intra_batch_delta

RADIUS = 2.0
DIM = 4096
STEP = Step(index=0, num_steps=10, timestep=500, t=0.5, alpha=0.7, sigma=0.7)


def near_duplicates(batch: int, norm: float, dtype: torch.dtype, seed: int = 0) -> torch.Tensor:
    """`batch` samples of norm ~`norm` whose pairwise distances are all ~1.8 (< r)."""
    gen = torch.Generator().manual_seed(seed)
    centre = torch.randn(DIM, generator=gen, dtype=torch.float64)
    centre *= norm / centre.norm()
    spread = 1.8 / (2 * DIM) ** 0.5
    return (centre + spread * torch.randn(batch, DIM, generator=gen, dtype=torch.float64)).to(dtype)


def reference_delta(flat: torch.Tensor, radius: float, sequential: bool) -> torch.Tensor:
    """The paper's formula, one pair at a time, in float64."""
    x = flat.double()
    out = torch.zeros_like(x)
    for b in range(len(x)):
        for other in range(b if sequential else len(x)):
            if other == b:
                continue
            diff = x[b] - x[other]
            dist = diff.norm().item()
            if dist > 0:
                out[b] += max(radius / dist - 1.0, 0.0) * diff
    return out


def relative_error(got: torch.Tensor, want: torch.Tensor) -> float:
    return ((got.double() - want).abs().max() / want.abs().max()).item()


@pytest.mark.parametrize("sequential", [False, True])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("norm", [190.0, 1e3])
@pytest.mark.parametrize("batch", [8, 32, 64])
def test_intra_batch_delta_matches_the_formula(batch, norm, dtype, sequential):
    flat = near_duplicates(batch, norm, dtype)
    want = reference_delta(flat, RADIUS, sequential)
    assert want.abs().max() > 0.05  # every pair is within r: a large correction
    got = intra_batch_delta(flat, RADIUS, sequential)
    assert got.dtype == dtype
    assert relative_error(got, want) <= 1e-6


def test_intra_batch_delta_keeps_zero_distance_and_far_pairs_at_zero():
    x = near_duplicates(4, 190.0, torch.float64)
    flat = torch.cat([x[:1], x[:1], x[:1] + 100.0])
    delta = intra_batch_delta(flat, RADIUS, sequential=False)
    assert torch.count_nonzero(delta) == 0


@pytest.mark.parametrize(
    "dtype, compute",
    [
        (torch.float64, torch.float64),
        (torch.float32, torch.float32),
        (torch.float16, torch.float32),
        (torch.bfloat16, torch.float32),
    ],
)
def test_correct_computes_in_at_least_float32_and_returns_the_input_dtype(dtype, compute):
    x0 = near_duplicates(8, 190.0, torch.float64).to(dtype).view(8, 4, 32, 32)
    method = Spell(SpellConfig(radius=RADIUS, inter_batch=False))
    ctx = BatchContext("0", 0, list(range(8)), list(range(8)), torch.device("cpu"))
    delta = method.correct(STEP, x0, x0, ctx)
    assert delta.dtype == dtype and delta.shape == x0.shape
    want = reference_delta(x0.flatten(1), RADIUS, sequential=False)
    # The correction is rounded to the input dtype only at the end.
    tolerance = 1e-6 if compute == dtype else 2 * torch.finfo(dtype).eps
    assert relative_error(delta.flatten(1), want) <= tolerance


def test_shield_delta_keeps_float64():
    flat = near_duplicates(9, 190.0, torch.float64)
    queries, shields = flat[:4], flat[4:]
    delta = shield_delta(queries, ExactShieldSet(shields), RADIUS)
    assert delta.dtype == torch.float64
    want = torch.zeros_like(queries)
    for b in range(len(queries)):
        for z in shields.float().double():  # the set stores float32 shields
            diff = queries[b] - z
            want[b] += max(RADIUS / diff.norm().item() - 1.0, 0.0) * diff
    assert relative_error(delta, want) <= 1e-9


def test_exact_search_decides_the_radius_from_explicit_differences():
    """Shields at 1 +- 1e-4 r from a query of norm ~190: the expanded form
    |q|^2 + |z|^2 - 2 q.z is off by ~0.1 there; the answer must not be."""
    gen = torch.Generator().manual_seed(1)
    q = near_duplicates(1, 190.0, torch.float32)
    directions = torch.nn.functional.normalize(torch.randn(200, DIM, generator=gen), dim=1)
    scale = RADIUS * (1.0 + 1e-4 * torch.where(torch.arange(200) % 2 == 0, -1.0, 1.0))
    shields = (q.double() + scale[:, None].double() * directions.double()).float()
    truth = (q.double() - shields.double()).norm(dim=1) < RADIUS
    assert 0 < truth.sum() < 200
    hits = ExactShieldSet(shields).within(q, RADIUS)
    assert set(hits.shield.tolist()) == set(torch.nonzero(truth).flatten().tolist())


def test_exact_search_compares_float64_queries_in_float64():
    """A float64 query rounded to float32 moves by ~1e-5 at norm 190: shields that
    close to the radius must still be classified from the float64 query."""
    gen = torch.Generator().manual_seed(2)
    q = near_duplicates(1, 190.0, torch.float64)
    directions = torch.nn.functional.normalize(torch.randn(400, DIM, generator=gen), dim=1)
    shields = (q + RADIUS * directions.double()).float()  # rounding spreads them by ~1e-5
    truth = (q - shields.double()).norm(dim=1) < RADIUS
    assert 50 < truth.sum() < 350
    hits = ExactShieldSet(shields).within(q, RADIUS)
    assert set(hits.shield.tolist()) == set(torch.nonzero(truth).flatten().tolist())


def test_intra_batch_delta_is_the_same_in_small_chunks(monkeypatch):
    flat = near_duplicates(10, 190.0, torch.float64)
    for sequential in (False, True):
        whole = intra_batch_delta(flat, RADIUS, sequential)
        monkeypatch.setattr(spell_module, "DIFF_BYTES", 3 * 10 * DIM * 8)  # 3 rows a chunk
        torch.testing.assert_close(intra_batch_delta(flat, RADIUS, sequential), whole)
        monkeypatch.undo()
