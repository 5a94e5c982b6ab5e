"""SSCD extractor on a random-weight TorchScript network of the sscd_disc_mixup architecture."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision.transforms.functional as TF
from torchvision.transforms import InterpolationMode

from bench.errors import BenchError
from metrics.extractors import available_extractors, get_extractor
from metrics.extractors import weights as weights_mod
from metrics.extractors.sscd import (
    WEIGHTS_FILE,
    WEIGHTS_URL,
    GeMPool,
    SSCDExtractor,
    build_sscd_network,
    sscd_extractor,
)


@pytest.fixture(autouse=True)
def empty_torch_hub(tmp_path, monkeypatch):
    """No weights from this machine's torch.hub cache leak into the tests."""
    monkeypatch.setattr(weights_mod, "torch_hub_checkpoints", lambda: tmp_path / "hub")


@pytest.fixture(scope="module")
def scripted(tmp_path_factory) -> tuple[Path, torch.nn.Module]:
    """A folder holding the scripted random network as sscd_disc_mixup, and the eager net."""
    torch.manual_seed(0)
    net = build_sscd_network()
    folder = tmp_path_factory.mktemp("sscd")
    torch.jit.save(torch.jit.script(net), str(folder / WEIGHTS_FILE))
    return folder, net


def _images(n: int, height: int, width: int, channels: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, size=(n, height, width, channels), dtype=np.uint8)


def _reference(net: torch.nn.Module, images: np.ndarray, normalise: bool = True) -> np.ndarray:
    """torchvision's Resize(288) + ToTensor + Normalize, written apart from the extractor."""
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255.0
    if x.shape[1] == 1:
        x = x.repeat(1, 3, 1, 1)
    x = TF.resize(x, [288], interpolation=InterpolationMode.BILINEAR, antialias=True)
    if normalise:
        x = TF.normalize(x, [0.485, 0.456, 0.406], [0.229, 0.224, 0.225])
    with torch.no_grad():
        out = net(x)
    return torch.nn.functional.normalize(out, dim=1).numpy()


def test_features_match_eager_network_on_reference_preprocessing(scripted):
    folder, net = scripted
    extractor = sscd_extractor(weights_dir=folder)
    assert isinstance(extractor.net, torch.jit.ScriptModule)
    # Upscaled RGB (long edge truncated), upscaled grey, and one downscaled (antialias).
    for images in (_images(3, 21, 32, 3), _images(2, 8, 8, 1, seed=1), _images(1, 600, 576, 3)):
        got = extractor.extract(images)["features"]
        want = _reference(net, images)
        assert got.shape == (len(images), 512) and got.dtype == np.float32
        np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
        np.testing.assert_allclose(got, want, atol=1e-5)
        # The random net must tell images and preprocessing apart, or the match proves little.
        assert len(images) == 1 or np.abs(got[0] - got[1]).max() > 1e-3
        assert np.abs(got - _reference(net, images, normalise=False)).max() > 1e-3


def test_grey_equals_the_image_repeated_to_rgb(scripted):
    extractor = sscd_extractor(weights_dir=scripted[0])
    grey = _images(2, 8, 8, 1, seed=2)
    got = extractor.extract(grey)["features"]
    rgb = extractor.extract(np.repeat(grey, 3, axis=-1))["features"]
    # Not bitwise: the expanded grey tensor takes other kernel paths than a copied one.
    np.testing.assert_allclose(got, rgb, atol=1e-6)


def test_missing_weights_name_file_url_and_folder(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(BenchError) as err:
        sscd_extractor(weights_dir=empty)
    message = str(err.value)
    assert "\n" not in message
    assert WEIGHTS_FILE in message and WEIGHTS_URL in message and str(empty) in message
    assert WEIGHTS_URL == (
        "https://dl.fbaipublicfiles.com/sscd-copy-detection/sscd_disc_mixup.torchscript.pt"
    )


@pytest.mark.parametrize("kind", ["garbage", "state_dict"])
def test_a_file_that_is_not_torchscript_is_one_line(tmp_path, kind):
    path = tmp_path / WEIGHTS_FILE
    if kind == "garbage":
        path.write_bytes(b"not a torchscript archive")
    else:  # e.g. the .torchvision.pt weights renamed
        torch.save({"fc.weight": torch.zeros(2, 2)}, path)
    with pytest.raises(BenchError, match="cannot load") as err:
        sscd_extractor(weights_dir=tmp_path)
    assert "\n" not in str(err.value) and str(path) in str(err.value)


def test_settings_follow_the_weights_file(scripted, tmp_path):
    path = tmp_path / WEIGHTS_FILE
    shutil.copy(scripted[0] / WEIGHTS_FILE, path)
    before = sscd_extractor(weights_dir=tmp_path).settings()
    module = torch.jit.load(str(path))
    with torch.no_grad():
        next(module.parameters()).add_(1.0)
    torch.jit.save(module, str(path))
    after = sscd_extractor(weights_dir=tmp_path).settings()
    assert before["weights"] != after["weights"] and before != after
    assert before["name"] == "sscd" and before["dim"] == 512


def test_registry_and_copy_threshold(scripted):
    assert "sscd" in available_extractors()
    extractor = get_extractor("sscd", weights_dir=scripted[0])
    assert isinstance(extractor, SSCDExtractor)
    assert getattr(extractor, "copy_threshold", None) == 0.5


def _tiny_net(dims: int) -> torch.nn.Module:
    return torch.nn.Sequential(
        torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(3, dims)
    )


def test_features_are_normalised_even_if_the_network_does_not():
    torch.manual_seed(0)
    extractor = SSCDExtractor(_tiny_net(512))
    out = extractor.extract(_images(2, 4, 4, 3))["features"]
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-6)
    assert extractor.settings()["weights"] == "injected"


def test_wrong_output_width_is_one_line():
    with pytest.raises(BenchError, match="expected") as err:
        SSCDExtractor(_tiny_net(10)).extract(_images(1, 4, 4, 3))
    assert "\n" not in str(err.value)


def test_gem_pooling_is_the_generalised_mean():
    x = torch.rand(2, 5, 3, 4)
    want = (x.clamp(min=1e-6) ** 3).mean(dim=(2, 3)) ** (1 / 3)
    torch.testing.assert_close(GeMPool(3.0)(x), want)
    net = build_sscd_network()
    assert isinstance(net[-3], GeMPool) and net[-3].p == 3.0
    assert (net[-2].in_features, net[-2].out_features) == (2048, 512)
