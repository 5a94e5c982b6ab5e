"""Per-sample seeds: sample i of prompt p in a run with seed s gets its own generator.

Seeds are derived by hashing, so they do not depend on batch size, method,
process count or the order in which prompts run.
"""

from __future__ import annotations

import hashlib

import torch


def derive_seed(*parts: object) -> int:
    digest = hashlib.sha256("/".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)


def sample_seed(run_seed: int, prompt_id: str, index: int) -> int:
    return derive_seed("sample", run_seed, prompt_id, index)


def generators(seeds: list[int], device: torch.device | str = "cpu") -> list[torch.Generator]:
    return [torch.Generator(device=device).manual_seed(s) for s in seeds]
