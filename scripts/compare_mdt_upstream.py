"""Compare the `mdt` adapter with upstream MDT's own sampler (not run in CI).

Builds a tiny MDTv2 from upstream's class (a sail-sg/MDT checkout, default /tmp/MDT)
with every parameter random, samples it with upstream's `create_diffusion("50")`
`p_sample_loop(model.forward_with_cfg, ...)` and with spellbench's loop (method
`none`) through `MDTAdapter`, the same initial and per-step noise in both (upstream's
`torch.randn_like` is fed spellbench's per-sample noise), and prints the largest
difference of the final latents at w = 1 and w = 3.8. Also checks the respaced
timesteps, the respaced alphas and the guidance schedule against upstream's.

    python scripts/compare_mdt_upstream.py [--mdt /tmp/MDT] [--commit SHA]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import subprocess
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path

import torch
from diffusers.utils.torch_utils import randn_tensor

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.models.mdt import (  # noqa: E402
    MDTAdapter,
    guidance_schedule,
    mdt_scheduler,
    respaced_timesteps,
)
from bench.sampler import SamplingSettings, sample_batch  # noqa: E402
from bench.seeding import generators  # noqa: E402
from methods.base import BatchContext  # noqa: E402
from methods.registry import expand  # noqa: E402

SEEDS = [11, 12, 13]
LABEL = 2
STEPS = 50
SCALE_POW = 4.0
MIRROR = Path("/work/.mirror/sail-sg+MDT/repo")


def tiny_upstream_net(models, seed: int = 0) -> torch.nn.Module:
    """A 6-block MDTv2 on 4 x 8 x 8 inputs, 5 classes; every parameter random
    (upstream zero-initialises adaLN gates, the final layer and the position bias)."""
    with contextlib.redirect_stdout(io.StringIO()):
        net = models.MDTv2(
            input_size=8,
            patch_size=2,
            in_channels=4,
            hidden_size=64,
            depth=6,
            num_heads=4,
            num_classes=5,
            decode_layer=2,
            learn_sigma=True,
        )
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(p + 0.08 * torch.randn(p.shape, generator=gen))
    return net.eval()


@contextlib.contextmanager
def fed_noise(gens: list[torch.Generator], n: int) -> Iterator[None]:
    """Within the block, `torch.randn_like(x)` of the doubled (2n) batch returns the
    per-sample noise spellbench's DDPM step draws for the first n rows."""
    original = torch.randn_like

    def randn_like(x, *args, **kwargs):
        if x.shape[0] != 2 * n:
            return original(x, *args, **kwargs)
        first = randn_tensor((n, *x.shape[1:]), generator=gens, device=x.device, dtype=x.dtype)
        return torch.cat([first, torch.zeros_like(first)])

    torch.randn_like = randn_like
    try:
        yield
    finally:
        torch.randn_like = original


def upstream_sample(net, diffusion_module, w: float) -> torch.Tensor:
    """Upstream's CFG sampling as scripts/image_sample.py runs it (--cfg_cond True)."""
    n = len(SEEDS)
    gens = generators(SEEDS)
    z = randn_tensor((n, 4, 8, 8), generator=gens, dtype=torch.float32)
    z = torch.cat([z, z])
    y = torch.tensor([LABEL] * n + [net.y_embedder.num_classes] * n)
    kwargs = dict(y=y, cfg_scale=w, diffusion_steps=1000, scale_pow=SCALE_POW)
    diffusion = diffusion_module.create_diffusion(str(STEPS))
    with fed_noise(gens, n), torch.no_grad():
        out = diffusion.p_sample_loop(
            net.forward_with_cfg,
            z.shape,
            z,
            clip_denoised=False,
            model_kwargs=kwargs,
            device=z.device,
        )
    return out[:n]


def ours_sample(net, w: float) -> torch.Tensor:
    model = MDTAdapter(net, scale_pow=SCALE_POW)
    prompt = model.prompts()[LABEL]
    ctx = BatchContext(prompt.id, 0, list(range(len(SEEDS))), SEEDS, model.device)
    return sample_batch(model, expand("none")[0], prompt, ctx, SamplingSettings(w, STEPS)).x0


def check_respacing(respace) -> str:
    for steps in (1, 2, 7, 25, 50, 100, 250, 1000):
        expected = sorted(respace.space_timesteps(1000, str(steps)), reverse=True)
        assert respaced_timesteps(steps) == expected, steps
    return "respaced timesteps equal upstream's for 1, 2, 7, 25, 50, 100, 250, 1000 steps"


def check_alphas(diffusion_module) -> str:
    """The respaced alpha-bars upstream steps with vs the scheduler's at our timesteps."""
    upstream = diffusion_module.create_diffusion(str(STEPS))
    scheduler = mdt_scheduler()
    ts = sorted(respaced_timesteps(STEPS))
    ours = scheduler.alphas_cumprod[ts].double()
    diff = (ours - torch.from_numpy(upstream.alphas_cumprod)).abs().max().item()
    return f"respaced alphas_cumprod: max abs diff {diff:.2e}"


def check_schedule(net, w: float = 3.8) -> str:
    """Upstream forward_with_cfg on a stub forward (cond eps 1, uncond 0) returns w_t."""
    timesteps = torch.tensor([999, 979, 500, 200, 20, 0])
    n = len(timesteps)

    def stub(x, t, y):
        out = torch.zeros(len(x), 8, *x.shape[2:])
        out[: len(x) // 2, :3] = 1.0
        return out

    original = net.forward
    net.forward = stub
    try:
        out = net.forward_with_cfg(
            torch.zeros(2 * n, 4, 8, 8), timesteps.repeat(2), None, cfg_scale=w, scale_pow=SCALE_POW
        )
    finally:
        net.forward = original
    upstream = out[:n, 0, 0, 0].double()
    ours = torch.tensor([guidance_schedule(w, float(t), SCALE_POW) for t in timesteps])
    unguided = out[:n, 3].abs().max().item()
    diff = (upstream - ours).abs().max().item()
    return (
        f"guidance schedule at t={timesteps.tolist()}: {[round(v, 6) for v in ours.tolist()]}"
        f", max abs diff to upstream {diff:.2e}; channel 3 guided: {unguided != 0}"
    )


def commit(path: Path, given: str | None) -> str:
    if given:
        return given
    if MIRROR.is_dir():
        run = ["git", "--git-dir", str(MIRROR), "rev-parse", "HEAD"]
        return subprocess.run(run, capture_output=True, text=True).stdout.strip()
    return "unknown (pass --commit)"


def ulp(x: float) -> float:
    x = torch.tensor(x, dtype=torch.float32)
    return (torch.nextafter(x, torch.tensor(float("inf"))) - x).item()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mdt", type=Path, default=Path("/tmp/MDT"))
    parser.add_argument("--commit", default=None)
    args = parser.parse_args()
    sys.path.insert(0, str(args.mdt))
    warnings.filterwarnings("ignore", message="torch.meshgrid")
    import masked_diffusion as diffusion_module
    from masked_diffusion import models, respace

    torch.manual_seed(0)
    print(f"upstream: sail-sg/MDT at {commit(args.mdt, args.commit)}")
    print(check_respacing(respace))
    print(check_alphas(diffusion_module))
    net = tiny_upstream_net(models)
    print(check_schedule(net))
    for w in (1.0, 3.8):
        ours = ours_sample(net, w)
        theirs = upstream_sample(net, diffusion_module, w)
        diff = (ours - theirs).abs().max().item()
        scale = theirs.abs().max().item()
        print(
            f"w = {w}: max |ours - upstream| = {diff:.3e}, latents up to {scale:.2f} "
            f"(relative {diff / scale:.1e}; float32 spacing there {ulp(scale):.1e})"
        )


if __name__ == "__main__":
    main()
