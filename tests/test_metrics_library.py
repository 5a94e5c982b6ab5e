"""KID, Inception Score and FD-infinity against torchmetrics, dgm-eval and closed forms."""

from __future__ import annotations

from unittest import mock

import numpy as np
import pytest
import torch
from torch import nn

from metrics.extractors import inception as inception_mod
from metrics.fd_inf import fd_inf_key, fd_infinity, subset_indices, subset_sizes
from metrics.frechet import GaussianAccumulator, frechet_distance
from metrics.inception_score import inception_score, is_key, is_spec
from metrics.kid import kernel_inception_distance, kid_key, kid_spec
from metrics.values import Undefined


def _memmap(tmp_path, name: str, x: np.ndarray) -> np.memmap:
    path = tmp_path / f"{name}.npy"
    out = np.lib.format.open_memmap(path, mode="w+", dtype=x.dtype, shape=x.shape)
    out[:] = x
    out.flush()
    del out
    return np.load(path, mmap_mode="r")


def test_keys_and_directions():
    assert (kid_key("inception"), kid_key("dinov2")) == ("kid", "kid_dinov2")
    assert (is_key("inception"), is_key("digits")) == ("inception_score", "inception_score_digits")
    assert (fd_inf_key("inception"), fd_inf_key("clip")) == ("fd_inf", "fd_inf_clip")
    assert not kid_spec("kid").higher_is_better and kid_spec("kid_dinov2").key == "kid_dinov2"
    assert is_spec("inception_score").higher_is_better


# --- KID --------------------------------------------------------------------------


def _unbiased_mmd2(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased MMD^2 with k(a, b) = (a.b / d + 1)^3, term by term."""
    m, d = len(x), x.shape[1]

    def k(a, b):
        return (a @ b / d + 1.0) ** 3

    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j)
    yy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j)
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(m))
    return xx / (m * (m - 1)) + yy / (m * (m - 1)) - 2.0 * xy / m**2


def test_kid_equals_direct_unbiased_mmd_on_tiny_data():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(6, 3)), rng.normal(0.7, 1.3, size=(6, 3))
    mean, std = kernel_inception_distance(x, y, subsets=4, subset_size=6)
    assert mean == pytest.approx(_unbiased_mmd2(x, y), rel=1e-10)
    assert std == pytest.approx(0.0, abs=1e-12)  # every subset is the whole set


@pytest.mark.filterwarnings("ignore:Metric `Kernel Inception Distance` will save")
def test_kid_equals_torchmetrics_with_whole_set_subsets():
    from torchmetrics.image.kid import KernelInceptionDistance

    rng = np.random.default_rng(1)
    gen, ref = rng.normal(0.3, 1.2, size=(80, 16)), rng.normal(size=(80, 16))
    metric = KernelInceptionDistance(feature=nn.Identity(), subsets=3, subset_size=80)
    metric.update(torch.from_numpy(ref), real=True)
    metric.update(torch.from_numpy(gen), real=False)
    want_mean, want_std = (float(v) for v in metric.compute())
    mean, std = kernel_inception_distance(gen, ref, subsets=3, subset_size=1000)
    assert mean == pytest.approx(want_mean, rel=1e-6)
    assert std == pytest.approx(want_std, abs=1e-9)


def test_kid_undefined_for_one_sample():
    one, many = np.zeros((1, 4)), np.zeros((10, 4))
    assert isinstance(kernel_inception_distance(one, many), Undefined)
    assert isinstance(kernel_inception_distance(many, one), Undefined)


def test_kid_on_memmap_equals_in_memory(tmp_path):
    rng = np.random.default_rng(2)
    gen = rng.normal(size=(120, 8)).astype(np.float32)
    ref = rng.normal(0.2, 1.0, size=(90, 8)).astype(np.float32)
    want = kernel_inception_distance(gen, ref, subsets=5, subset_size=50)
    got = kernel_inception_distance(
        _memmap(tmp_path, "gen", gen), _memmap(tmp_path, "ref", ref), subsets=5, subset_size=50
    )
    assert got == want


# --- Inception Score --------------------------------------------------------------


def _softmax(logits: np.ndarray) -> np.ndarray:
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _dgm_eval_probs() -> np.ndarray:
    rng = np.random.default_rng(7)
    return _softmax(2.0 * rng.normal(size=(1000, 20)))


def test_softmax_of_log_probs_recovers_probs():
    p = _dgm_eval_probs()
    assert torch.from_numpy(np.log(p)).softmax(dim=1).numpy() == pytest.approx(p, rel=1e-12)


@pytest.mark.filterwarnings("ignore:Metric `InceptionScore` will save")
@pytest.mark.filterwarnings("ignore:std\\(\\)")  # its std of one split is NaN
def test_is_equals_torchmetrics_with_one_split():
    from torchmetrics.image.inception import InceptionScore

    p = _dgm_eval_probs()[:300]
    metric = InceptionScore(feature=nn.Identity(), splits=1)
    metric.update(torch.from_numpy(np.log(p)))  # it takes logits and applies softmax
    want = float(metric.compute()[0])
    mean, std = inception_score(p, splits=1)
    assert mean == pytest.approx(want, rel=1e-6) and std == 0.0


def test_is_equals_dgm_eval_with_ten_splits():
    # dgm-eval (layer6ai-labs/dgm-eval, commit 74c79f7), dgm_eval/metrics/inception_score.py:
    # calculate_score(p, splits=10, N=1000) for p = softmax(2 * default_rng(7).normal(size=
    # (1000, 20))), run once outside the tests. It shuffles with RandomState(2020).permutation
    # as torch-fidelity does, and 1000 splits evenly into 10, so the splits are the same.
    dgm_mean, dgm_std = 3.2239990534824607, 0.10405702583577053
    mean, std = inception_score(_dgm_eval_probs(), splits=10)
    assert mean == pytest.approx(dgm_mean, rel=1e-6)
    assert std == pytest.approx(dgm_std, rel=1e-6)


def test_is_uniform_gives_one_and_balanced_one_hot_gives_classes():
    mean, _ = inception_score(np.full((100, 7), 1 / 7), splits=10)
    assert mean == pytest.approx(1.0, abs=1e-12)
    one_hot = np.repeat(np.eye(5), 20, axis=0)
    mean, _ = inception_score(one_hot, splits=1)
    assert mean == pytest.approx(5.0, rel=1e-10)


def test_is_undefined_for_too_few_samples_or_non_probabilities():
    assert isinstance(inception_score(np.full((9, 3), 1 / 3), splits=10), Undefined)
    assert isinstance(inception_score(np.full((20, 3), 0.3), splits=2), Undefined)
    bad = np.full((20, 2), 0.5)
    bad[0] = (1.5, -0.5)
    assert isinstance(inception_score(bad, splits=2), Undefined)


# --- FD-infinity ------------------------------------------------------------------


def _dgm_eval_fd_data() -> tuple[np.ndarray, GaussianAccumulator]:
    rng = np.random.default_rng(3)
    ref = rng.normal(size=(3000, 4))
    gen = 1.3 * rng.normal(size=(400, 4)) + 0.5
    acc = GaussianAccumulator()
    acc.update(ref)
    return gen, acc


def test_subset_sizes_follow_dgm_eval_linspace():
    want = [40, 65, 91, 117, 142, 168, 194, 220, 245, 271, 297, 322, 348, 374, 400]
    assert subset_sizes(400).tolist() == want
    assert subset_sizes(100_000, 3).tolist() == [5000, 52500, 100000]


def test_fd_inf_equals_dgm_eval_on_the_same_subsets():
    # dgm-eval (layer6ai-labs/dgm-eval, commit 74c79f7), dgm_eval/metrics/fd.py:
    # compute_FD_infinity(ref, gen, num_points=15) on the data of _dgm_eval_fd_data, run once
    # outside the tests with its np.random.default_rng().choice forced to return
    # gen[subset_indices(400, subset_sizes(400), seed=0)[i]] and tqdm stubbed; it fits
    # sklearn's LinearRegression on 1/N and computes FD with scipy's sqrtm.
    dgm_fd_inf = 1.4153834023390968
    gen, ref = _dgm_eval_fd_data()
    assert fd_infinity(gen, ref, points=15, seed=0) == pytest.approx(dgm_fd_inf, rel=1e-6)


def test_fd_inf_intercept_of_the_line_through_subset_fds():
    gen, ref = _dgm_eval_fd_data()
    sizes = subset_sizes(len(gen))
    fds = []
    for rows in subset_indices(len(gen), sizes, seed=5):
        x = gen[rows]
        sub = (x.mean(0), np.cov(x, rowvar=False), ref.mean(), ref.covariance())
        fds.append(frechet_distance(*sub))
    _slope, intercept = np.polyfit(1.0 / sizes, fds, 1)
    assert fd_infinity(gen, ref, seed=5, chunk=7) == pytest.approx(intercept, rel=1e-9)


def test_fd_inf_undefined_when_smallest_subset_or_reference_is_too_small():
    gen, ref = _dgm_eval_fd_data()
    small = fd_infinity(gen[:30], ref)  # smallest subset: 3 rows for 4-d features
    assert isinstance(small, Undefined) and "smallest" in small.reason
    tiny_ref = GaussianAccumulator()
    tiny_ref.update(gen[:4])
    assert isinstance(fd_infinity(gen, tiny_ref), Undefined)


def test_fd_inf_on_memmap_equals_in_memory(tmp_path):
    gen, ref = _dgm_eval_fd_data()
    want = fd_infinity(gen, ref, chunk=50)
    assert fd_infinity(_memmap(tmp_path, "gen", gen), ref, chunk=50) == want
    assert fd_infinity(gen, ref, chunk=4096) == pytest.approx(want, rel=1e-9)


def test_fd_inf_removes_most_of_the_sample_size_bias():
    rng = np.random.default_rng(11)
    ref = GaussianAccumulator()
    for _ in range(20):
        ref.update(rng.normal(size=(10_000, 8)))
    gen = np.random.default_rng(100).normal(size=(2000, 8))
    full = GaussianAccumulator()
    full.update(gen)
    fd_full = full.frechet(ref)
    assert fd_full > 0.005  # FD_N's bias at N = 2000
    assert abs(fd_infinity(gen, ref, seed=0)) < fd_full / 4


# --- Inception probabilities ------------------------------------------------------


def test_inception_probs_are_softmax_of_logits_unbiased():
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3 as Net

    torch.manual_seed(0)
    with (
        mock.patch.object(Net, "load_state_dict"),
        mock.patch("torch_fidelity.feature_extractor_inceptionv3.torch.load", return_value={}),
    ):
        net = Net("inception-v3-compat", ["logits_unbiased", "2048"], "random")
    images = np.random.default_rng(0).integers(0, 256, size=(2, 16, 16, 3), dtype=np.uint8)
    extractor = inception_mod.InceptionExtractor(net)
    out = extractor.extract(images)
    with torch.no_grad():
        logits, pool = net(torch.from_numpy(images).permute(0, 3, 1, 2).contiguous())
    probs = out["probs"]
    assert probs.shape == (2, 1008) and out["features"].shape == (2, 2048)
    assert probs.sum(axis=1) == pytest.approx(1.0, abs=1e-5)
    assert probs == pytest.approx(logits.softmax(dim=1).numpy(), rel=1e-5, abs=1e-9)
    assert np.array_equal(out["features"], pool.numpy())
    biased = (pool @ net.fc.weight.T + net.fc.bias).softmax(dim=1).numpy()
    assert not np.allclose(probs, biased, rtol=1e-3, atol=0)  # the fc bias is left out
    assert "probs" in extractor.settings()["outputs"]
