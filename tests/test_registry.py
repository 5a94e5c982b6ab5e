"""The generic registry: lazy entries, plugins by entry point, collisions, suggestions."""

import sys
from importlib.metadata import EntryPoint

import pytest

import bench.registry as bench_registry
from bench.errors import BenchError
from bench.registry import Registry


def _points(*points: EntryPoint):
    return lambda group=None: [p for p in points if p.group == group]


def test_lazy_entries_import_on_first_use_only():
    sys.modules.pop("colorsys", None)
    registry = Registry("thing")
    registry.register("hls", "colorsys:rgb_to_hls", "a lazily imported function")
    assert "colorsys" not in sys.modules and registry.names() == ["hls"]
    assert registry.get("hls")(1.0, 0.0, 0.0)[0] == 0.0
    assert "colorsys" in sys.modules


def test_a_second_registration_is_an_error():
    registry = Registry("model")
    registry.register("digits", object)
    with pytest.raises(BenchError, match="model 'digits' is registered twice"):
        registry.register("digits", object)


@pytest.mark.parametrize("group", ["spellbench.models", "spellbench.extractors"])
def test_plugins_join_through_their_group_and_cannot_shadow(monkeypatch, group):
    registry = Registry("plugin", group)
    registry.register("builtin", "colorsys:rgb_to_hsv")
    plugin = EntryPoint("extra", "colorsys:hsv_to_rgb", group)
    monkeypatch.setattr(bench_registry, "entry_points", _points(plugin))
    assert registry.names() == ["builtin", "extra"]
    assert registry.get("extra").__name__ == "hsv_to_rgb"
    clash = Registry("plugin", group)
    clash.register("extra", "colorsys:rgb_to_hsv")
    with pytest.raises(BenchError, match="registered twice"):
        clash.names()


def test_unknown_names_get_a_suggestion_and_the_list():
    registry = Registry("extractor", direct_imports=False)
    for name in ("inception", "dinov2", "clip"):
        registry.register(name, object)
    with pytest.raises(BenchError, match=r"unknown extractor 'dinov3'; did you mean 'dinov2'\?"):
        registry.get("dinov3")
    with pytest.raises(BenchError, match="available: clip, dinov2, inception"):
        registry.get("zzz")


def test_direct_module_attr_names_are_checked():
    registry = Registry("model", check=lambda obj: None if callable(obj) else "is not callable")
    assert registry.get("colorsys:rgb_to_yiq").__name__ == "rgb_to_yiq"
    with pytest.raises(BenchError, match="'colorsys:ONE_THIRD' is not callable"):
        registry.get("colorsys:ONE_THIRD")
    with pytest.raises(BenchError, match="cannot import model"):
        registry.get("colorsys:nothing_here")


def test_models_methods_and_extractors_use_it():
    from bench.models.registry import MODELS, load_model
    from methods.registry import METHODS
    from metrics.extractors import EXTRACTORS

    assert {"digits", "digits-gmm", "ldm", "sd3"} <= set(MODELS.names())
    assert {"none", "spell", "pg", "ig", "cads", "cfg"} <= set(METHODS.names())
    assert {"digits", "pixels", "inception", "dinov2", "clip"} <= set(EXTRACTORS.names())
    with pytest.raises(BenchError, match="did not return a ModelAdapter"):
        load_model("os:getcwd")


def test_the_method_listing_is_kept_until_a_source_changes(tmp_path, monkeypatch):
    """`bench list methods` reads a kept listing; a changed method file makes a new one."""
    from methods import registry

    monkeypatch.setenv("SPELLBENCH_CACHE", str(tmp_path / "cache"))
    source = tmp_path / "plugin.py"
    source.write_text("x = 1\n")
    monkeypatch.setattr(registry, "_source_files", lambda: [source])
    first = registry.cached_descriptions()
    assert first == registry.describe_methods()
    assert len(list((tmp_path / "cache").glob("methods-*.txt"))) == 1

    def refuse():
        raise AssertionError("recomputed although nothing changed")

    monkeypatch.setattr(registry, "describe_methods", refuse)
    assert registry.cached_descriptions() == first
    source.write_text("x = 22\n")  # a changed source: computed again
    monkeypatch.setattr(registry, "describe_methods", lambda: ["changed"])
    assert registry.cached_descriptions() == ["changed"]


def test_a_kept_listing_needs_no_torch(tmp_path):
    import subprocess
    import sys

    code = (
        "import sys; from methods.registry import cached_descriptions; "
        "lines = cached_descriptions(); print(len(lines), 'torch' in sys.modules)"
    )
    env = {**__import__("os").environ, "SPELLBENCH_CACHE": str(tmp_path)}
    subprocess.run([sys.executable, "-c", code], env=env, check=True, capture_output=True)
    out = subprocess.run([sys.executable, "-c", code], env=env, check=True, capture_output=True)
    count, torch_loaded = out.stdout.decode().split()
    assert int(count) > 17 and torch_loaded == "False"
