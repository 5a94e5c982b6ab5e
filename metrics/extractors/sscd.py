"""Copy-detection features: SSCD (Pizzi et al. 2022), the sscd_disc_mixup TorchScript model.

ResNet-50 trunk, GeM pooling (p = 3), a linear 2048 -> 512 projection and L2
normalisation. Inputs follow the upstream recommendation: the short edge is resized
to 288 (aspect ratio kept), bilinear with antialiasing, then ImageNet-normalised.
Somepalli et al. 2023 use these descriptors to find copies of training images.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models import resnet50

from bench.errors import BenchError
from metrics.extractors.base import FeatureExtractor, normalise, to_rgb_nchw
from metrics.extractors.weights import (
    file_fingerprint,
    find_file,
    library_version,
    load_error,
    search_dirs,
)

WEIGHTS_FILE = "sscd_disc_mixup.torchscript.pt"
WEIGHTS_URL = f"https://dl.fbaipublicfiles.com/sscd-copy-detection/{WEIGHTS_FILE}"
SHORT_EDGE = 288
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class GeMPool(nn.Module):
    """Global generalised-mean pooling: (N, C, H, W) -> (N, C)."""

    def __init__(self, p: float = 3.0, eps: float = 1e-6) -> None:
        super().__init__()
        self.p, self.eps = p, eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(2).clamp(min=self.eps).pow(self.p).mean(dim=2).pow(1.0 / self.p)


class L2Normalise(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(x, dim=1)


def build_sscd_network(dims: int = 512) -> nn.Module:
    """The sscd_disc_mixup architecture with random weights (for tests and wiring checks)."""
    trunk = resnet50(weights=None)
    layers = [trunk.conv1, trunk.bn1, trunk.relu, trunk.maxpool]
    layers += [trunk.layer1, trunk.layer2, trunk.layer3, trunk.layer4]
    return nn.Sequential(
        *layers, GeMPool(3.0), nn.Linear(trunk.fc.in_features, dims), L2Normalise()
    ).eval()


def find_sscd_weights(weights_dir: Path | None) -> Path:
    dirs = search_dirs(weights_dir)
    found = find_file([WEIGHTS_FILE], dirs)
    if found is None:
        raise BenchError(
            f"SSCD weights not found: download {WEIGHTS_FILE} from {WEIGHTS_URL} "
            f"and put it in {dirs[0]}"
        )
    return found


def load_sscd(weights: Path, device: str = "cpu") -> nn.Module:
    try:
        return torch.jit.load(str(weights), map_location=device).eval()
    except (RuntimeError, OSError, ValueError) as err:
        raise load_error(weights, f"SSCD (expects the TorchScript {WEIGHTS_FILE})", err) from err


def preprocess(images: torch.Tensor, short_edge: int = SHORT_EDGE) -> torch.Tensor:
    """uint8 (N, H, W, C) -> float (N, 3, h, w) with min(h, w) = short_edge, normalised."""
    x = to_rgb_nchw(images).float() / 255.0
    height, width = x.shape[-2:]
    # As torchvision's Resize(int): the long edge is truncated, not rounded.
    if height <= width:
        size = (short_edge, int(short_edge * width / height))
    else:
        size = (int(short_edge * height / width), short_edge)
    x = F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=True)
    return normalise(x, IMAGENET_MEAN, IMAGENET_STD)


class SSCDExtractor(FeatureExtractor):
    name = "sscd"
    dim = 512
    batch_size = 32
    # Somepalli et al. 2023 call a sample a copy of a training image when their SSCD
    # cosine similarity exceeds this.
    copy_threshold = 0.5

    def __init__(
        self, network: nn.Module, weights: Path | None = None, device: str = "cpu"
    ) -> None:
        """`network`: SSCD (TorchScript or eager) mapping normalised (B, 3, H, W) to (B, 512)."""
        super().__init__(device)
        self.net = network.to(self.device).eval()
        self.weights = weights

    def _batch(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        features = self.net(preprocess(images))
        if features.ndim != 2 or features.shape[1] != self.dim:
            raise BenchError(
                f"SSCD network gave features of shape {tuple(features.shape)}, "
                f"expected (batch, {self.dim}): is {self.weights or 'it'} sscd_disc_mixup?"
            )
        return {"features": F.normalize(features.float(), dim=1)}

    def settings(self) -> dict:
        return {
            "name": self.name,
            "dim": self.dim,
            "network": "SSCD sscd_disc_mixup TorchScript: ResNet-50, GeM p=3, linear to 512",
            "library": library_version("torch"),
            "weights": file_fingerprint(self.weights) if self.weights else "injected",
            "resize": f"short edge to {SHORT_EDGE}, aspect kept, bilinear, antialias, float",
            "normalise": "ImageNet mean/std",
            "output": "L2-normalised by the extractor",
            "input": "uint8 RGB, grey repeated",
        }


def sscd_extractor(weights_dir: Path | None = None, device: str = "cpu") -> SSCDExtractor:
    weights = find_sscd_weights(weights_dir)
    return SSCDExtractor(load_sscd(weights, device), weights, device)
