"""Compare two run directories file by file: the check behind a pure restructuring.

    python scripts/compare_runs.py OLD_RUN NEW_RUN [--ignore-key seconds_per_image_std]

Sample files (`samples/*/*.npz`), metrics.json and the report's tables must be
byte-identical; metrics.json is also compared as data with the keys given by
--ignore-key dropped (keys a change adds on purpose). Exit 1 on any difference.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bench.run_dir import RunDir


def _drop(value, keys: set[str]):
    if isinstance(value, dict):
        return {k: _drop(v, keys) for k, v in value.items() if k not in keys}
    if isinstance(value, list):
        return [_drop(v, keys) for v in value]
    return value


def _files(run: RunDir) -> dict[str, Path]:
    found = {str(p.relative_to(run.path)): p for p in run.sample_files()}
    tables = run.report / "tables"
    found.update({str(p.relative_to(run.path)): p for p in sorted(tables.glob("*"))})
    return found


def compare(old: RunDir, new: RunDir, ignore: set[str]) -> list[str]:
    problems = []
    a, b = _files(old), _files(new)
    for name in sorted(set(a) | set(b)):
        if name not in a or name not in b:
            problems.append(f"{name}: only in {'new' if name in b else 'old'}")
        elif a[name].read_bytes() != b[name].read_bytes():
            problems.append(f"{name}: bytes differ")
    if old.metrics_file.read_bytes() != new.metrics_file.read_bytes():
        same = _drop(old.metrics(), ignore) == _drop(new.metrics(), ignore)
        note = f"equal without {sorted(ignore)}" if same else "values differ"
        problems.append(f"metrics.json: bytes differ ({note})")
        if not same:
            return problems
    print(f"{len(a)} sample and table files compared")
    return problems


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("old", type=Path)
    parser.add_argument("new", type=Path)
    parser.add_argument("--ignore-key", action="append", default=[])
    args = parser.parse_args()
    problems = compare(RunDir(args.old), RunDir(args.new), set(args.ignore_key))
    for line in problems:
        print(line)
    hard = [p for p in problems if "equal without" not in p]
    print("identical" if not problems else ("identical as data" if not hard else "DIFFERENT"))
    sys.exit(1 if hard else 0)


if __name__ == "__main__":
    main()
