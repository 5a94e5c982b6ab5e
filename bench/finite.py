"""Stop a prompt whose samples turn non-finite, with one line that says where."""

from __future__ import annotations

import torch

from bench.errors import BenchError


def check_finite(
    x: torch.Tensor, method_id: str, prompt_id: str, step: int, num_steps: int
) -> None:
    """Raise a BenchError when any sample of the batch `x` (N, ...) holds a NaN or an inf.

    `step` is the 0-based index of the step just taken (`Step.index`); the message counts
    from 1, so the last of 50 steps reads "step 50 of 50"."""
    if bool(torch.isfinite(x).all()):
        return
    rows = x.detach().reshape(len(x), -1) if x.ndim > 0 else x.detach().reshape(1, 1)
    bad = ~torch.isfinite(rows).all(dim=1)
    kinds = [name for name, hit in (("nan", rows.isnan()), ("inf", rows.isinf())) if hit.any()]
    raise BenchError(
        f"method {method_id!r} prompt {prompt_id!r}: {int(bad.sum())} of {len(rows)} samples "
        f"became non-finite ({' and '.join(kinds)}) at step {step + 1} of {num_steps}"
    )
