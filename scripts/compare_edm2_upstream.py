"""Compare the `edm2` adapter with NVlabs/edm2's own sampler (not run in CI).

Builds a tiny random `training.networks_edm2.Precond` (8 x 8, 32 channels, 10 classes,
every gain non-zero) and a smaller unconditional guide from an edm2 checkout (default
/tmp/edm2), samples both with edm2's `generate_images.edm_sampler` (Heun, S_churn 0,
sigma_min 0.002, sigma_max 80, rho 7) and with spellbench's loop (method `none`)
through `EDM2Adapter`, from the same initial noise, and prints the largest difference
of the final samples at the paper's w = 1.2 and 50 steps, and at w = 1 and 2.5.

    python scripts/compare_edm2_upstream.py [--edm2 /tmp/edm2] [--commit SHA]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import torch
from diffusers.utils.torch_utils import randn_tensor

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.models.edm2 import EDM2Adapter  # noqa: E402
from bench.sampler import SamplingSettings, sample_batch  # noqa: E402
from bench.seeding import generators  # noqa: E402
from methods.base import BatchContext  # noqa: E402
from methods.registry import expand  # noqa: E402

SEEDS = [3, 4, 5]
LABEL = 7
MIRROR = Path("/work/.mirror/NVlabs+edm2/repo")


def tiny_precond(networks, label_dim: int, channels: int, seed: int) -> torch.nn.Module:
    """A small EDM2 network whose zero-initialised gains are made non-zero."""
    torch.manual_seed(seed)
    net = networks.Precond(
        img_resolution=8, img_channels=3, label_dim=label_dim, use_fp16=False,
        model_channels=channels, channel_mult=[1, 2], num_blocks=1, attn_resolutions=[4],
    )  # fmt: skip
    with torch.no_grad():
        for name, p in net.named_parameters():
            if p.ndim == 0 or "gain" in name:
                p.fill_(0.7)
    return net.eval().requires_grad_(False)


def upstream(generate, net, guide, w: float, steps: int) -> torch.Tensor:
    noise = randn_tensor((len(SEEDS), 3, 8, 8), generator=generators(SEEDS))
    labels = torch.zeros(len(SEEDS), 10)
    labels[:, LABEL] = 1.0
    with torch.no_grad():
        return generate.edm_sampler(net, noise, labels, gnet=guide, num_steps=steps, guidance=w)


def ours(net, guide, w: float, steps: int) -> torch.Tensor:
    model = EDM2Adapter(net, guide_net=guide)
    prompt = model.prompts()[LABEL]
    ctx = BatchContext(prompt.id, 0, list(range(len(SEEDS))), SEEDS, model.device)
    return sample_batch(model, expand("none")[0], prompt, ctx, SamplingSettings(w, steps)).x0


def commit(given: str | None) -> str:
    if given:
        return given
    run = ["git", "--git-dir", str(MIRROR), "rev-parse", "HEAD"]
    found = subprocess.run(run, capture_output=True, text=True).stdout.strip()
    return found or "unknown (pass --commit)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--edm2", type=Path, default=Path("/tmp/edm2"))
    parser.add_argument("--commit", default=None)
    args = parser.parse_args()
    sys.path.insert(0, str(args.edm2))
    import generate_images as generate
    from training import networks_edm2 as networks

    print(f"upstream: NVlabs/edm2 at {commit(args.commit)}")
    net = tiny_precond(networks, 10, 32, seed=0)
    guide = tiny_precond(networks, 0, 16, seed=1)
    for w, steps in ((1.2, 50), (1.0, 32), (2.5, 8)):
        theirs = upstream(generate, net, guide if w != 1 else None, w, steps)
        mine = ours(net, guide if w != 1 else None, w, steps)
        diff = (mine - theirs).abs().max().item()
        scale = theirs.abs().max().item()
        print(f"w = {w}, {steps} steps: max |ours - upstream| = {diff:.2e}, up to {scale:.2f}")


if __name__ == "__main__":
    main()
