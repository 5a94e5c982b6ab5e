"""The EDM2-style adapter: a stand-in `net(x, sigma, class_labels) -> x0` sampled with the
EDM Euler sampler on the Karras schedule, checked against that sampler written out."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import sample_or_refuse

from bench.errors import BenchError
from bench.models.edm2 import SIGMA_MAX, SIGMA_MIN, EDM2Adapter, load_edm2
from bench.models.registry import load_model
from bench.sampler import SamplingSettings, sample_batch
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


class TinyEDM2(torch.nn.Module):
    """A random network shaped like an EDM2 `Precond`: EDM preconditioning around a
    `unet` whose class embedding is `unet.emb_label(one_hot * sqrt(label_dim))`."""

    def __init__(self, label_dim: int = 3, cemb: int = 8, seed: int = 0) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.img_channels, self.img_resolution, self.label_dim = SHAPE[0], SHAPE[1], label_dim
        self.unet = torch.nn.Module()
        self.unet.emb_label = torch.nn.Linear(label_dim, cemb, bias=False)
        self.unet.emb_noise = torch.nn.Linear(1, cemb)
        self.unet.inner = torch.nn.Conv2d(SHAPE[0] + cemb, SHAPE[0], 3, padding=1)

    def forward(self, x, sigma, class_labels=None):
        sigma = sigma.to(torch.float32).reshape(-1, 1, 1, 1)
        c_in, c_skip = 1 / (DATA_STD**2 + sigma**2).sqrt(), DATA_STD**2 / (DATA_STD**2 + sigma**2)
        c_out = sigma * DATA_STD / (sigma**2 + DATA_STD**2).sqrt()
        emb = self.unet.emb_noise(sigma.log().reshape(-1, 1) / 4)
        emb = emb + self.unet.emb_label(class_labels * np.sqrt(self.label_dim))
        planes = emb[:, :, None, None].expand(-1, -1, *SHAPE[1:])
        f = self.unet.inner(torch.cat([c_in * x, planes], dim=1))
        return c_skip * x + c_out * f


def karras_sigmas(steps: int, rho: float = 7.0) -> list[float]:
    ramp = np.linspace(0, 1, steps)
    lo, hi = SIGMA_MIN ** (1 / rho), SIGMA_MAX ** (1 / rho)
    return [float(s) for s in (hi + ramp * (lo - hi)) ** rho] + [0.0]


def edm_sampler(net, guide, label: int, w: float, steps: int, heun: bool = True):
    """EDM2's deterministic sampler (S_churn 0) with its guidance D_g + w (D - D_g), the
    guide given the same labels, written out from the EDM and EDM2 papers: Euler steps,
    each but the last followed by Heun's correction at the step's end point."""
    x = torch.stack([torch.randn(SHAPE, generator=torch.Generator().manual_seed(s))
                     for s in SEEDS]) * SIGMA_MAX
    labels = torch.nn.functional.one_hot(torch.tensor([label] * len(SEEDS)), 3).float()

    def denoise(x, sigma):
        s = torch.full((len(SEEDS),), sigma)
        d = net(x, s, labels)
        if w == 1.0:
            return d
        d_ref = guide(x, s, torch.zeros_like(labels) if guide is net else labels)
        return d_ref + w * (d - d_ref)

    sigmas = karras_sigmas(steps)
    for i, (cur, nxt) in enumerate(zip(sigmas[:-1], sigmas[1:], strict=True)):
        d_cur = (x - denoise(x, cur)) / cur
        x_next = x + (nxt - cur) * d_cur
        if heun and i < steps - 1:
            d_prime = (x_next - denoise(x_next, nxt)) / nxt
            x_next = x + (nxt - cur) * (0.5 * d_cur + 0.5 * d_prime)
        x = x_next
    return x


def run(model, w: float, steps: int, method: str = "none", params=None, scheduler="native"):
    prompt = model.prompts()[1]
    ctx = BatchContext(prompt.id, 0, [0, 1, 2], SEEDS, model.device)
    settings = SamplingSettings(w, steps, scheduler)
    return sample_batch(model, expand(method, params)[0], prompt, ctx, settings)


def test_edm_scheduler_is_heun_on_a_karras_ramp():
    model = EDM2Adapter(GaussianDenoiser())
    scheduler = model.make_scheduler()
    model.set_timesteps(scheduler, 8)
    assert family(scheduler) == "ve"
    assert len(scheduler.timesteps) == 15  # 8 Euler evaluations, 7 corrections
    np.testing.assert_allclose(scheduler.sigmas.unique_consecutive().numpy(), karras_sigmas(8),
                               rtol=1e-5)
    levels = [noise_level(scheduler, i, t) for i, t in enumerate(scheduler.timesteps)]
    assert all(a == 1.0 for a, _ in levels)
    ts = [time_fraction(scheduler, i, t) for i, t in enumerate(scheduler.timesteps)]
    np.testing.assert_allclose(ts[::2], np.linspace(1, 0, 8), atol=1e-5)


@pytest.mark.parametrize("w", [1.0, 2.0])
@pytest.mark.parametrize("scheduler", ["native", "euler"])
def test_none_reproduces_the_edm_sampler(w, scheduler):
    net = GaussianDenoiser()
    ours = run(EDM2Adapter(net), w, 6, scheduler=scheduler)
    heun = scheduler == "native"
    torch.testing.assert_close(ours.x0, edm_sampler(net, net, 1, w, 6, heun), atol=1e-4, rtol=0)
    calls = 11 if heun else 6
    assert (ours.nfe == (calls if w == 1.0 else 2 * calls)).all()


def test_an_edm2_network_reproduces_the_reference_with_its_guide_given_the_labels():
    net, guide = TinyEDM2(seed=0), TinyEDM2(cemb=6, seed=1)
    model = EDM2Adapter(net, guide_net=guide)
    assert model.default_guidance == 1.2 and model.default_steps == 32
    ours = run(model, 1.5, 6)
    with torch.no_grad():
        expected = edm_sampler(net, guide, 1, 1.5, 6)
    torch.testing.assert_close(ours.x0, expected, atol=1e-4, rtol=1e-5)


def test_methods_see_the_class_embedding_of_an_edm2_network():
    net = TinyEDM2()
    model = EDM2Adapter(net)
    prompt = model.prompts()[2]
    with torch.no_grad():
        expected = net.unet.emb_label(torch.tensor([[0.0, 0.0, 3**0.5]]))
    torch.testing.assert_close(model.condition([prompt]), expected)
    assert torch.equal(model.null_condition(2), torch.zeros(2, 8))
    guided = EDM2Adapter(net, guide_net=TinyEDM2(cemb=6, seed=1))
    assert guided.guide_condition([prompt]).shape == (1, 6)


def test_cads_noises_the_class_embedding_the_network_receives():
    net = TinyEDM2()
    model = EDM2Adapter(net)
    lookups, received = [], []
    net.unet.emb_label.register_forward_hook(lambda m, i, o: lookups.append(o))
    real_call = model._call

    def spy(network, x, sigma, cond):
        received.append(cond.clone())
        return real_call(network, x, sigma, cond)

    model._call = spy
    cads = run(model, 2.0, 4, "cads", {"tau1": 0.0, "tau2": 0.5})
    # one lookup each for the prompt and the null label, none inside the loop
    assert len(lookups) == 2 and cads.x0.isfinite().all()
    first = received[0].chunk(2)[1]  # the conditional rows of step 0 (t = 1: pure noise)
    assert first.shape == (3, 8) and not torch.allclose(first, lookups[0].expand(3, -1))
    assert not torch.allclose(cads.x0, run(EDM2Adapter(net), 2.0, 4).x0)


def test_a_guide_network_takes_the_guiding_rows():
    net, guide = GaussianDenoiser(), GaussianDenoiser(label_dim=0, seed=1)
    model = EDM2Adapter(net, guide_net=guide)
    ours = run(model, 1.5, 6)
    torch.testing.assert_close(ours.x0, edm_sampler(net, guide, 1, 1.5, 6), atol=1e-4, rtol=0)


def test_pixel_decode_and_a_uint8_decoder():
    net = GaussianDenoiser()
    x0 = torch.zeros(1, *SHAPE)
    assert torch.equal(EDM2Adapter(net).decode(x0), torch.full_like(x0, 0.5))
    decoder = EDM2Adapter(net, decoder=lambda z: torch.full_like(z, 255, dtype=torch.uint8))
    assert torch.equal(decoder.decode(x0), torch.ones_like(x0))


@pytest.mark.parametrize("method", sorted(available()))
def test_every_method_runs_on_the_edm2_adapter(method):
    model = EDM2Adapter(GaussianDenoiser(), guide_net=GaussianDenoiser(label_dim=0, seed=1))
    out = sample_or_refuse(model, method, 1.5, 3)
    assert out is None or np.isfinite(out["latents"]).all()


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
