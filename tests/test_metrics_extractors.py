"""Extractor wrappers on the real network code with random weights (no download)."""

from unittest import mock

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from bench.errors import BenchError
from metrics.extractors import available_extractors, get_extractor
from metrics.extractors import clip as clip_mod
from metrics.extractors import dinov2 as dinov2_mod
from metrics.extractors import inception as inception_mod
from metrics.extractors import weights as weights_mod

SMALL_DINO = "vit_small_patch14_dinov2"


@pytest.fixture(autouse=True)
def empty_torch_hub(tmp_path, monkeypatch):
    """No weights from this machine's caches leak into the tests."""
    monkeypatch.setattr(weights_mod, "torch_hub_checkpoints", lambda: tmp_path / "hub")
    monkeypatch.setattr(clip_mod, "_from_hf_cache", lambda repo: None)


def _images(n=2, size=8, channels=1, seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, size=(n, size, size, channels), dtype=np.uint8)


class _Spy(torch.nn.Module):
    """Records what the wrapper hands to the network."""

    def __init__(self, net):
        super().__init__()
        self.net, self.seen = net, []
        self.features_list = getattr(net, "features_list", None)
        self.num_features = getattr(net, "num_features", None)

    def forward(self, x):
        self.seen.append(x)
        self.returned = self.net(x)
        return self.returned


# --- registry and pixels ----------------------------------------------------------


def test_registry_lists_all_and_rejects_unknown():
    assert {"digits", "pixels", "inception", "dinov2", "clip"} <= set(available_extractors())
    with pytest.raises(BenchError, match="unknown feature extractor"):
        get_extractor("nope")


def test_pixels_are_flattened_unit_range():
    images = _images(3, 8, 3)
    out = get_extractor("pixels").extract(images)["features"]
    assert out.shape == (3, 192) and out.dtype == np.float32
    assert out == pytest.approx(images.reshape(3, -1) / 255.0)


def test_extractors_reject_float_images():
    with pytest.raises(BenchError, match="uint8"):
        get_extractor("pixels").extract(np.zeros((1, 8, 8, 1), np.float64))


# --- inception ----------------------------------------------------------------------


def _random_inception():
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3 as Net

    with (
        mock.patch.object(Net, "load_state_dict"),
        mock.patch("torch_fidelity.feature_extractor_inceptionv3.torch.load", return_value={}),
    ):
        return Net("inception-v3-compat", ["2048", "logits_unbiased"], "random")


@pytest.fixture(scope="module")
def inception_net():
    torch.manual_seed(0)
    return _random_inception()


def test_inception_gets_uint8_rgb_and_returns_2048(inception_net):
    spy = _Spy(inception_net)
    images = _images(1, 8, 1)
    out = inception_mod.InceptionExtractor(spy).extract(images)["features"]
    assert out.shape == (1, 2048) and out.dtype == np.float32
    seen = spy.seen[0]
    assert seen.dtype == torch.uint8 and seen.shape == (1, 3, 8, 8)  # resize is the net's own
    for c in range(3):  # grey repeated to RGB
        assert torch.equal(seen[0, c], torch.from_numpy(images[0, :, :, 0]))
    assert np.array_equal(out, spy.returned[0].numpy())


def test_inception_resizes_like_tf_bilinear_without_antialias():
    """The TF1 bilinear torch-fidelity uses differs from torch's antialiased resize."""
    from torch_fidelity.interpolate_compat_tensorflow import (
        interpolate_bilinear_2d_like_tensorflow1x,
    )

    x = torch.from_numpy(_images(1, 512, 3)).permute(0, 3, 1, 2).float()
    tf = interpolate_bilinear_2d_like_tensorflow1x(x, size=(299, 299), align_corners=False)
    aa = F.interpolate(x, size=(299, 299), mode="bilinear", antialias=True)
    assert (tf - aa).abs().mean() > 1.0


def test_inception_missing_weights_names_file_and_place(tmp_path):
    with pytest.raises(BenchError) as err:
        get_extractor("inception", weights_dir=tmp_path / "w")
    message = str(err.value)
    assert "pt_inception-2015-12-05-6726825d.pth" in message
    assert "https://" in message and str(tmp_path / "w") in message and "\n" not in message


def test_inception_loads_weights_file_from_weights_dir(tmp_path, inception_net):
    path = tmp_path / "pt_inception-2015-12-05-6726825d.pth"
    torch.save(inception_net.state_dict(), path)
    extractor = get_extractor("inception", weights_dir=tmp_path)
    loaded, saved = extractor.net.state_dict(), inception_net.state_dict()
    assert loaded.keys() == saved.keys()
    assert all(torch.equal(loaded[k], saved[k]) for k in saved)
    assert extractor.settings()["weights"]["size"] == path.stat().st_size


def test_inception_rejects_a_wrong_weights_file(tmp_path):
    torch.save({"not": torch.zeros(1)}, tmp_path / "pt_inception-2015-12-05-6726825d.pth")
    with pytest.raises(BenchError, match="cannot load"):
        get_extractor("inception", weights_dir=tmp_path)


# --- dinov2 -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small_dino():
    torch.manual_seed(0)
    return dinov2_mod.build_dinov2(None, arch=SMALL_DINO)


def test_dinov2_default_arch_is_vit_large_with_1024_cls():
    import timm

    with torch.device("meta"):
        net = timm.create_model(dinov2_mod.ARCH, pretrained=False, img_size=224, num_classes=0)
    assert net.num_features == 1024 and net.patch_embed.patch_size == (14, 14)


def test_dinov2_preprocess_squashes_to_224_bicubic_antialias_imagenet_norm():
    images = np.full((2, 10, 30, 3), 128, np.uint8)  # non-square: squashed, not cropped
    x = dinov2_mod.preprocess(torch.from_numpy(images))
    assert x.shape == (2, 3, 224, 224) and x.dtype == torch.float32
    mean, std = torch.tensor(dinov2_mod.IMAGENET_MEAN), torch.tensor(dinov2_mod.IMAGENET_STD)
    assert x[0, :, 100, 100] == pytest.approx(((128 / 255 - mean) / std).tolist(), abs=1e-5)
    # antialiased bicubic: a fine checkerboard averages to grey instead of aliasing
    board = np.indices((448, 448)).sum(0) % 2 * 255
    board = np.repeat(board[None, :, :, None], 3, axis=3).astype(np.uint8)
    y = dinov2_mod.preprocess(torch.from_numpy(board)) * std.view(1, 3, 1, 1)
    assert float(y.std()) < 0.05
    ref = torch.from_numpy(board).permute(0, 3, 1, 2).float() / 255
    want = F.interpolate(ref, size=(224, 224), mode="bicubic", antialias=True)
    assert torch.allclose(y + mean.view(1, 3, 1, 1), want, atol=1e-5)


def test_dinov2_wrapper_gives_cls_token(small_dino):
    spy = _Spy(small_dino)
    extractor = dinov2_mod.Dinov2Extractor(spy, arch=SMALL_DINO)
    tokens = []
    hook = small_dino.norm.register_forward_hook(lambda m, i, o: tokens.append(o))
    try:
        out = extractor.extract(_images(2, 8, 1), batch_size=1)["features"]
    finally:
        hook.remove()
    assert out.shape == (2, 384) == (2, extractor.dim)
    assert spy.seen[0].shape == (1, 3, 224, 224) and spy.seen[0].dtype == torch.float32
    cls = torch.cat([t[:, 0] for t in tokens]).numpy()  # CLS token after the final norm
    assert np.array_equal(out, cls)


def test_dinov2_loads_a_torch_hub_checkpoint(tmp_path, small_dino):
    """Hub layout: pos_embed for 518 px (37 x 37 + 1) and a mask_token; timm adapts it."""
    import timm

    hub = timm.create_model(SMALL_DINO, pretrained=False, num_classes=0)  # 518 px
    state = {**hub.state_dict(), "mask_token": torch.zeros(1, 384)}
    assert state["pos_embed"].shape[1] == 37 * 37 + 1
    path = tmp_path / "dinov2_vits14_pretrain.pth"
    torch.save(state, path)
    net = dinov2_mod.build_dinov2(path, arch=SMALL_DINO)
    assert net.pos_embed.shape[1] == 16 * 16 + 1
    assert torch.equal(net.blocks[0].attn.qkv.weight, hub.blocks[0].attn.qkv.weight)


def test_dinov2_missing_weights_is_one_line(tmp_path):
    with pytest.raises(BenchError) as err:
        get_extractor("dinov2", weights_dir=tmp_path)
    assert "dinov2_vitl14_pretrain.pth" in str(err.value) and "\n" not in str(err.value)


# --- clip ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def clip_extractor():
    import open_clip

    torch.manual_seed(0)
    model = clip_mod.build_clip(None, "ViT-B-32", "laion2b_s34b_b79k")
    return clip_mod.ClipExtractor(model, open_clip.get_tokenizer("ViT-B-32"))


def test_clip_image_and_text_embeddings(clip_extractor):
    images = clip_extractor.extract(_images(1, 8, 1))["features"]
    texts = clip_extractor.text_features(["a photo of a seven", "word " * 200])  # truncated
    assert images.shape == (1, 512) and texts.shape == (2, 512)
    assert clip_extractor.dim == 512


def test_clip_preprocess_shortest_side_and_centre_crop(clip_extractor):
    e = clip_extractor
    images = np.zeros((1, 20, 40, 3), np.uint8)
    images[:, :, 15:25] = 255  # the crop keeps columns 10..29: white centre, black edges
    x = clip_mod.preprocess(torch.from_numpy(images), e.size, e.mean, e.std)
    assert x.shape == (1, 3, 224, 224)
    white = (1 - torch.tensor(e.mean)) / torch.tensor(e.std)
    assert x[0, :, 112, 112] == pytest.approx(white.tolist(), abs=1e-4)
    black = -torch.tensor(e.mean) / torch.tensor(e.std)
    assert x[0, :, 112, 0] == pytest.approx(black.tolist(), abs=1e-4)


def test_clip_openai_tag_uses_quick_gelu():
    assert clip_mod.needs_quick_gelu("ViT-B-32", "openai")
    assert not clip_mod.needs_quick_gelu("ViT-B-32", "laion2b_s34b_b79k")


def test_clip_missing_weights_is_one_line(tmp_path):
    with pytest.raises(BenchError) as err:
        get_extractor("clip", weights_dir=tmp_path)
    message = str(err.value)
    assert "open_clip_model.safetensors" in message and "huggingface.co" in message
    assert "\n" not in message
