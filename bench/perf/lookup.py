"""Suite 2: shield lookup time and recall at N = 10k .. 1.2M synthetic shields.

The synthetic set imitates image latents: a power-law spectrum (per-axis variance
~ 1/i, as natural images' principal components) around 1000 cluster centres (the
classes). Queries are data points plus noise (a sample near a training image), and
r is set per N so that a few shields (median `neighbours`) are in range. Recall is
against exact float32 search; lookup time is also given as a share of one UNet step.
"""

from __future__ import annotations

import gc
import time

import torch

from bench.perf.report import Record
from bench.perf.timing import median_seconds
from bench.shields import ExactShieldSet, ProjectedShieldSet, ShieldSet
from bench.shields.base import Neighbours
from bench.shields.ivf import FaissIVFShieldSet, gpu_count

SIZES = (10_000, 100_000, 1_200_000)
NPROBES = (1, 2, 10, 32)
CLUSTERS = 1000
SPREAD = 0.7  # within-cluster scale relative to the centres' scale
QUERY_NOISE = 0.15


def spectrum(dim: int) -> torch.Tensor:
    """Per-axis standard deviation, variance ~ 1/i."""
    return torch.arange(1, dim + 1, dtype=torch.float32).rsqrt()


def synthetic_vectors(
    n: int, dim: int, seed: int = 0, chunk: int = 65536, device: torch.device | str = "cpu"
) -> torch.Tensor:
    """(n, dim) float32 on `device`, drawn there (seeded per device: a GPU's draws
    differ from the CPU's, and 1.2M x 4096 is drawn in seconds instead of minutes)."""
    gen = torch.Generator(device).manual_seed(seed)
    scale = spectrum(dim).to(device)
    centres = torch.randn(CLUSTERS, dim, generator=gen, device=device) * scale
    out = torch.empty(n, dim, device=device)
    for start in range(0, n, chunk):
        m = min(chunk, n - start)
        owner = torch.randint(CLUSTERS, (m,), generator=gen, device=device)
        noise = SPREAD * scale * torch.randn(m, dim, generator=gen, device=device)
        out[start : start + m] = centres[owner] + noise
    return out


def near_queries(data: torch.Tensor, count: int, seed: int = 1) -> torch.Tensor:
    gen = torch.Generator(data.device).manual_seed(seed)
    rows = torch.randint(len(data), (count,), generator=gen, device=data.device)
    scale = QUERY_NOISE * spectrum(data.shape[1]).to(data.device)
    return data[rows] + scale * torch.randn(count, data.shape[1], generator=gen, device=data.device)


def kth_distance(data: torch.Tensor, queries: torch.Tensor, k: int, chunk: int = 65536):
    """Distance from each query to its k-th nearest row (exact, chunked)."""
    best = torch.full((len(queries), k), float("inf"), device=queries.device)
    q_sq = queries.pow(2).sum(1, keepdim=True)
    for start in range(0, len(data), chunk):
        block = data[start : start + chunk]
        sq = (q_sq + block.pow(2).sum(1) - 2 * queries @ block.T).clamp_min(0)
        best = torch.cat([best, sq], 1).topk(k, dim=1, largest=False).values
    return best[:, -1].sqrt()


def recall(found: list[Neighbours], truth: list[Neighbours]) -> float:
    hits = sum(len(f.pairs() & t.pairs()) for f, t in zip(found, truth, strict=True))
    total = sum(len(t) for t in truth)
    return hits / total if total else 1.0


def time_lookups(shields: ShieldSet, batches: list[torch.Tensor], radius: float, reps: int):
    """All answers, and the median seconds of one lookup (one batch of queries)."""
    answers = [shields.within(q, radius) for q in batches]
    run = lambda: [shields.within(q, radius) for q in batches]  # noqa: E731
    seconds = median_seconds(run, reps, warmup=0, device=batches[0].device)
    return answers, seconds / len(batches)


def lookup_rows(
    n: int,
    dim: int = 1024,
    batch: int = 8,
    batches: int = 16,
    nprobes: tuple[int, ...] = NPROBES,
    step_seconds: float | None = None,
    reps: int = 1,
    neighbours: int = 4,
    seed: int = 0,
    device: torch.device | str = "cpu",
) -> list[Record]:
    """One row per backend on N synthetic shields, searched on `device`. faiss IVF runs
    on the CPU, or on the GPU with faiss-gpu; on a GPU without faiss-gpu it is left out
    (a CPU index is not the device path)."""
    data = synthetic_vectors(n, dim, seed, device=device)
    queries = near_queries(data, batch * batches, seed + 1)
    radius = kth_distance(data, queries, neighbours).median().item()
    query_batches = list(queries.split(batch))
    exact = ExactShieldSet(data, device=device)
    truth = [exact.within(q, radius) for q in query_batches]
    in_range = sum(map(len, truth)) / len(queries)
    base = {"N": n, "d": dim, "r": radius, "in_range_per_query": in_range}

    def row(shields: ShieldSet, build_s: float, nprobe: int | None = None) -> Record:
        if nprobe is not None:
            shields.nprobe = nprobe
        answers, seconds = time_lookups(shields, query_batches, radius, reps)
        out = {
            **base,
            "backend": shields.describe(),
            "build_s": build_s,
            "lookup_ms": 1e3 * seconds,
            "recall": recall(answers, truth),
        }
        if isinstance(shields, ProjectedShieldSet):
            touched = sum(shields.candidates(q, radius)[0].numel() for q in query_batches)
            out["candidates_per_query"] = touched / len(queries)
        if step_seconds:
            out["lookup_over_unet_step"] = seconds / step_seconds
        return out

    rows = [row(exact, 0.0)]
    # As a stored float32 set is used on a GPU: the originals that half-precision
    # copies are rechecked against stay in host memory.
    host = data.cpu()
    for dtype in (torch.bfloat16, torch.float16):
        rows.append(row(*_built(ExactShieldSet, host, dtype=dtype, device=device)))
    rows.append(row(*_built(ProjectedShieldSet, exact, device=device)))
    gpu = torch.device(device).type == "cuda"
    if not gpu or gpu_count() > 0:
        ivf, build = _built(FaissIVFShieldSet, exact, gpu=gpu)
        rows.extend(row(ivf, build, nprobe) for nprobe in nprobes)
    return rows


def _built(make, *args, **kwargs) -> tuple[ShieldSet, float]:
    start = time.perf_counter()
    shields = make(*args, **kwargs)
    return shields, time.perf_counter() - start


def lookup_suite(
    sizes: tuple[int, ...] = SIZES, step_seconds: float | None = None, **kwargs
) -> list[Record]:
    rows = []
    for n in sizes:
        rows.extend(lookup_rows(n, step_seconds=step_seconds, **kwargs))
        gc.collect()  # one size's sets are gone before the next is drawn
    return rows
