"""Methods from outside the project: `module:Class`, entry points, and the listing."""

import json
import os
import re
import subprocess
import sys
from importlib.metadata import EntryPoint
from pathlib import Path

import numpy as np
import pytest

import bench.registry as bench_registry
import methods.registry as registry
from bench.config import BenchConfig
from bench.errors import BenchError
from bench.generate import generate
from bench.models import registry as models
from bench.models.digits import WEIGHTS
from methods.registry import describe_methods, expand, get_method_class

ROOT = Path(__file__).resolve().parent.parent
PLUGIN_DIR = Path(__file__).resolve().parent / "plugin_example"
SPEC = "my_method:MeanRepulsion"
SMALL = {"prompts": 2, "samples": 4, "batch_size": 2, "steps": 5}


@pytest.fixture
def plugin_path(monkeypatch):
    monkeypatch.syspath_prepend(str(PLUGIN_DIR))


@pytest.fixture
def own_registry(monkeypatch):
    """Entry points registered by a test do not outlive it."""
    monkeypatch.setattr(registry, "METHODS", registry.builtin_registry())


def test_the_documented_example_is_the_tested_plugin():
    doc = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", doc, flags=re.S)
    assert (PLUGIN_DIR / "my_method.py").read_text() in blocks


def test_module_class_spec_resolves_and_expands(plugin_path):
    cls = get_method_class(SPEC)
    assert cls.__name__ == "MeanRepulsion"
    ids = [m.id for m in expand(SPEC, {"strength": [0.1, 0.3], "until": 0.4})]
    assert ids == ["mean-repel-s0.1-t0.4", "mean-repel-s0.3-t0.4"]
    with pytest.raises(BenchError, match="bad parameters"):
        expand(SPEC, {"strenght": 1.0})
    with pytest.raises(BenchError, match="cannot import"):
        get_method_class("my_method:Missing")


def _fake_entry_points(*points: EntryPoint):
    def entry_points(group=None):
        return [p for p in points if p.group == group]

    return entry_points


def test_entry_point_registers_a_method(plugin_path, own_registry, monkeypatch):
    point = EntryPoint("mean-repel", SPEC, registry.ENTRY_POINT_GROUP)
    monkeypatch.setattr(bench_registry, "entry_points", _fake_entry_points(point))
    assert registry.available()["mean-repel"].__name__ == "MeanRepulsion"
    assert f"method mean-repel (entry point {SPEC})" in bench_registry.imported_plugins()
    assert expand("mean-repel", {"strength": 0.2})[0].id == "mean-repel-s0.2-t0.5"
    assert any(line.startswith("mean-repel") for line in describe_methods())


def test_entry_point_clashing_with_a_builtin_is_an_error(plugin_path, own_registry, monkeypatch):
    point = EntryPoint("spell", SPEC, registry.ENTRY_POINT_GROUP)
    monkeypatch.setattr(bench_registry, "entry_points", _fake_entry_points(point))
    with pytest.raises(BenchError, match="method 'spell' is registered twice"):
        registry.available()


def test_broken_entry_point_is_a_one_line_error(own_registry, monkeypatch):
    point = EntryPoint("broken", "no_such_module:Nothing", registry.ENTRY_POINT_GROUP)
    monkeypatch.setattr(bench_registry, "entry_points", _fake_entry_points(point))
    with pytest.raises(BenchError, match="cannot import method 'no_such_module:Nothing'"):
        registry.available()


def test_a_typo_gets_a_suggestion():
    with pytest.raises(BenchError, match="did you mean 'spell'"):
        get_method_class("spel")


def test_listing_shows_every_method_with_parameters_and_defaults():
    text = "\n".join(describe_methods())
    for name in ("none", "spell", "pg", "ig", "cads", "cfg"):
        assert re.search(rf"^{name}\s", text, flags=re.M), name
    for setting in (
        "strength = 30.0",
        "interval = [0.1, 0.9]",
        'space = "t"',
        "tau1 = 0.6",
        "noise_uncond = false",
        "weight = 1.0",
        "radius = 2.0",
    ):
        assert setting in text


def _check_run(run: Path, plugin_id: str) -> None:
    none, plugin = (run / "samples" / i for i in ("none", plugin_id))
    for prompt in ("0", "1"):
        a, b = np.load(none / f"{prompt}.npz"), np.load(plugin / f"{prompt}.npz")
        assert a["latents"].shape == b["latents"].shape == (4, 1, 8, 8)
        assert b["trace_active"].any() and not a["trace_active"].any()
        assert not np.array_equal(a["latents"], b["latents"])
    info = json.loads((plugin / "method.json").read_text())
    assert info["params"] == {"strength": 0.3, "until": 0.5}


def test_plugin_runs_through_the_generate_stage(plugin_path, random_digits, monkeypatch, tmp_path):
    fake = models.MODELS.with_entry("digits", lambda **kw: random_digits, "random weights")
    monkeypatch.setattr(models, "MODELS", fake)
    config = BenchConfig(
        run={**SMALL, "methods": [SPEC], "out": tmp_path, "name": "p", "threads": 2},
        method={SPEC: {"strength": 0.3}},
    )
    generate(config, progress=False)
    _check_run(tmp_path / "p", "mean-repel-s0.3-t0.5")


def test_plugin_runs_through_bench_run(tmp_path):
    assert WEIGHTS.exists(), f"the committed digits weights are missing at {WEIGHTS}"
    (tmp_path / "bench.toml").write_text(f'[method."{SPEC}"]\nstrength = 0.3\n')
    args = [
        "--model",
        "digits",
        "--methods",
        SPEC,
        "--out",
        str(tmp_path),
        "--name",
        "cli",
        "--threads",
        "2",
    ] + [f"--{k.replace('_', '-')}={v}" for k, v in SMALL.items()]
    env = {**os.environ, "PYTHONPATH": str(PLUGIN_DIR)}
    bench = Path(sys.executable).parent / "bench"
    done = subprocess.run(
        [str(bench), "run", *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"imported plugin code: method {SPEC}" in done.stdout.splitlines()
    _check_run(tmp_path / "cli", "mean-repel-s0.3-t0.5")
