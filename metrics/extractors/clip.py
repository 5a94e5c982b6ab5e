"""CLIP image and text embeddings (open_clip), for the CLIP score.

Images are resized (shortest side, bicubic, antialiased) and centre-cropped to
the model's input size and normalised with its mean/std, as open_clip's own
preprocessing; prompts are truncated to the tokenizer's context length.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
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
)

DEFAULT_ARCH = "ViT-B-32"
DEFAULT_TAG = "openai"
WEIGHTS_NAMES = ("open_clip_model.safetensors", "open_clip_pytorch_model.bin")


def _hub_repo(arch: str, tag: str) -> str:
    import open_clip

    cfg = open_clip.get_pretrained_cfg(arch, tag)
    if not cfg:
        raise BenchError(f"unknown open_clip model {arch}/{tag}: see open_clip.list_pretrained()")
    return cfg.get("hf_hub", "").strip("/")


def find_clip_weights(
    weights_dir: Path | None, arch: str = DEFAULT_ARCH, tag: str = DEFAULT_TAG
) -> Path:
    """`weights_dir/open_clip/<arch>/<tag>/`, then the Hugging Face cache; never downloads."""
    repo = _hub_repo(arch, tag)
    local = Path(weights_dir) / "open_clip" / arch / tag if weights_dir is not None else None
    found = find_file(WEIGHTS_NAMES, [local]) if local is not None else None
    if found is None and repo:
        found = _from_hf_cache(repo)
    if found is None:
        where = local or f"the Hugging Face cache (or <weights_dir>/open_clip/{arch}/{tag}/)"
        raise BenchError(
            f"CLIP weights for {arch}/{tag} not found: download {WEIGHTS_NAMES[0]} from "
            f"https://huggingface.co/{repo} and put it in {where}"
        )
    return found


def _from_hf_cache(repo: str) -> Path | None:
    from huggingface_hub import try_to_load_from_cache

    for name in WEIGHTS_NAMES:
        hit = try_to_load_from_cache(repo, name)
        if isinstance(hit, str):
            return Path(hit)
    return None


def needs_quick_gelu(arch: str, tag: str) -> bool:
    """OpenAI's weights were trained with QuickGELU; a file path alone would not say so."""
    import open_clip

    return bool((open_clip.get_pretrained_cfg(arch, tag) or {}).get("quick_gelu", False))


def build_clip(weights: Path | None, arch: str = DEFAULT_ARCH, tag: str = DEFAULT_TAG) -> nn.Module:
    """open_clip model; random weights when `weights` is None."""
    import open_clip

    try:
        model = open_clip.create_model(
            arch,
            pretrained=str(weights) if weights else None,
            force_quick_gelu=needs_quick_gelu(arch, tag),
        )
    except (RuntimeError, OSError, KeyError) as err:
        raise load_error(weights, f"open_clip {arch}", err) from err
    return model.eval()


def preprocess(images: torch.Tensor, size: int, mean: tuple, std: tuple) -> torch.Tensor:
    """uint8 (N, H, W, C) -> float (N, 3, size, size): shortest side to `size`, centre crop."""
    x = to_rgb_nchw(images).float() / 255.0
    h, w = x.shape[-2:]
    scale = size / min(h, w)
    new = (max(size, round(h * scale)), max(size, round(w * scale)))
    x = F.interpolate(x, size=new, mode="bicubic", align_corners=False, antialias=True)
    top, left = (new[0] - size) // 2, (new[1] - size) // 2
    x = x[..., top : top + size, left : left + size].clamp(0.0, 1.0)
    return normalise(x, mean, std)


class ClipExtractor(FeatureExtractor):
    name = "clip"
    batch_size = 64

    def __init__(
        self,
        model: nn.Module,
        tokenizer,
        weights: Path | None = None,
        arch: str = DEFAULT_ARCH,
        tag: str = DEFAULT_TAG,
        device: str = "cpu",
    ) -> None:
        """`model`: an open_clip CLIP; `tokenizer`: open_clip.get_tokenizer(arch)."""
        super().__init__(device)
        self.model = model.to(self.device).eval()
        self.tokenizer = tokenizer
        self.weights, self.arch, self.tag = weights, arch, tag
        cfg = model.visual.preprocess_cfg
        self.size = int(cfg["size"][0] if isinstance(cfg["size"], tuple | list) else cfg["size"])
        self.mean, self.std = tuple(cfg["mean"]), tuple(cfg["std"])
        self.dim = int(model.text_projection.shape[1]) if _has_proj(model) else None

    def _batch(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        x = preprocess(images, self.size, self.mean, self.std)
        return {"features": self.model.encode_image(x)}

    @torch.no_grad()
    def text_features(self, prompts: list[str]) -> np.ndarray:
        tokens = self.tokenizer(prompts).to(self.device)  # truncates to the context length
        return self.model.encode_text(tokens).float().cpu().numpy()

    def settings(self) -> dict:
        return {
            "name": self.name,
            "dim": self.dim,
            "network": f"open_clip {self.arch} ({self.tag})",
            "library": library_version("open_clip_torch"),
            "weights": file_fingerprint(self.weights) if self.weights else "injected",
            "resize": f"shortest side to {self.size}, bicubic, antialias, centre crop",
            "normalise": {"mean": self.mean, "std": self.std},
        }


def _has_proj(model: nn.Module) -> bool:
    proj = getattr(model, "text_projection", None)
    return isinstance(proj, torch.Tensor) and proj.ndim == 2


def clip_extractor(
    weights_dir: Path | None = None,
    device: str = "cpu",
    arch: str = DEFAULT_ARCH,
    tag: str = DEFAULT_TAG,
) -> ClipExtractor:
    import open_clip

    weights = find_clip_weights(weights_dir, arch, tag)
    model = build_clip(weights, arch, tag)
    return ClipExtractor(model, open_clip.get_tokenizer(arch), weights, arch, tag, device)
