"""Who owns what: the run directory's file names live in bench/run_dir.py only, and
methods depend only on the small public surface (methods.base, bench.shields,
bench.seeding) and on each other."""

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("bench", "methods", "metrics", "reports")
FILE_NAMES = re.compile(
    r"""^['"](metrics\.json|metrics\.csv|manifest\.json|config\.toml|method\.json|index\.html)['"]$"""
)
PATH_JOINS = re.compile(r"""/\s*["'](samples|report|features)["']|\.time\.json|\.npz["']""")
# Layouts of their own: a protected-set index (bench/shields) and the feature cache.
OWNERS = ("bench/run_dir.py", "bench/shields/", "metrics/cache.py")
METHOD_IMPORTS = ("methods.base", "bench.shields", "bench.seeding")


def _modules(package: str):
    return sorted((ROOT / package).rglob("*.py"))


def _strings(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text())
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
    }
    return [
        (n.lineno, repr(n.value))
        for n in ast.walk(tree)
        if isinstance(n, ast.Constant) and isinstance(n.value, str) and id(n) not in docstrings
    ]


def test_only_run_dir_spells_the_run_directory_layout():
    found = []
    for package in PACKAGES:
        for path in _modules(package):
            name = str(path.relative_to(ROOT))
            if name.startswith(OWNERS):
                continue
            found += [
                f"{name}:{line} {text}" for line, text in _strings(path) if FILE_NAMES.search(text)
            ]
            for number, line in enumerate(path.read_text().splitlines(), 1):
                if PATH_JOINS.search(line) and not line.lstrip().startswith("#"):
                    found.append(f"{name}:{number} {line.strip()}")
    assert not found, "layout names outside RunDir:\n" + "\n".join(found)


def test_methods_import_only_the_public_surface():
    bad = []
    for path in _modules("methods"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            for name in names:
                ours = name.split(".")[0] in PACKAGES
                # a method may build on another method's module (pg-feature on pg)
                allowed = name.startswith(METHOD_IMPORTS) or name.startswith("methods.")
                if ours and not allowed and path.name != "registry.py":
                    bad.append(f"{path.name}: {name}")
    assert not bad, bad
