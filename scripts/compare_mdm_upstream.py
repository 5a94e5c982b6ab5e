"""Compare the `mdm` adapter in spellbench's loop with ml-mdm's own sampler.

Run beside the project with a checkout of apple/ml-mdm (not needed in CI):

    python scripts/compare_mdm_upstream.py --upstream /tmp/ml-mdm [--commit SHA]

Builds a tiny single-resolution ml-mdm `UNet` with random weights (its zero-initialised
layers re-randomised), fixed random token states in place of T5 (the same for both
sides), then samples with ml-mdm's `Sampler.sample` (resample_steps, CLIP thresholding,
squaredcos_cap_v2 schedule, v-prediction) and with spellbench's loop, method `none`,
through `MDMAdapter` wrapping the same network. Both use spellbench's per-sample noise:
ml-mdm's `torch.randn_like` is patched to draw from the same generators. Needs einops,
torchinfo, simple-parsing 0.1.5 and dataclass-wizard < 0.23 (ml-mdm imports them);
mlx-data and boto3 are stubbed when absent (only its tokenizer and S3 code use them).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import subprocess
import sys
import types
from pathlib import Path

import torch
from diffusers.utils.torch_utils import randn_tensor

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.models.base import Prompt  # noqa: E402
from bench.models.mdm import MDMAdapter, MDMSchedule, TextEncoder, mdm_gammas, mdm_timesteps  # noqa: E402
from bench.sampler import SamplingSettings, sample_batch  # noqa: E402
from bench.seeding import generators  # noqa: E402
from methods.base import BatchContext  # noqa: E402
from methods.registry import expand  # noqa: E402

SEEDS = [11, 12, 13]
SIZE, DIM, STEPS = 32, 16, 50
PROMPT, NULL = [3, 4, 5, 6, 7, 8], [1, 2]  # token ids; 0 is <pad>


def stub(name: str, **attrs) -> None:
    module = types.ModuleType(name)
    module.__path__ = []
    module.__dict__.update(attrs)
    sys.modules[name] = module
    parent, _, child = name.rpartition(".")
    if parent:
        setattr(sys.modules[parent], child, module)


def import_upstream(root: Path):
    """ml-mdm's unet, samplers and diffusion modules from a checkout."""
    package = root / "ml-mdm-matryoshka"
    sys.path.insert(0, str(package if package.is_dir() else root))
    if importlib.util.find_spec("mlx") is None:
        for name in ("mlx", "mlx.data", "mlx.data.core"):
            stub(
                name, **{a: type(a, (), {}) for a in ("Buffer", "Stream", "CharTrie", "Tokenizer")}
            )
    if importlib.util.find_spec("boto3") is None:
        for name in ("boto3", "boto3.session", "boto3.s3", "boto3.s3.transfer"):
            stub(name, TransferConfig=object)
    from ml_mdm import diffusion, samplers
    from ml_mdm.models import unet

    for name in [n for n in sys.modules if n == "mlx" or n.startswith("mlx.")]:
        if getattr(sys.modules[name], "__file__", None) is None:
            del sys.modules[name]  # einops would take a stubbed mlx for the MLX backend
    return unet, samplers, diffusion


def tiny_unet(unet, seed: int = 0) -> torch.nn.Module:
    """A 2-level UNet with cross-attention, micro-conditioning and no zero layers."""
    torch.manual_seed(seed)
    config = unet.UNetConfig(
        num_resnets_per_resolution=[1, 1],
        attention_levels=[1],
        num_attention_layers=[0, 1],
        conditioning_feature_dim=DIM,
        conditioning_feature_proj_dim=32,
        masked_cross_attention=0,
        resolution_channels=[32, 64],
        micro_conditioning="scale:64",
        resnet_config=unet.ResNetConfig(num_groups_norm=8, use_attention_ffn=True),
    )
    net = unet.UNet(3, 3, config)
    with torch.no_grad():
        for p in net.parameters():
            if not p.any():  # zero_module layers: give them random weights
                fan_in = p[0].numel() if p.dim() > 1 else 1
                p.normal_(0.0, (0.5 if p.dim() > 1 else 0.05) / fan_in**0.5)
    return net.eval()


def text_encoder() -> TextEncoder:
    table = torch.randn(16, DIM, generator=torch.Generator().manual_seed(1))

    def tokenize(texts):
        return [list(NULL if t == "" else PROMPT) for t in texts]

    return TextEncoder(tokenize, lambda tokens, mask: table[tokens], 0, DIM)


def states(text: TextEncoder, ids: list[int], length: int):
    tokens = torch.tensor([ids + [0] * (length - len(ids))])
    mask = (tokens != 0).float()
    return text.embed(tokens, mask) * mask[..., None], mask


@contextlib.contextmanager
def seeded_randn_like(gens):
    """ml-mdm's step noise drawn from spellbench's per-sample generators."""
    original = torch.randn_like
    torch.randn_like = lambda x, **_: randn_tensor(x.shape, generator=gens, dtype=x.dtype)
    try:
        yield
    finally:
        torch.randn_like = original


def upstream_sample(samplers, diffusion, net, text, w: float, eta) -> torch.Tensor:
    cfg = samplers.SamplerConfig(
        num_diffusion_steps=1000,
        schedule_type=samplers.ScheduleType.DEEPFLOYD,
        prediction_type=samplers.PredictionType.V_PREDICTION,
        threshold_function=samplers.ThresholdType.CLIP,
    )
    sampler = samplers.Sampler(cfg)
    model = diffusion.Model(net, diffusion.DiffusionConfig(sampler_config=cfg))
    n = len(SEEDS)
    pairs = [PROMPT] if w == 1 else [NULL, PROMPT]  # ml-mdm's [negative, prompt]
    rows = [states(text, ids, len(PROMPT)) for ids in pairs]
    lm = torch.cat([s for s, _ in rows]).repeat_interleave(n, 0)
    mask = torch.cat([m for _, m in rows]).repeat_interleave(n, 0)
    gens = generators(SEEDS)
    x = randn_tensor((n, 3, SIZE, SIZE), generator=gens, dtype=torch.float32)
    with torch.no_grad(), seeded_randn_like(gens):
        return sampler.sample(
            model,
            x,
            lm,
            mask,
            {},
            num_inference_steps=STEPS,
            resample_steps=True,
            ddim_eta=eta,
            guidance_scale=w,
        ), sampler


def ours(net, text, w: float, kind: str) -> torch.Tensor:
    model = MDMAdapter(net, text, image_size=SIZE, schedule=MDMSchedule(), sampler=kind)
    prompt = Prompt("p", "a prompt")
    ctx = BatchContext("p", 0, list(range(len(SEEDS))), SEEDS, model.device)
    settings = SamplingSettings(w, STEPS, "native")
    return sample_batch(model, expand("none")[0], prompt, ctx, settings).x0


def commit_of(root: Path, given: str | None) -> str:
    if given:
        return given
    out = subprocess.run(
        ["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True
    )
    return out.stdout.strip() or "unknown"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--upstream", type=Path, default=Path("/tmp/ml-mdm"))
    parser.add_argument("--commit", default=None)
    args = parser.parse_args()
    torch.set_num_threads(1)
    unet, samplers, diffusion = import_upstream(args.upstream)
    net, text = tiny_unet(unet), text_encoder()
    print(f"ml-mdm commit {commit_of(args.upstream, args.commit)}; {SIZE}x{SIZE}, {STEPS} steps")
    for kind, eta in (("ddpm", None), ("ddim", 0.0)):
        for w in (1.0, 5.5):
            theirs, sampler = upstream_sample(samplers, diffusion, net, text, w, eta)
            mine = ours(net, text, w, kind)
            diff = (mine - theirs).abs().max().item()
            clipped = (theirs.abs() >= 1).float().mean().item()
            print(
                f"{kind:4s} (ml-mdm ddim_eta={eta}) w={w}: max |diff| = {diff:.3g} "
                f"(samples: mean |x| {theirs.abs().mean():.3f}, {clipped:.0%} at +-1)"
            )
    gap = (mdm_gammas(MDMSchedule()) - sampler.gammas).abs().max().item()
    steps = (mdm_timesteps(1000, STEPS) + 1 == sampler.set_timesteps(STEPS)[:-1]).all()
    print(f"gammas max |diff| = {gap:.3g}; timesteps equal: {bool(steps)}")


if __name__ == "__main__":
    main()
