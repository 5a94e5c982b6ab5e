"""The `mdm` adapter (ml-mdm's pixel UNet): a stand-in with the UNet's forward interface,
sampled by the loop and by ml-mdm's sampler written out from its formulas."""

from __future__ import annotations

import math
import sys

import numpy as np
import pytest
import torch
from conftest import sample_or_refuse
from diffusers.utils.torch_utils import randn_tensor

from bench.config import load_config
from bench.errors import BenchError
from bench.models import mdm
from bench.models.base import Prompt
from bench.models.mdm import MDMAdapter, MDMSchedule, TextEncoder, load_mdm, pack, unpack
from bench.models.presets import paper_preset
from bench.sampler import SamplingSettings, sample_batch
from bench.schedules import noise_level
from bench.seeding import generators
from methods.base import BatchContext
from methods.registry import available, expand

SEEDS = [3, 4, 5]
SIZE, DIM, VOCAB = 8, 6, 40


class StandInUNet(torch.nn.Module):
    """`net(x_t, times, conditioning, cond_mask, micros) -> v`, as ml-mdm's UNet: a masked
    mean of the token states (its pooled embedding) and an unmasked one (its cross-attention
    sees the padding), a time embedding of the integer timestep, a convolution."""

    def __init__(self, seed: int = 0) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.conv = torch.nn.Conv2d(3, 3, 3, padding=1)
        self.proj = torch.nn.Linear(2 * DIM, 3)
        self.freq = torch.nn.Parameter(torch.randn(3) * 3)

    def forward(self, x_t, times, conditioning, cond_mask=None, micros={}):  # noqa: B006
        pooled = (cond_mask.unsqueeze(-1) * conditioning).sum(1) / cond_mask.sum(1, keepdim=True)
        c = self.proj(torch.cat([pooled, conditioning.mean(1)], dim=1))
        temb = torch.sin(times.float()[:, None] / 1000 * self.freq)
        return 2.0 * self.conv(x_t) + (c + temb)[:, :, None, None]


def tokenize(texts: list[str]) -> list[list[int]]:
    """Word ids 2.., then EOS (1); the empty caption is EOS alone. 0 is <pad>."""
    return [[2 + sum(map(ord, w)) % (VOCAB - 2) for w in t.split()] + [1] for t in texts]


TABLE = torch.randn(VOCAB, DIM, generator=torch.Generator().manual_seed(7))
TEXT = TextEncoder(tokenize, lambda tokens, mask: TABLE[tokens] + mask[..., None], 0, DIM)


def adapter(sampler: str = "ddpm", **kwargs) -> MDMAdapter:
    return MDMAdapter(StandInUNet(), TEXT, image_size=SIZE, sampler=sampler, **kwargs)


def run(model, w: float, steps: int, method: str = "none", params=None):
    prompt = model.prompts()[1]
    ctx = BatchContext(prompt.id, 0, [0, 1, 2], SEEDS, model.device)
    return sample_batch(model, expand(method, params)[0], prompt, ctx, SamplingSettings(w, steps))


def squaredcos_gammas(n: int = 1000) -> torch.Tensor:
    """ml-mdm's DEEPFLOYD gamma_0..gamma_N: betas 1 - abar(i+1)/abar(i) capped at 0.999."""
    abar = [math.cos((i / n + 0.008) / 1.008 * math.pi / 2) ** 2 for i in range(n + 1)]
    betas = [0.0] + [min(1 - abar[i + 1] / abar[i], 0.999) for i in range(n)]
    return torch.tensor(np.exp(np.cumsum(np.log(1 - np.asarray(betas))))).float()


def states(ids: list[int], length: int) -> tuple[torch.Tensor, torch.Tensor]:
    tokens = torch.tensor([ids + [0] * (length - len(ids))])
    mask = (tokens != 0).float()
    return (TABLE[tokens] + mask[..., None]) * mask[..., None], mask


def mdm_sampler(net, text: str, w: float, steps: int, ddim: bool) -> torch.Tensor:
    """ml-mdm's Sampler.sample with resample_steps, written out: levels t_k = round(k (N+1)
    / (K+1)), the network at t - 1, CFG on v, x0 clipped, then the DDPM posterior (or DDIM
    eta 0 with epsilon from the clipped x0), noise from spellbench's generators."""
    n, g_all = len(SEEDS), squaredcos_gammas()
    levels = np.round(np.arange(steps + 1) * 1001 / (steps + 1))[::-1].astype(int)
    ids = [tokenize([""])[0], tokenize([text])[0]]
    length = max(map(len, ids))
    lm, mask = (
        torch.cat(t).repeat_interleave(n, 0)
        for t in zip(*[states(i, length) for i in ids], strict=True)
    )
    gens = generators(SEEDS)
    x = randn_tensor((n, 3, SIZE, SIZE), generator=gens)
    for t, s in zip(levels[:-1], levels[1:], strict=True):
        g, gl = g_all[t], g_all[s]
        v_u, v_c = net(torch.cat([x, x]), torch.full((2 * n,), t - 1), lm, mask).chunk(2)
        v = v_u + w * (v_c - v_u)
        x0 = (g.sqrt() * x - (1 - g).sqrt() * v).clip(-1, 1)
        if ddim:
            eps = (x - x0 * g.sqrt()) / (1 - g).sqrt()
            x = x0 * gl.sqrt() + eps * (1 - gl).sqrt()
            continue
        alpha = g / gl
        beta, beta_tilde = 1 - alpha, (1 - alpha) * (1 - gl) / (1 - g)
        x = x0 * beta * gl.sqrt() / (1 - g) + x * alpha.sqrt() * (1 - gl) / (1 - g)
        if s != 0:
            x = x + beta_tilde.sqrt() * randn_tensor(x.shape, generator=gens)
    return x.clip(-1, 1)


@pytest.mark.parametrize("w", [1.0, 5.5])
@pytest.mark.parametrize("sampler", ["ddpm", "ddim"])
def test_none_reproduces_ml_mdms_sampler(w, sampler):
    model = adapter(sampler)
    ours = run(model, w, 6)
    with torch.no_grad():
        expected = mdm_sampler(model.net, model.prompts()[1].text, w, 6, sampler == "ddim")
    torch.testing.assert_close(ours.x0, expected, atol=1e-5, rtol=0)
    assert (ours.nfe == (6 if w == 1.0 else 12)).all()


def test_the_schedule_is_ml_mdms():
    model = adapter()
    stepper = model.make_scheduler()
    model.set_timesteps(stepper, 6)
    levels = np.round(np.arange(7) * 1001 / 7)[::-1].astype(int)
    assert stepper.timesteps.tolist() == (levels[:-1] - 1).tolist()
    g = squaredcos_gammas()
    for i, t in enumerate(stepper.timesteps):
        alpha, sigma = noise_level(stepper, i, t)
        gamma = g[levels[i]].item()
        assert alpha == pytest.approx(gamma**0.5, rel=1e-6)
        assert sigma == pytest.approx((1 - gamma) ** 0.5, rel=1e-6)
    cosine = mdm.mdm_gammas(MDMSchedule(kind="cosine"))
    logsnr = (cosine / (1 - cosine)).log()
    assert cosine[0] == 1 and logsnr[1] == pytest.approx(5, abs=1e-4)
    assert logsnr[-1] == pytest.approx(-5, abs=1e-4)
    linear = mdm.mdm_gammas(MDMSchedule(kind="ddpm"))
    expected = np.cumprod(1 - np.linspace(1e-4, 0.02, 1000))
    np.testing.assert_allclose(linear[1:].numpy(), expected, rtol=1e-5)


def test_conditions_pad_a_cfg_pair_to_the_longer_caption():
    model = adapter()
    prompt = Prompt("0", "a red bicycle by a wall")
    cond, guide = model.condition([prompt]), model.guide_condition([prompt])
    (c_states, c_mask), (g_states, g_mask) = unpack(cond), unpack(guide)
    assert c_states.shape == g_states.shape == (1, 7, DIM)  # six words and EOS
    assert c_mask.tolist() == [[1.0] * 7] and g_mask.tolist() == [[1.0] + [0.0] * 6]
    assert not g_states[:, 1:].any()  # zeroed at padding, as ml-mdm's LanguageModel does
    assert model.null_condition(2).shape == (2, 2, DIM)
    (part,) = model.condition_parts(guide)
    assert (part.start, part.stop) == (0, DIM)
    torch.testing.assert_close(unpack(pack(c_states, c_mask))[1], c_mask)


@pytest.mark.parametrize("method", sorted(available()))
def test_every_method_runs_on_the_mdm_adapter(method):
    model = adapter()
    out = sample_or_refuse(model, method, 3.0, 2)
    assert out is None or np.isfinite(out["latents"]).all()


def test_missing_package_is_one_line(monkeypatch):
    monkeypatch.setitem(sys.modules, "ml_mdm", None)
    with pytest.raises(BenchError) as err:
        load_mdm()
    message = str(err.value)
    assert "\n" not in message and "empty stub" in message
    assert "git+https://github.com/apple/ml-mdm#subdirectory=ml-mdm-matryoshka" in message


def test_missing_dependency_of_ml_mdm_is_one_line(monkeypatch, tmp_path):
    (tmp_path / "ml_mdm").mkdir()
    (tmp_path / "ml_mdm" / "reader.py").write_text("import mlx_data_not_installed\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    for name in [n for n in sys.modules if n == "ml_mdm" or n.startswith("ml_mdm.")]:
        monkeypatch.delitem(sys.modules, name)
    with pytest.raises(BenchError, match="ml_mdm needs mlx_data_not_installed") as err:
        load_mdm()
    assert "\n" not in str(err.value)


def test_missing_checkpoint_vocab_and_text_encoder_are_one_line(monkeypatch, tmp_path, capfd):
    monkeypatch.setattr(mdm, "_upstream", lambda: {})
    for var in (mdm.PATH_VAR, mdm.VOCAB_VAR, mdm.T5_VAR, mdm.CONFIG_VAR):
        monkeypatch.delenv(var, raising=False)
    checkpoint, vocab = tmp_path / "vis_model.pth", tmp_path / "t5.vocab"
    cases = [
        ({}, ("SPELLBENCH_MDM_PATH", "flickr64/vis_model.pth")),
        ({"model_path": checkpoint}, ("SPELLBENCH_MDM_PATH",)),
        ({"model_path": checkpoint, "vocab_path": vocab}, ("SPELLBENCH_MDM_VOCAB_PATH",)),
        (
            {"model_path": checkpoint, "vocab_path": vocab, "text_encoder_path": str(tmp_path)},
            ("google/flan-t5-xl", "SPELLBENCH_MDM_T5_PATH"),
        ),
    ]
    for i, (kwargs, words) in enumerate(cases):
        if i == 2:
            checkpoint.write_bytes(b"")
        if i == 3:
            vocab.write_text("")
        with pytest.raises(BenchError) as err:
            load_mdm(**kwargs)
        assert "\n" not in str(err.value) and all(w in str(err.value) for w in words)
    captured = capfd.readouterr()
    assert captured.out == ""


def test_paper_preset():
    preset = paper_preset("simple-diffusion")
    assert (preset["guidance"], preset["steps"], preset["batch_size"]) == (5.5, 50, 16)
    spell = preset["methods"]["spell"]
    assert (spell["radius"], spell["overcompensation"]) == (50.0, 1.6)
    # `mdm` takes the paper's Simple Diffusion settings (presets.ALIASES)
    config = load_config(None, {"model": "mdm", "prompts": "cc12m:/d:test"}, preset="paper")
    run_ = config.run
    assert (run_.guidance, run_.steps, run_.batch_size) == (5.5, 50, 16)
    spell = config.method["spell"]
    assert (spell["radius"], spell["overcompensation"]) == (50.0, 1.6)


def test_cads_noises_the_caption_tokens_and_leaves_padding_and_mask():
    model = adapter()
    received = []
    real = model.predict
    model.predict = lambda x, t, cond: received.append(cond.clone()) or real(x, t, cond)
    out = run(model, 5.5, 3, "cads", {"tau1": 0.0, "tau2": 0.5})
    assert out.x0.isfinite().all()
    cond = received[0].chunk(2)
    clean = model.condition([model.prompts()[1]])
    states, mask = unpack(cond[1])
    assert not torch.allclose(states, unpack(clean)[0].expand_as(states))
    torch.testing.assert_close(mask, unpack(clean)[1].expand_as(mask))
