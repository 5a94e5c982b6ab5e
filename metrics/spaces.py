"""Feature spaces of one scoring pass: extractors, their caches and the reference features."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from bench.data.references import ReferenceProvider
from bench.errors import BenchError
from bench.run_dir import RunDir
from metrics.cache import FeatureCache, array_digest, shared_root
from metrics.extractors import get_extractor
from metrics.extractors.base import FeatureExtractor
from metrics.frechet import GaussianAccumulator
from metrics.protected_set import ProtectedSet
from metrics.run_reader import MethodDir, PromptSamples
from metrics.subset_metrics import RowFiles

Outputs = dict[str, np.ndarray]


class FeatureSpaces:
    def __init__(
        self,
        run_dir: Path,
        names: list[str],
        reference: ReferenceProvider,
        weights_dir: Path | None = None,
        device: str = "cpu",
    ) -> None:
        self.extractors: dict[str, FeatureExtractor] = {
            n: get_extractor(n, weights_dir=weights_dir, device=device) for n in names
        }
        self.run = RunDir(run_dir)
        root = self.run.features
        self.caches = {n: FeatureCache(root, e) for n, e in self.extractors.items()}
        # reference features and statistics depend on the images only: every run shares them
        shared = shared_root(fallback=root)
        self.shared = {n: FeatureCache(shared, e) for n, e in self.extractors.items()}
        self.reference = reference
        self._digests: dict[str, str] = {}  # prompt id -> its reference images' digest
        self._reference_stats: dict[tuple, GaussianAccumulator] = {}
        self._text: dict[str, np.ndarray] = {}
        self._reference_rows: dict[tuple, np.ndarray] = {}
        self.row_files: RowFiles | None = None  # set by the scorer for the subset metrics

    def generated(self, method: MethodDir, samples: PromptSamples) -> dict[str, Outputs]:
        return {
            n: c.features(
                method.method_id, samples.prompt_id, samples.digest, lambda: samples.images
            )
            for n, c in self.caches.items()
        }

    def reference_outputs(self, prompt_id: str) -> dict[str, Outputs]:
        """One prompt's reference outputs, read from the shared cache (none are held: a
        run's reference set need not fit in memory)."""
        images = None
        if prompt_id not in self._digests:
            images = self.reference.images(prompt_id)
            self._digests[prompt_id] = array_digest(images)

        def load() -> np.ndarray:
            return images if images is not None else self.reference.images(prompt_id)

        digest = self._digests[prompt_id]
        return {n: c.features("reference", prompt_id, digest, load) for n, c in self.shared.items()}

    def reference_statistics(self, name: str, prompt_ids: list[str]) -> GaussianAccumulator:
        """Running statistics of the union of these prompts' reference features: computed
        once per extractor and reference set, on disk beside the shared reference
        features (every method and every run with the same references reads them)."""
        key = (name, tuple(prompt_ids))
        if key not in self._reference_stats:
            digests = [self._digest(p) for p in prompt_ids]
            digest = hashlib.sha256(json.dumps([prompt_ids, digests]).encode()).hexdigest()
            state = self.shared[name].arrays(
                "reference-stats", digest[:32], digest, lambda: self._statistics(name, prompt_ids)
            )
            self._reference_stats[key] = GaussianAccumulator.from_state(state)
        return self._reference_stats[key]

    def _digest(self, prompt_id: str) -> str:
        if prompt_id not in self._digests:
            self._digests[prompt_id] = array_digest(self.reference.images(prompt_id))
        return self._digests[prompt_id]

    def _statistics(self, name: str, prompt_ids: list[str]) -> dict[str, np.ndarray]:
        stats = GaussianAccumulator()
        for pid in prompt_ids:
            stats.update(self.reference_outputs(pid)[name]["features"])
        return stats.state()

    def reference_rows(self, name: str, prompt_ids: list[str]) -> np.ndarray:
        """The union of these prompts' reference features as one memory-mapped array,
        written once per extractor and prompt set."""
        key = (name, tuple(prompt_ids))
        if key not in self._reference_rows:
            if self.row_files is None:
                raise BenchError("reference rows need the scorer's row files")
            chunks = (self.reference_outputs(p)[name]["features"] for p in prompt_ids)
            self._reference_rows[key] = self.row_files.write(chunks)
        return self._reference_rows[key]

    def protected_features(
        self, name: str, protected: ProtectedSet, shape: tuple[int, int, int]
    ) -> np.ndarray:
        """(N, D) features of the protected images in one space, cached batch by batch."""
        cache, parts = self.caches[name], []
        for i, batch in enumerate(protected.image_batches(shape)):
            item = f"{protected.digest}-{i}"
            digest = array_digest(batch)
            parts.append(cache.features("protected", item, digest, lambda b=batch: b))
        return np.concatenate([p["features"] for p in parts])

    def held_out_features(
        self, name: str, protected: ProtectedSet, prompt_ids: list[str]
    ) -> np.ndarray:
        """Features of the protected set's held-out counterpart, or of the scored prompts'
        reference images when it has none."""
        images = protected.held_out_images()
        if images is None:
            return np.concatenate([self.reference_outputs(p)[name]["features"] for p in prompt_ids])
        item = f"held-out-{protected.digest}"
        return self.caches[name].features("protected", item, array_digest(images), lambda: images)[
            "features"
        ]

    def text_features(self, prompt_id: str) -> np.ndarray:
        """(1, D) text embedding of the prompt, from the `clip` extractor."""
        if prompt_id not in self._text:
            if self.reference.prompt_text is None:
                raise BenchError("this model's reference set has no prompt texts for CLIP score")
            text = self.reference.prompt_text(prompt_id)
            self._text[prompt_id] = self.extractors["clip"].text_features([text])
        return self._text[prompt_id]

    def feature_dim(self, name: str) -> int | None:
        """The extractor's dimension, or the one seen in its outputs (pixels)."""
        dim = self.extractors[name].dim
        if dim is None and self._digests:
            first = self.reference_outputs(next(iter(self._digests)))
            dim = int(first[name]["features"].shape[1])
        return dim
