"""The quick commands and the one-line errors import none of the heavy libraries (no
timing here: `scripts/startup_times.py` measures; this keeps the imports from
creeping back)."""

from __future__ import annotations

import subprocess
import sys

import pytest

HEAVY = ("torch", "lightning", "diffusers", "transformers")
PROBE = """
import sys
sys.argv = ["bench", *sys.argv[1:]]
from bench.cli import main
try:
    main()
except SystemExit:
    pass
print("HEAVY", sorted(m for m in {heavy!r} if m in sys.modules))
"""


def heavy_imports(*args: str) -> list[str]:
    code = PROBE.format(heavy=HEAVY)
    out = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, check=True
    ).stdout
    line = next(x for x in out.splitlines() if x.startswith("HEAVY"))
    return eval(line.removeprefix("HEAVY "))  # a list literal printed above


@pytest.mark.parametrize(
    "args",
    [
        ["--help"],
        ["list", "models"],
        ["run", "--model", "nope"],
        ["run", "--methods", "nope"],
        ["generate", "--samples", "-3"],
        ["score", "/nonexistent"],
        ["score", "/nonexistent", "--devices", "2"],
        ["perf", "--suite", "nope"],
    ],
    ids=" ".join,
)
def test_quick_commands_import_no_heavy_library(args, tmp_path):
    assert heavy_imports(*args) == []


def test_bench_list_methods_reads_its_cached_listing():
    heavy_imports("list", "methods")  # the first call may build the listing
    assert heavy_imports("list", "methods") == []
