"""FD_DINOv2 / prdc / Vendi features: DINOv2 ViT-L/14 CLS token, as dgm-eval.

Inputs are squashed (no crop) to 224 with antialiased bicubic resizing and
ImageNet-normalised. The network is timm's; it loads either the torch.hub
checkpoint (dinov2_vitl14_pretrain.pth) or timm's own weights from a local file,
and timm resamples the position embedding to the 16 x 16 grid of a 224 input.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from bench.errors import BenchError
from metrics.extractors.base import FeatureExtractor, normalise, to_rgb_nchw
from metrics.extractors.weights import (
    file_fingerprint,
    find_file,
    library_version,
    load_error,
    search_dirs,
)

ARCH = "vit_large_patch14_dinov2"
IMAGE_SIZE = 224
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
WEIGHTS_FILES = {
    ARCH: ("dinov2_vitl14_pretrain.pth", "vit_large_patch14_dinov2.lvd142m.safetensors"),
}
WEIGHTS_URL = "https://dl.fbaipublicfiles.com/dinov2/dinov2_vitl14/dinov2_vitl14_pretrain.pth"


def find_dinov2_weights(weights_dir: Path | None, arch: str = ARCH) -> Path:
    dirs = search_dirs(weights_dir)
    names = WEIGHTS_FILES.get(arch, (f"{arch}.safetensors", f"{arch}.pth"))
    found = find_file(names, dirs)
    if found is None:
        raise BenchError(
            f"DINOv2 weights not found: download {WEIGHTS_URL} and put it in {dirs[0]}"
            if arch == ARCH
            else f"DINOv2 weights for {arch} not found: put {names[0]} in {dirs[0]}"
        )
    return found


def build_dinov2(weights: Path | None, arch: str = ARCH) -> nn.Module:
    """timm ViT returning the CLS token at 224 input; random weights when `weights` is None."""
    import timm

    kwargs = {"img_size": IMAGE_SIZE, "num_classes": 0}
    if weights is None:
        return timm.create_model(arch, pretrained=False, **kwargs).eval()
    try:
        return timm.create_model(
            arch, pretrained=True, pretrained_cfg_overlay={"file": str(weights)}, **kwargs
        ).eval()
    except (RuntimeError, OSError, KeyError) as err:
        raise load_error(weights, arch, err) from err


def preprocess(images: torch.Tensor, size: int = IMAGE_SIZE) -> torch.Tensor:
    """uint8 (N, H, W, C) -> float (N, 3, size, size), squash-resized and normalised."""
    x = to_rgb_nchw(images).float() / 255.0
    x = F.interpolate(x, size=(size, size), mode="bicubic", align_corners=False, antialias=True)
    return normalise(x, IMAGENET_MEAN, IMAGENET_STD)


class Dinov2Extractor(FeatureExtractor):
    name = "dinov2"
    batch_size = 32

    def __init__(
        self, network: nn.Module, weights: Path | None = None, arch: str = ARCH, device: str = "cpu"
    ) -> None:
        """`network`: a timm DINOv2 ViT built for 224 inputs whose forward gives the CLS token."""
        super().__init__(device)
        self.net = network.to(self.device).eval()
        self.dim = int(network.num_features)
        self.weights, self.arch = weights, arch

    def _batch(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"features": self.net(preprocess(images))}

    def settings(self) -> dict:
        return {
            "name": self.name,
            "dim": self.dim,
            "network": f"timm {self.arch}, CLS token after the final norm",
            "library": library_version("timm"),
            "weights": file_fingerprint(self.weights) if self.weights else "injected",
            "resize": f"squash to {IMAGE_SIZE}, bicubic, antialias",
            "normalise": "ImageNet mean/std",
        }


def dinov2_extractor(
    weights_dir: Path | None = None, device: str = "cpu", arch: str = ARCH
) -> Dinov2Extractor:
    weights = find_dinov2_weights(weights_dir, arch)
    return Dinov2Extractor(build_dinov2(weights, arch), weights, arch, device)
