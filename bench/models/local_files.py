"""A model's weight file: the factory's argument, else its environment variable; a
one-line error saying what to download when neither names a file."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from bench.errors import BenchError


def local_file(
    given: str | os.PathLike | None, env_var: str, missing: Callable[[str], str]
) -> Path:
    """`missing(source)` is the error's text, `source` the path tried or "no path given"."""
    source = given or os.environ.get(env_var)
    if not source or not Path(source).is_file():
        raise BenchError(missing(str(source) if source else "no path given"))
    return Path(source)
