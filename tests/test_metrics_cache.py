"""The per-run feature cache never serves features of other settings or other images."""

import numpy as np
import pytest

from metrics.cache import FeatureCache, array_digest, settings_key
from metrics.extractors.pixels import PixelExtractor


class CountingPixels(PixelExtractor):
    def __init__(self, tag: str = "a") -> None:
        super().__init__()
        self.tag, self.calls = tag, 0

    def extract(self, images, batch_size=None):
        self.calls += 1
        return super().extract(images, batch_size)

    def settings(self) -> dict:
        return {**super().settings(), "tag": self.tag}


def _images(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (4, 8, 8, 1), dtype=np.uint8)


def test_hit_skips_extraction_and_returns_the_same_arrays(tmp_path):
    images = _images(0)
    cache = FeatureCache(tmp_path, extractor := CountingPixels())
    first = cache.features("m", "0", array_digest(images), lambda: images)
    again = FeatureCache(tmp_path, extractor).features(
        "m", "0", array_digest(images), lambda: pytest.fail("cache miss")
    )
    assert extractor.calls == 1
    assert np.array_equal(first["features"], again["features"])


def test_changed_images_are_recomputed(tmp_path):
    cache = FeatureCache(tmp_path, extractor := CountingPixels())
    a, b = _images(0), _images(1)
    cache.features("m", "0", array_digest(a), lambda: a)
    out = cache.features("m", "0", array_digest(b), lambda: b)
    assert extractor.calls == 2
    assert np.array_equal(out["features"], b.reshape(4, -1) / np.float32(255))


def test_changed_settings_use_another_key(tmp_path):
    images = _images(0)
    a, b = FeatureCache(tmp_path, CountingPixels("a")), FeatureCache(tmp_path, CountingPixels("b"))
    assert a.root != b.root
    assert settings_key({"x": 1}) != settings_key({"x": 2})
    a.features("m", "0", array_digest(images), lambda: images)
    b.features("m", "0", array_digest(images), lambda: images)
    assert b.extractor.calls == 1
    assert (a.root / "settings.json").exists()


def test_digest_covers_shape_and_dtype():
    x = np.zeros((2, 8), np.uint8)
    assert array_digest(x) != array_digest(x.reshape(4, 4))
    assert array_digest(x) != array_digest(x.astype(np.int8))


def test_corrupt_cache_file_is_recomputed_and_no_temp_files_remain(tmp_path):
    images = _images(0)
    cache = FeatureCache(tmp_path, extractor := CountingPixels())
    cache.features("m", "0", array_digest(images), lambda: images)
    cache.path("m", "0").write_bytes(b"garbage")
    cache.features("m", "0", array_digest(images), lambda: images)
    assert extractor.calls == 2
    assert [p.name for p in cache.path("m", "0").parent.iterdir()] == ["0.npz"]


def test_the_shared_cache_falls_back_to_the_run_where_it_cannot_be_written(tmp_path, monkeypatch):
    from metrics.cache import shared_root

    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv("SPELLBENCH_CACHE", str(blocker / "cache"))
    assert shared_root(tmp_path / "run-features") == tmp_path / "run-features"
    monkeypatch.setenv("SPELLBENCH_CACHE", str(tmp_path / "cache"))
    assert shared_root(tmp_path / "run-features") == tmp_path / "cache" / "features"
