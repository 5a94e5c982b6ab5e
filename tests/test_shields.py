"""Every shield backend against brute force, on data where the answer is known."""

import pytest
import torch

from bench.errors import BenchError
from bench.shields import ExactShieldSet, ProjectedShieldSet, make_shield_set
from bench.shields.ivf import FaissIVFShieldSet, gpu_count

RADIUS = 1.0


def planted(
    queries: int = 6, per_query: int = 5, background: int = 3000, dim: int = 24, seed: int = 0
):
    """Queries far apart, `per_query` shields planted inside each query's ball (at
    0.2r..0.8r) and background shields kept beyond 1.3r of every query: the in-radius
    set is known by construction, with no shield near the boundary."""
    gen = torch.Generator().manual_seed(seed)
    q = 20.0 * torch.randn(queries, dim, generator=gen)
    raw = torch.randn(queries, per_query, dim, generator=gen)
    direction = torch.nn.functional.normalize(raw, dim=2)
    length = RADIUS * (0.2 + 0.6 * torch.rand(queries, per_query, 1, generator=gen))
    inside = (q[:, None] + length * direction).reshape(-1, dim)
    around = q.repeat_interleave(background // queries, 0)
    far = around + 1.5 * torch.randn(len(around), dim, generator=gen)
    far = far[torch.cdist(far, q).min(1).values > 1.3 * RADIUS]
    shields = torch.cat([far, inside])
    perm = torch.randperm(len(shields), generator=gen)
    shields = shields[perm]
    rank_of = torch.argsort(perm)
    owners = torch.arange(queries).repeat_interleave(per_query)
    expected = {(int(o), int(rank_of[len(far) + i])) for i, o in enumerate(owners)}
    return q, shields, expected


def brute_force(q: torch.Tensor, shields: torch.Tensor, r: float) -> set[tuple[int, int]]:
    dist = torch.cdist(q.double(), shields.double())
    return {(int(a), int(b)) for a, b in zip(*torch.nonzero(dist < r, as_tuple=True), strict=True)}


def check_answer(found, q, shields, expected) -> None:
    assert found.pairs() == expected
    true = (q[found.query].double() - shields[found.shield].double()).norm(dim=1)
    torch.testing.assert_close(found.distance.double(), true, atol=1e-4, rtol=1e-5)


def test_planted_answer_is_the_brute_force_answer():
    q, shields, expected = planted()
    assert len(expected) == 30
    assert brute_force(q, shields, RADIUS) == expected


@pytest.mark.parametrize("chunk", [None, 97])
def test_exact_is_identical_to_brute_force(chunk):
    q, shields, expected = planted()
    check_answer(ExactShieldSet(shields, chunk=chunk).within(q, RADIUS), q, shields, expected)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_low_precision_storage_of_stored_vectors_is_exact_for_them(dtype):
    """A set whose vectors are already half precision (a float16 store) has no finer
    originals: its answer is the brute-force answer for those vectors."""
    q, shields, _ = near_boundary()
    stored = shields.to(dtype)
    found = ExactShieldSet(stored, dtype=dtype, chunk=500).within(q, RADIUS)
    assert found.pairs() == brute_force(q, stored.float(), RADIUS)


def near_boundary(queries: int = 4, per_query: int = 150, dim: int = 64, seed: int = 3):
    """Shields at 0.999r .. 1.001r from each query, among far ones: rounding to half
    precision moves a row by ~1e-2 here, so many cross the boundary."""
    gen = torch.Generator().manual_seed(seed)
    q = 3.0 * torch.randn(queries, dim, generator=gen)
    raw = torch.randn(queries, per_query, dim, generator=gen)
    length = RADIUS * (0.999 + 0.002 * torch.rand(queries, per_query, 1, generator=gen))
    ring = (q[:, None] + length * torch.nn.functional.normalize(raw, dim=2)).reshape(-1, dim)
    far = 3.0 * torch.randn(1000, dim, generator=gen)
    shields = torch.cat([far[torch.cdist(far, q).min(1).values > 2 * RADIUS], ring])
    return q, shields, brute_force(q, shields, RADIUS)


@pytest.mark.parametrize("backend", ["exact", "projected", "faiss-ivf"])
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_storage_is_exact_for_the_vectors_given(dtype, backend):
    """float32 shields stored in half precision: the search widens r by the largest
    rounding and rechecks against the kept originals, so it answers for them."""
    q, shields, expected = near_boundary()
    assert brute_force(q, shields.to(dtype).float(), RADIUS) != expected  # rounding matters
    found = make_shield_set(shields, backend, dtype=dtype, nprobe=10**6).within(q, RADIUS)
    check_answer(found, q, shields, expected)
    store = ExactShieldSet(shields, dtype=dtype, chunk=100)
    assert 0 < store.rounding < 0.1
    rows = torch.tensor([0, 7, len(shields) - 1])
    assert torch.equal(store.vectors(rows), shields[rows])  # the originals, not copies
    store.add(shields[:3] + 5.0)
    assert torch.equal(store.vectors(torch.tensor([len(shields)]))[0], shields[0] + 5.0)
    assert store.within(q, RADIUS).pairs() == expected


def test_exact_survives_vectors_far_from_the_origin():
    # |q|^2 + |z|^2 - 2 q.z cancels catastrophically here; a fixed slack would miss hits.
    q, shields, expected = planted(seed=2)
    offset = torch.full((q.shape[1],), 3000.0)
    for backend in ("exact", "projected", "faiss-ivf"):
        found = make_shield_set(shields + offset, backend, nprobe=10**6).within(q + offset, RADIUS)
        assert found.pairs() == expected, backend


def test_projected_is_identical_to_brute_force():
    q, shields, expected = planted(seed=3)
    found = ProjectedShieldSet(shields, rank=4).within(q, RADIUS)
    check_answer(found, q, shields, expected)


def test_projected_bound_never_exceeds_the_distance():
    torch.manual_seed(4)
    shields, q = torch.randn(500, 32), torch.randn(7, 32)
    ps = ProjectedShieldSet(shields, rank=5)
    rows, cols = ps.candidates(q, 6.0)
    assert brute_force(q, shields, 6.0) <= set(zip(rows.tolist(), cols.tolist(), strict=True))


def test_ivf_with_every_cell_probed_is_identical_to_brute_force():
    q, shields, expected = planted(seed=5)
    ivf = FaissIVFShieldSet(shields, nlist=16)
    ivf.nprobe = ivf.nlist
    check_answer(ivf.within(q, RADIUS), q, shields, expected)


def test_ivf_with_one_probe_finds_a_subset():
    q, shields, expected = planted(seed=6)
    ivf = FaissIVFShieldSet(shields, nlist=16, nprobe=1)
    assert ivf.within(q, RADIUS).pairs() <= expected


@pytest.mark.skipif(gpu_count() == 0, reason="needs faiss-gpu and a CUDA device")
def test_gpu_ivf_with_every_cell_probed_is_identical_to_brute_force():
    q, shields, expected = planted(seed=7)
    ivf = make_shield_set(shields, "faiss-ivf", device="cuda", nprobe=10**6, nlist=16)
    assert ivf.gpu and ivf.within(q, RADIUS).pairs() == expected


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_exact_on_cuda_is_identical_to_brute_force():
    q, shields, expected = planted(seed=8)
    for dtype in (torch.float32, torch.float16):
        found = ExactShieldSet(shields, dtype=dtype, device="cuda").within(q.cuda(), RADIUS)
        assert found.pairs() == expected


def test_auto_picks_exact_for_small_sets_and_names_are_checked():
    _, shields, _ = planted()
    assert make_shield_set(shields).backend == "exact"
    with pytest.raises(BenchError, match="unknown shield backend"):
        make_shield_set(shields, "annoy")
    with pytest.raises(BenchError, match="radius must be positive"):
        make_shield_set(shields).within(shields[:1], 0.0)


def test_empty_and_growing_sets():
    exact = ExactShieldSet(dim=3)
    assert len(exact.within(torch.zeros(2, 3), 1.0)) == 0
    exact.add(torch.tensor([[0.5, 0.0, 0.0]]))
    exact.add(torch.tensor([[5.0, 0.0, 0.0]]))
    found = exact.within(torch.zeros(2, 3), 1.0)
    assert found.pairs() == {(0, 0), (1, 0)}
    torch.testing.assert_close(found.distance, torch.tensor([0.5, 0.5]))


def test_projected_scans_when_its_bound_is_loose(monkeypatch):
    torch.manual_seed(9)
    shields, q = torch.randn(2000, 32), torch.randn(4, 32)
    ps = ProjectedShieldSet(shields, rank=2)
    scans = []
    scan = ps.store.within
    monkeypatch.setattr(ps.store, "within", lambda *a: scans.append(1) or scan(*a))
    assert ps.within(q, 7.0).pairs() == brute_force(q, shields, 7.0)
    assert scans == [1]
    near = shields[:4] + 0.01
    assert ps.within(near, 0.2).pairs() == {(i, i) for i in range(4)}
    assert scans == [1]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_a_set_streamed_from_a_stored_memory_map_gives_the_resident_answer(tmp_path, dtype):
    """A set that does not fit on the device stays in the memory map and is moved a
    chunk at a time; on the CPU the same path runs, and answers as the resident set."""
    from bench.shields.store import load_vectors, save_shields

    q, shields, _ = planted(seed=9)
    save_shields(tmp_path / "set", shields, dtype=dtype)
    mapped = load_vectors(tmp_path / "set")
    streamed = ExactShieldSet(mapped, dtype=dtype, chunk=300, resident=False)
    resident = ExactShieldSet(shields.to(dtype), dtype=dtype, chunk=300)  # the stored values
    assert not streamed.resident and streamed.describe().endswith("-streamed")
    assert streamed.data.data_ptr() == mapped.data_ptr()  # not copied
    assert streamed.within(q, RADIUS).pairs() == resident.within(q, RADIUS).pairs()
    rows = torch.tensor([0, 5, 17])
    assert torch.equal(streamed.vectors(rows), resident.vectors(rows))
    projected = make_shield_set(streamed, "projected")
    assert projected.within(q, RADIUS).pairs() == resident.within(q, RADIUS).pairs()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_a_streamed_set_on_cuda_is_identical_to_brute_force():
    q, shields, expected = planted(seed=10)
    found = ExactShieldSet(shields, device="cuda", resident=False, chunk=500).within(q.cuda(), 1.0)
    assert found.pairs() == expected
