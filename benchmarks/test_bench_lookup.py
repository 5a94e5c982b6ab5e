"""Shield lookup speed (pytest-benchmark; run explicitly: `pytest benchmarks/`).

SPELLBENCH_BENCH_N sets the number of synthetic shields (default 100k, d = 1024);
`bench perf` runs the full 10k / 100k / 1.2M table with recall.
"""

import os

import pytest
import torch

from bench.perf.lookup import kth_distance, near_queries, synthetic_vectors
from bench.shields import ExactShieldSet, ProjectedShieldSet
from bench.shields.ivf import FaissIVFShieldSet

N = int(os.environ.get("SPELLBENCH_BENCH_N", "100000"))
DIM = 1024


@pytest.fixture(scope="module")
def problem():
    data = synthetic_vectors(N, DIM)
    queries = near_queries(data, 8)
    radius = kth_distance(data, queries, 4).median().item()
    return ExactShieldSet(data), queries, radius


@pytest.fixture(scope="module")
def ivf(problem):
    return FaissIVFShieldSet(problem[0])


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
def test_exact(benchmark, problem, dtype):
    store, queries, radius = problem
    shields = store if dtype == torch.float32 else ExactShieldSet(store.data, dtype=dtype)
    benchmark(shields.within, queries, radius)


def test_projected(benchmark, problem):
    store, queries, radius = problem
    shields = ProjectedShieldSet(store)
    benchmark(shields.within, queries, radius)


@pytest.mark.parametrize("nprobe", [1, 2, 10, 32])
def test_faiss_ivf(benchmark, problem, ivf, nprobe):
    _, queries, radius = problem
    ivf.nprobe = nprobe
    benchmark(ivf.within, queries, radius)
