"""The value a metric returns when it has no meaningful number."""

from __future__ import annotations

import numpy as np

# The one reason of a metric computed from a NaN or inf (metrics.method_scores decides).
NONFINITE = "non-finite features"


class Undefined:
    """No number for this metric here (e.g. too few samples); `reason` says why.

    A plain class rather than a dataclass: torchmetrics rebuilds dataclasses found in
    a `compute()` result, which fails for frozen ones.
    """

    __slots__ = ("reason",)
    value = None

    def __init__(self, reason: str) -> None:
        self.reason = reason

    def __repr__(self) -> str:
        return f"Undefined({self.reason!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Undefined) and other.reason == self.reason

    def __hash__(self) -> int:
        return hash(self.reason)


def is_defined(x: object) -> bool:
    return not isinstance(x, Undefined)


def all_finite(*arrays: np.ndarray) -> bool:
    """No NaN or inf in any of the arrays."""
    return all(bool(np.isfinite(a).all()) for a in arrays)
