"""The EDM2-style adapter: a stand-in `net(x, sigma, class_labels) -> x0` sampled with the
EDM Euler sampler on the Karras schedule, checked against that sampler written out."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bench.errors import BenchError
from bench.models.edm2 import SIGMA_MAX, SIGMA_MIN, EDM2Adapter, load_edm2
from bench.models.registry import load_model
from bench.sampler import SamplingSettings, generate_prompt, sample_batch
from bench.schedules import family, noise_level, time_fraction
from methods.base import BatchContext
from methods.registry import available, expand

SEEDS = [5, 6, 7]
SHAPE = (2, 4, 4)
DATA_STD = 0.5


class GaussianDenoiser(torch.nn.Module):
    """The exact denoiser of x0 ~ N(mean(label), DATA_STD^2 I), with EDM2's attributes;
    with label_dim 0 it is the unconditional N(0, DATA_STD^2 I)."""

    def __init__(self, label_dim: int = 3, seed: int = 0) -> None:
        super().__init__()
        self.img_channels, self.img_resolution, self.label_dim = SHAPE[0], SHAPE[1], label_dim
        means = torch.randn(max(label_dim, 1), int(np.prod(SHAPE)),
                            generator=torch.Generator().manual_seed(seed))
        self.register_buffer("means", means)

    def forward(self, x, sigma, class_labels=None):
        if class_labels is None or self.label_dim == 0:
            mean = torch.zeros_like(x)
        else:
            mean = class_labels @ self.means
        s2 = sigma.reshape(-1, 1, 1, 1) ** 2
        return (DATA_STD**2 * x + s2 * mean.reshape(x.shape)) / (DATA_STD**2 + s2)


def karras_sigmas(steps: int, rho: float = 7.0) -> list[float]:
    ramp = np.linspace(0, 1, steps)
    lo, hi = SIGMA_MIN ** (1 / rho), SIGMA_MAX ** (1 / rho)
    return [float(s) for s in (hi + ramp * (lo - hi)) ** rho] + [0.0]


def edm_euler(net, guide, label: int, w: float, steps: int) -> torch.Tensor:
    """EDM's deterministic Euler sampler with EDM2-style guidance, written out."""
    x = torch.stack([torch.randn(SHAPE, generator=torch.Generator().manual_seed(s))
                     for s in SEEDS]) * SIGMA_MAX
    labels = torch.nn.functional.one_hot(torch.tensor([label] * len(SEEDS)), 3).float()
    sigmas = karras_sigmas(steps)
    for cur, nxt in zip(sigmas[:-1], sigmas[1:], strict=True):
        s = torch.full((len(SEEDS),), cur)
        d = net(x, s, labels)
        if w != 1.0:
            d_ref = guide(x, s, torch.zeros_like(labels) if guide is net else None)
            d = d_ref + w * (d - d_ref)
        x = x + (nxt - cur) * (x - d) / cur
    return x


def run(model, w: float, steps: int, method: str = "none", params=None):
    prompt = model.prompts()[1]
    ctx = BatchContext(prompt.id, 0, [0, 1, 2], SEEDS, model.device)
    return sample_batch(model, expand(method, params)[0], prompt, ctx, SamplingSettings(w, steps))


def test_edm_scheduler_is_variance_exploding_with_a_karras_ramp():
    model = EDM2Adapter(GaussianDenoiser())
    scheduler = model.make_scheduler()
    model.set_timesteps(scheduler, 8)
    assert family(scheduler) == "ve"
    np.testing.assert_allclose(scheduler.sigmas.numpy(), karras_sigmas(8), rtol=1e-5)
    levels = [noise_level(scheduler, i, t) for i, t in enumerate(scheduler.timesteps)]
    assert all(a == 1.0 for a, _ in levels)
    np.testing.assert_allclose([s for _, s in levels], karras_sigmas(8)[:-1], rtol=1e-5)
    ts = [time_fraction(scheduler, i, t) for i, t in enumerate(scheduler.timesteps)]
    np.testing.assert_allclose(ts, np.linspace(1, 0, 8), atol=1e-5)


@pytest.mark.parametrize("w", [1.0, 2.0])
def test_none_reproduces_the_edm_euler_sampler(w):
    net = GaussianDenoiser()
    ours = run(EDM2Adapter(net), w, 6)
    torch.testing.assert_close(ours.x0, edm_euler(net, net, 1, w, 6), atol=1e-4, rtol=0)
    assert (ours.nfe == (6 if w == 1.0 else 12)).all()


def test_a_guide_network_takes_the_null_rows():
    net, guide = GaussianDenoiser(), GaussianDenoiser(label_dim=0, seed=1)
    model = EDM2Adapter(net, guide_net=guide)
    assert model.default_guidance == 1.2
    ours = run(model, 1.5, 6)
    torch.testing.assert_close(ours.x0, edm_euler(net, guide, 1, 1.5, 6), atol=1e-4, rtol=0)


def test_pixel_decode_and_a_uint8_decoder():
    net = GaussianDenoiser()
    x0 = torch.zeros(1, *SHAPE)
    assert torch.equal(EDM2Adapter(net).decode(x0), torch.full_like(x0, 0.5))
    decoder = EDM2Adapter(net, decoder=lambda z: torch.full_like(z, 255, dtype=torch.uint8))
    assert torch.equal(decoder.decode(x0), torch.ones_like(x0))


@pytest.mark.parametrize("method", sorted(available()))
def test_every_method_runs_on_the_edm2_adapter(method):
    model = EDM2Adapter(GaussianDenoiser(), guide_net=GaussianDenoiser(label_dim=0, seed=1))
    out = generate_prompt(model, expand(method)[0], model.prompts()[0], 4, 2, 0,
                          SamplingSettings(1.5, 3))
    assert np.isfinite(out["latents"]).all()


def test_spell_repels_on_the_edm2_adapter():
    model = EDM2Adapter(GaussianDenoiser())
    spell = run(model, 1.0, 6, "spell", {"radius": 5.0})
    assert spell.trace_active[:, 0].all()
    assert not torch.allclose(spell.x0, run(model, 1.0, 6).x0)


def test_missing_pickle_is_a_one_line_error(tmp_path, monkeypatch):
    monkeypatch.delenv("SPELLBENCH_EDM2_PATH", raising=False)
    for kwargs in ({}, {"model_path": str(tmp_path / "absent.pkl")}):
        with pytest.raises(BenchError) as err:
            load_edm2(**kwargs)
        assert "\n" not in str(err.value) and "SPELLBENCH_EDM2_PATH" in str(err.value)
    with pytest.raises(BenchError):
        load_model("edm2", model_path=str(tmp_path / "absent.pkl"))
