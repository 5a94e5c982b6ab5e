"""Run a block with a given number of torch intra-op threads, then restore the setting."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch


@contextmanager
def intra_op_threads(n: int | None) -> Iterator[None]:
    """`n` threads inside the block; None leaves torch's setting alone."""
    before = torch.get_num_threads()
    if n is not None:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)
