"""Feature spaces of one scoring pass: extractors, their caches and the reference features."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bench.data.references import ReferenceProvider
from bench.errors import BenchError
from bench.run_dir import RunDir
from metrics.cache import FeatureCache, array_digest
from metrics.extractors import get_extractor
from metrics.extractors.base import FeatureExtractor
from metrics.frechet import GaussianAccumulator
from metrics.run_reader import MethodDir, PromptSamples

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
        root = RunDir(run_dir).features
        self.caches = {n: FeatureCache(root, e) for n, e in self.extractors.items()}
        self.reference = reference
        self._reference: dict[str, dict[str, Outputs]] = {}
        self._reference_stats: dict[tuple, GaussianAccumulator] = {}
        self._text: dict[str, np.ndarray] = {}

    def generated(self, method: MethodDir, samples: PromptSamples) -> dict[str, Outputs]:
        return {
            n: c.features(
                method.method_id, samples.prompt_id, samples.digest, lambda: samples.images
            )
            for n, c in self.caches.items()
        }

    def reference_outputs(self, prompt_id: str) -> dict[str, Outputs]:
        if prompt_id not in self._reference:
            images = self.reference.images(prompt_id)
            digest = array_digest(images)
            self._reference[prompt_id] = {
                n: c.features("reference", prompt_id, digest, lambda: images)
                for n, c in self.caches.items()
            }
        return self._reference[prompt_id]

    def reference_statistics(self, name: str, prompt_ids: list[str]) -> GaussianAccumulator:
        """Running statistics of the union of these prompts' reference features, computed
        once per extractor and prompt set (every method of a full run shares them)."""
        key = (name, tuple(prompt_ids))
        if key not in self._reference_stats:
            stats = GaussianAccumulator()
            for pid in prompt_ids:
                stats.update(self.reference_outputs(pid)[name]["features"])
            self._reference_stats[key] = stats
        return self._reference_stats[key]

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
        if dim is None and self._reference:
            dim = int(next(iter(self._reference.values()))[name]["features"].shape[1])
        return dim
