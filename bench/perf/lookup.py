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
from bench.shields.ivf import FaissIVFShieldSet

SIZES = (10_000, 100_000, 1_200_000)
NPROBES = (1, 2, 10, 32)
CLUSTERS = 1000
SPREAD = 0.7  # within-cluster scale relative to the centres' scale
QUERY_NOISE = 0.15


def spectrum(dim: int) -> torch.Tensor:
    """Per-axis standard deviation, variance ~ 1/i."""
    return torch.arange(1, dim + 1, dtype=torch.float32).rsqrt()


def synthetic_vectors(n: int, dim: int, seed: int = 0, chunk: int = 65536) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    scale = spectrum(dim)
    centres = torch.randn(CLUSTERS, dim, generator=gen) * scale
    out = torch.empty(n, dim)
    for start in range(0, n, chunk):
        m = min(chunk, n - start)
        owner = torch.randint(CLUSTERS, (m,), generator=gen)
        noise = SPREAD * scale * torch.randn(m, dim, generator=gen)
        out[start : start + m] = centres[owner] + noise
    return out


def near_queries(data: torch.Tensor, count: int, seed: int = 1) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    rows = torch.randint(len(data), (count,), generator=gen)
    noise = QUERY_NOISE * spectrum(data.shape[1]) * torch.randn(count, data.shape[1], generator=gen)
    return data[rows] + noise


def kth_distance(data: torch.Tensor, queries: torch.Tensor, k: int, chunk: int = 65536):
    """Distance from each query to its k-th nearest row (exact, chunked)."""
    best = torch.full((len(queries), k), float("inf"))
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
    seconds = median_seconds(
        lambda: [shields.within(q, radius) for q in batches], reps, warmup=0
    ) / len(batches)
    return answers, seconds


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
) -> list[Record]:
    data = synthetic_vectors(n, dim, seed)
    queries = near_queries(data, batch * batches, seed + 1)
    radius = kth_distance(data, queries, neighbours).median().item()
    query_batches = list(queries.split(batch))
    exact = ExactShieldSet(data)
    truth, exact_s = time_lookups(exact, query_batches, radius, reps)
    in_range = sum(map(len, truth)) / len(queries)
    base = {"N": n, "d": dim, "r": radius, "in_range_per_query": in_range}

    def row(label: str, build_s: float, answers, seconds: float, **extra) -> Record:
        out = {**base, "backend": label, "build_s": build_s, "lookup_ms": 1e3 * seconds,
               "recall": recall(answers, truth), **extra}
        if step_seconds:
            out["lookup_over_unet_step"] = seconds / step_seconds
        return out

    rows = [row("exact-fp32", 0.0, truth, exact_s)]
    for dtype in (torch.bfloat16, torch.float16):
        start = time.perf_counter()
        low = ExactShieldSet(data, dtype=dtype)
        build = time.perf_counter() - start
        rows.append(row(low.describe(), build, *time_lookups(low, query_batches, radius, reps)))
        del low
    start = time.perf_counter()
    projected = ProjectedShieldSet(exact)
    build = time.perf_counter() - start
    answers, seconds = time_lookups(projected, query_batches, radius, reps)
    touched = sum(projected.candidates(q, radius)[0].numel() for q in query_batches)
    rows.append(row(projected.describe(), build, answers, seconds,
                    candidates_per_query=touched / len(queries)))
    del projected
    start = time.perf_counter()
    ivf = FaissIVFShieldSet(exact)
    build = time.perf_counter() - start
    for nprobe in nprobes:
        ivf.nprobe = nprobe
        rows.append(row(ivf.describe(), build, *time_lookups(ivf, query_batches, radius, reps)))
    del ivf, exact, data
    gc.collect()
    return rows


def lookup_suite(
    sizes: tuple[int, ...] = SIZES, step_seconds: float | None = None, **kwargs
) -> list[Record]:
    return [row for n in sizes for row in lookup_rows(n, step_seconds=step_seconds, **kwargs)]
