"""FID features: torch-fidelity's TF-compatible InceptionV3, 2048-d pool3, and the
class probabilities of its 1008-way classifier for the Inception Score.

The network resizes uint8 inputs to 299 with TF1's bilinear (no anti-aliasing),
as the published FIDs were computed.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from bench.errors import BenchError
from metrics.extractors.base import FeatureExtractor, to_rgb_nchw
from metrics.extractors.weights import (
    file_fingerprint,
    find_file,
    library_version,
    load_error,
    search_dirs,
)

# pytorch-fid's and torch-fidelity's names for the same converted TF weights.
WEIGHTS_FILES = (
    "pt_inception-2015-12-05-6726825d.pth",
    "weights-inception-2015-12-05-6726825d.pth",
)
WEIGHTS_URL = (
    "https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/"
    "pt_inception-2015-12-05-6726825d.pth"
)
FEATURE = "2048"
# The layer torch-fidelity's own Inception Score reads: the fc layer without its bias.
LOGITS = "logits_unbiased"


def find_inception_weights(weights_dir: Path | None) -> Path:
    dirs = search_dirs(weights_dir)
    found = find_file(WEIGHTS_FILES, dirs)
    if found is None:
        raise BenchError(
            f"Inception weights not found: download {WEIGHTS_FILES[0]} from {WEIGHTS_URL} "
            f"and put it in {dirs[0]}"
        )
    return found


def build_inception(weights: Path) -> nn.Module:
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    try:
        return FeatureExtractorInceptionV3(
            "inception-v3-compat", [FEATURE, LOGITS], feature_extractor_weights_path=str(weights)
        )
    except (RuntimeError, OSError, KeyError) as err:
        raise load_error(weights, f"the FID Inception (expects {WEIGHTS_FILES[0]})", err) from err


class InceptionExtractor(FeatureExtractor):
    name = "inception"
    dim = 2048
    batch_size = 32

    def __init__(
        self, network: nn.Module, weights: Path | None = None, device: str = "cpu"
    ) -> None:
        """`network`: a torch-fidelity FeatureExtractorInceptionV3 (any weights) that
        gives the "2048" and "logits_unbiased" features."""
        super().__init__(device)
        names = list(network.features_list)
        missing = [f for f in (FEATURE, LOGITS) if f not in names]
        if missing:
            raise BenchError(f"the Inception network does not give the features {missing}")
        self.net = network.to(self.device).eval()
        self.weights = weights
        self._index = names.index(FEATURE)
        self._logits = names.index(LOGITS)

    def _batch(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        out = self.net(to_rgb_nchw(images).contiguous())
        return {"features": out[self._index], "probs": out[self._logits].softmax(dim=1)}

    def settings(self) -> dict:
        return {
            "name": self.name,
            "dim": self.dim,
            "network": "torch-fidelity FeatureExtractorInceptionV3 (TF-FID compatible), pool3",
            "library": library_version("torch-fidelity"),
            "weights": file_fingerprint(self.weights) if self.weights else "injected",
            "resize": "299, TF1 bilinear, no antialias (inside the network)",
            "input": "uint8 RGB, grey repeated",
            "outputs": ["features", "probs"],
            "probs": "softmax of torch-fidelity's logits_unbiased (fc without bias), 1008 classes",
        }


def inception_extractor(weights_dir: Path | None = None, device: str = "cpu") -> InceptionExtractor:
    weights = find_inception_weights(weights_dir)
    return InceptionExtractor(build_inception(weights), weights, device)
