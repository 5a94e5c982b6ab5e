"""The `mdt` adapter on a stand-in with MDTv2's interface, checked against MDT's
sampler written out here: respaced ancestral DDPM with learned-range variance, CFG on
epsilon channels 0-2 with the power-cosine weight schedule."""

from __future__ import annotations

import math
import sys
import types

import numpy as np
import pytest
import torch
from conftest import sample_or_refuse

from bench.config import load_config
from bench.errors import BenchError
from bench.models.base import ModelAdapter
from bench.models.mdt import (
    PATH_VAR,
    VAE_PATH_VAR,
    MDTAdapter,
    guidance_schedule,
    load_mdt,
    respaced_timesteps,
)
from bench.perf.tiny_pipelines import tiny_vae
from bench.sampler import SamplingSettings, sample_batch
from methods.base import BatchContext
from methods.registry import available, expand

SEEDS = [3, 4]
SHAPE = (4, 4, 4)
CLASSES = 3
# upstream's sorted(space_timesteps(1000, "50")) (sail-sg/MDT masked_diffusion/respace.py)
UPSTREAM_50 = [
    int(t)
    for t in """0 20 41 61 82 102 122 143 163 183 204 224 245 265 285 306 326 347 367 387 408
    428 449 469 489 510 530 550 571 591 612 632 652 673 693 714 734 754 775 795 816 836 856
    877 897 917 938 958 979 999""".split()
]


class LabelTable(torch.nn.Module):
    """MDT's LabelEmbedder: a table with a null row, called as (labels, train)."""

    def __init__(self, num_classes: int, hidden: int) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.embedding_table = torch.nn.Embedding(num_classes + 1, hidden)

    def forward(self, labels, train, force_drop_ids=None):
        return self.embedding_table(labels)


class StandInMDT(torch.nn.Module):
    """MDTv2's interface: forward(x, t, y) -> (N, 8, H, W), epsilon then the learned
    variance in [-1, 1]; `y_embedder`, `in_channels`, `out_channels`, `patch_size`,
    `x_embedder.num_patches`. Epsilon leans on x so latents stay bounded."""

    def __init__(self, hidden: int = 6, seed: int = 0) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.in_channels, self.out_channels, self.patch_size = 4, 8, 1
        self.x_embedder = torch.nn.Module()
        self.x_embedder.num_patches = SHAPE[1] * SHAPE[2]
        self.y_embedder = LabelTable(CLASSES, hidden)
        self.t_embedder = torch.nn.Linear(1, hidden)
        self.inner = torch.nn.Conv2d(4 + hidden, 8, 3, padding=1)

    def forward(self, x, t, y):
        c = self.t_embedder(t.float()[:, None] / 1000) + self.y_embedder(y, self.training)
        planes = c[:, :, None, None].expand(-1, -1, *x.shape[2:])
        out = self.inner(torch.cat([x, planes], dim=1))
        return torch.cat([0.8 * x + 0.3 * out[:, :4], torch.tanh(out[:, 4:])], dim=1)


def mdt_reference(net, label: int, w: float, steps: int, scale_pow: float = 4.0):
    """MDT's p_sample_loop with forward_with_cfg, written out (float64 schedule)."""
    stride = (1000 - 1) / (steps - 1)
    ts = sorted({round(i * stride) for i in range(steps)}, reverse=True)
    abar = np.cumprod(1 - np.linspace(1e-4, 0.02, 1000, dtype=np.float64))
    gens = [torch.Generator().manual_seed(s) for s in SEEDS]
    x = torch.stack([torch.randn(SHAPE, generator=g) for g in gens])
    y, null = torch.full((len(SEEDS),), label), torch.full((len(SEEDS),), CLASSES)
    for i, t in enumerate(ts):
        prev = ts[i + 1] if i + 1 < len(ts) else -1
        a_t, a_prev = abar[t], abar[prev] if prev >= 0 else 1.0
        beta = 1 - a_t / a_prev
        tt = torch.full((len(SEEDS),), t)
        out = net(x, tt, y)
        eps, v = out[:, :4].clone(), out[:, 4:]
        if w != 1.0:
            eps_u = net(x, tt, null)[:, :3]
            s = (w - 1) * (1 - math.cos(math.pi * (1 - t / 1000) ** scale_pow)) / 2 + 1
            eps[:, :3] = eps_u + s * (eps[:, :3] - eps_u)
        x0 = (x - math.sqrt(1 - a_t) * eps) / math.sqrt(a_t)
        mean = (math.sqrt(a_prev) * beta * x0 + math.sqrt(1 - beta) * (1 - a_prev) * x) / (1 - a_t)
        if prev < 0:
            return mean
        frac = (v + 1) / 2
        log_var = frac * math.log(beta) + (1 - frac) * math.log(beta * (1 - a_prev) / (1 - a_t))
        noise = torch.stack([torch.randn(SHAPE, generator=g) for g in gens])
        x = mean + torch.exp(0.5 * log_var) * noise
    return x


def run(model, w: float, steps: int, method: str = "none"):
    prompt = model.prompts()[1]
    ctx = BatchContext(prompt.id, 0, list(range(len(SEEDS))), SEEDS, model.device)
    return sample_batch(model, expand(method)[0], prompt, ctx, SamplingSettings(w, steps))


@pytest.mark.parametrize("w", [1.0, 3.8])
def test_none_reproduces_mdts_sampler(w):
    net = StandInMDT()
    ours = run(MDTAdapter(net), w, 8)
    with torch.no_grad():
        expected = mdt_reference(net, 1, w, 8)
    torch.testing.assert_close(ours.x0, expected.float(), atol=1e-5, rtol=1e-5)
    # at t = 999 the scheduled weight is exactly 1: the loop skips that unconditional call
    assert (ours.nfe == (8 if w == 1.0 else 15)).all()


def test_respacing_is_upstreams():
    assert respaced_timesteps(50) == UPSTREAM_50[::-1]
    model = MDTAdapter(StandInMDT())
    scheduler = model.make_scheduler()
    model.set_timesteps(scheduler, 50)
    assert scheduler.timesteps.tolist() == UPSTREAM_50[::-1]
    assert model.latent_shape == SHAPE and model.default_guidance == 3.8


def test_guidance_schedule_follows_the_power_cosine_ramp():
    model = MDTAdapter(StandInMDT(), scale_pow=4.0)
    for t in (999, 979, 500, 200, 20, 0):
        ramp = (1 - math.cos(math.pi * (1 - t / 1000) ** 4)) / 2
        assert model.guidance_weight(3.8, t, 0, 50) == pytest.approx(1 + 2.8 * ramp, abs=1e-12)
    assert guidance_schedule(3.8, 0) == pytest.approx(3.8)
    assert guidance_schedule(3.8, 500) == pytest.approx(1.026901, abs=1e-6)
    assert guidance_schedule(3.8, 999) == pytest.approx(1.0, abs=1e-9)
    assert guidance_schedule(1.0, 300) == 1.0
    assert guidance_schedule(3.8, 500, scale_pow=0.01) > 3.7  # infer_mdt.py's pow
    assert ModelAdapter.guidance_weight(model, 3.8, 500, 0, 50) == 3.8  # the default


def test_guide_channel_3_is_the_conditional_one():
    model = MDTAdapter(StandInMDT())
    scheduler = model.make_scheduler()
    model.set_timesteps(scheduler, 4)
    x = torch.randn(2, *SHAPE)
    cond = model.condition(model.prompts()[:1] * 2)
    guide, x0 = model.x0_pair(
        x, scheduler.timesteps[1], model.null_condition(2), cond, scheduler, 1
    )
    assert torch.equal(guide[:, 3], x0[:, 3]) and not torch.allclose(guide[:, :3], x0[:, :3])
    assert scheduler.predicted_variance.shape == (2, 4, *SHAPE[1:])


@pytest.mark.parametrize("method", sorted(available()))
def test_every_method_runs_on_the_mdt_adapter(method):
    model = MDTAdapter(StandInMDT(), tiny_vae())
    out = sample_or_refuse(model, method, 3.8, 2)
    if out is not None:
        assert np.isfinite(out["latents"]).all() and out["images"].shape == (4, 4, 4, 3)


def fake_upstream(monkeypatch, net_factory=None) -> None:
    module = types.ModuleType("masked_diffusion.models")
    module.MDTv2_XL_2 = net_factory or (lambda **_: StandInMDT())
    monkeypatch.setitem(sys.modules, "masked_diffusion", types.ModuleType("masked_diffusion"))
    monkeypatch.setitem(sys.modules, "masked_diffusion.models", module)


def one_line_error(capfd, **kwargs) -> str:
    capfd.readouterr()
    with pytest.raises(BenchError) as err:
        load_mdt(**kwargs)
    printed = capfd.readouterr()
    assert "\n" not in str(err.value) and not printed.out and not printed.err
    return str(err.value)


def test_missing_package_checkpoint_and_vae_are_one_line_errors(tmp_path, monkeypatch, capfd):
    monkeypatch.delenv(PATH_VAR, raising=False)
    monkeypatch.delenv(VAE_PATH_VAR, raising=False)
    monkeypatch.setitem(sys.modules, "masked_diffusion.models", None)
    assert "sail-sg/MDT" in one_line_error(capfd)
    fake_upstream(monkeypatch)
    message = one_line_error(capfd, model_path=str(tmp_path / "absent.pt"))
    assert PATH_VAR in message and "mdt_xl2_v2_ckpt.pt" in message
    checkpoint = tmp_path / "mdt.pt"
    torch.save(StandInMDT().state_dict(), checkpoint)
    message = one_line_error(capfd, model_path=str(checkpoint), vae_path=str(tmp_path / "no"))
    assert "sd-vae-ft-ema" in message and VAE_PATH_VAR in message
    (tmp_path / "empty").mkdir()
    monkeypatch.setenv(VAE_PATH_VAR, str(tmp_path / "empty"))
    assert "sd-vae-ft-ema" in one_line_error(capfd, model_path=str(checkpoint))


def test_load_mdt_builds_upstreams_class_from_a_checkpoint(tmp_path, monkeypatch):
    fake_upstream(monkeypatch)
    weights = StandInMDT(seed=1)
    torch.save({"ema": weights.state_dict()}, tmp_path / "ckpt.pt")
    tiny_vae().save_pretrained(tmp_path / "vae")
    monkeypatch.setenv(PATH_VAR, str(tmp_path / "ckpt.pt"))
    model = load_mdt(vae_path=str(tmp_path / "vae"), scale_pow=2.0)
    assert model.scale_pow == 2.0 and model.vae is not None
    torch.testing.assert_close(model.net.inner.weight, weights.inner.weight)
    assert model.decode(torch.zeros(1, *SHAPE)).shape == (1, 3, 4, 4)


def test_paper_preset(tmp_path):
    (tmp_path / "bench.toml").write_text("[run]\n")
    config = load_config(tmp_path / "bench.toml", {"model": "mdt"}, preset="paper")
    assert (config.run.guidance, config.run.steps, config.run.batch_size) == (3.8, 50, 2)
    assert config.method["spell"]["radius"] == 45.0
