"""Per-run feature cache: <root>/<extractor>/<settings key>/<group>/<item>.npz, the root
being the run's features folder (RunDir.features).

The directory key hashes every extractor setting (name, network, weights file,
resize, ...); each file also stores the digest of the images it was computed
from and is recomputed when that differs, so a changed setting or image set
never reuses stale features.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from bench.atomic import atomic_save_npz, atomic_write_text
from metrics.extractors.base import FeatureExtractor

CACHE_VERSION = 1
_DIGEST = "source_digest"


def shared_root(fallback: Path) -> Path:
    """The feature cache every run shares (reference features and statistics), or
    `fallback` (the run's own) where the user cache cannot be written."""
    from bench.environment import user_cache_dir

    root = user_cache_dir() / "features"
    try:
        root.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=root).close()
    except OSError:
        return Path(fallback)
    return root


def settings_key(settings: dict) -> str:
    blob = json.dumps({"cache_version": CACHE_VERSION, **settings}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def bytes_digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def array_digest(images: np.ndarray) -> str:
    h = hashlib.sha256(f"{images.dtype}{images.shape}".encode())
    h.update(np.ascontiguousarray(images).tobytes())
    return h.hexdigest()


class FeatureCache:
    def __init__(self, root: Path, extractor: FeatureExtractor) -> None:
        self.extractor = extractor
        settings = extractor.settings()
        self.root = Path(root) / extractor.name / settings_key(settings)
        info = self.root / "settings.json"
        if not info.exists():
            text = json.dumps(settings, indent=2, sort_keys=True, default=str)
            atomic_write_text(info, text)

    def path(self, group: str, item: str) -> Path:
        return self.root / group / f"{item}.npz"

    def features(
        self, group: str, item: str, digest: str, images: Callable[[], np.ndarray]
    ) -> dict[str, np.ndarray]:
        """Cached outputs for `images()` (called only on a miss) whose digest is `digest`."""
        return self.arrays(group, item, digest, lambda: self.extractor.extract(images()))

    def arrays(
        self, group: str, item: str, digest: str, compute: Callable[[], dict[str, np.ndarray]]
    ) -> dict[str, np.ndarray]:
        """Any arrays derived from this extractor's outputs, cached under `digest`."""
        path = self.path(group, item)
        cached = _read(path, digest)
        if cached is not None:
            return cached
        out = compute()
        atomic_save_npz(path, {**out, _DIGEST: np.array(digest)})
        return out


def _read(path: Path, digest: str) -> dict[str, np.ndarray] | None:
    if not path.exists():
        return None
    try:
        with np.load(path, allow_pickle=False) as f:
            if _DIGEST not in f.files or str(f[_DIGEST]) != digest:
                return None
            return {k: f[k] for k in f.files if k != _DIGEST}
    except (OSError, ValueError):  # unreadable: recompute and overwrite
        return None
