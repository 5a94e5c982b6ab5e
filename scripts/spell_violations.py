"""SPELL's guarantee on overlapping shields, without and with its `project` option.

    python scripts/spell_violations.py [--classes 4] [--samples 16] [--batch 8]

The digits model (committed weights), 50 DDPM steps, w = 2. Static shields: the digits
training split, built in-process with `build_protected_set`, at r = the median
nearest-neighbour distance between training digits in the model's [-1, 1] pixel space,
where every shield overlaps dozens of others. With batches of 8 the second batch of a
class also repels from the first one's outputs (inter-batch shields).

A violation is a final sample within r of a shield, measured on its x0 before clamping
and on what users get: the decoded image (clamped to [0, 1]) mapped back to [-1, 1].
`change` is the mean ||x0' - x0_hat|| over the evaluations SPELL corrected; `extra` the
projection's own mean move beyond SPELL's x0_hat + lambda delta (rows it moved).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from bench.data.digits import load_split
from bench.models.digits import load_digits
from bench.protect import build_protected_set
from bench.sampler import SamplingSettings, generate_prompt
from bench.shields import load_shields, load_vectors
from methods.base import DiversityMethod
from methods.none import NoMethod
from methods.spell import Spell, SpellConfig


def median_nn_radius() -> float:
    """The median distance from a training digit to its nearest other training digit."""
    train = torch.from_numpy(load_split("train").images).flatten(1).double()
    dist = torch.cdist(train, train, compute_mode="donot_use_mm_for_euclid_dist")
    dist.fill_diagonal_(torch.inf)
    return float(dist.min(1).values.median())


def nearest(points: torch.Tensor, shields: torch.Tensor) -> torch.Tensor:
    d = torch.cdist(points.double(), shields.double(), compute_mode="donot_use_mm_for_euclid_dist")
    return d.min(1).values


@dataclass
class Row:
    label: str
    static: tuple[float, float]  # violation rate (x0, decoded)
    inter: tuple[float, float]
    min_ratio: float  # smallest (decoded) distance to a static shield / r
    change: float
    extra: str
    infeasible: str
    seconds: float
    correct_ms: float  # mean time of one correct() call (one batch evaluation)


def inter_distances(outs: list[dict], decoded: list[torch.Tensor]) -> tuple[list, list]:
    """Distance of each sample of batch b >= 1 to the final x0 of the earlier batches of
    its class (the inter-batch shields), for x0 and for the decoded output."""
    raw, dec = [], []
    for out, images in zip(outs, decoded, strict=True):
        latents = torch.from_numpy(out["latents"]).flatten(1)
        for b in range(1, int(out["batch"].max()) + 1):
            now, before = out["batch"] == b, out["batch"] < b
            raw.append(nearest(latents[now], latents[before]))
            dec.append(nearest(images[now], latents[before]))
    return raw, dec


def timed_correct(method: DiversityMethod) -> list[float]:
    """Wraps the instance's correct() to collect the seconds of each call."""
    seconds, correct = [], method.correct

    def wrapped(*args):
        start = time.perf_counter()
        out = correct(*args)
        seconds.append(time.perf_counter() - start)
        return out

    method.correct = wrapped
    return seconds


def measure(label, model, method: DiversityMethod, prompts, args, shields, radius) -> Row:
    settings = SamplingSettings(guidance=2.0, steps=50)
    calls = timed_correct(method)
    start = time.perf_counter()
    n, batch = args.samples, args.batch
    outs = [generate_prompt(model, method, p, n, batch, 0, settings) for p in prompts]
    seconds = (time.perf_counter() - start) / (len(prompts) * args.samples)
    latents = torch.from_numpy(np.concatenate([o["latents"] for o in outs])).flatten(1)
    with torch.no_grad():
        decoded = model.encode(model.decode(latents)).flatten(1)
    raw_nn, dec_nn = nearest(latents, shields), nearest(decoded, shields)
    per_prompt = decoded.split([len(o["latents"]) for o in outs])
    inter_raw, inter_dec = inter_distances(outs, list(per_prompt))
    inter_raw, inter_dec = torch.cat(inter_raw), torch.cat(inter_dec)
    active = np.concatenate([o["trace_active"] for o in outs])
    norms = np.concatenate([o["trace_delta_norm"] for o in outs])
    stats = getattr(method, "projection", None)
    use_inter = isinstance(method, Spell) and method.config.inter_batch
    return Row(
        label=label,
        static=(rate(raw_nn, radius), rate(dec_nn, radius)),
        inter=(rate(inter_raw, radius), rate(inter_dec, radius)) if use_inter else (-1, -1),
        min_ratio=float(dec_nn.min() / radius),
        change=float(norms[active].mean()) if active.any() else 0.0,
        extra=f"{stats.extra / max(stats.moved, 1):.3f}" if stats and stats.moved else "-",
        infeasible=f"{stats.infeasible}/{stats.corrected}" if stats and stats.corrected else "-",
        seconds=seconds,
        correct_ms=1e3 * float(np.mean(calls)) if calls else 0.0,
    )


def rate(distances: torch.Tensor, radius: float) -> float:
    return float((distances < radius).double().mean())


def table(rows: list[Row], radius: float, count: int) -> str:
    def pct(pair):
        return " | ".join("-" if v < 0 else f"{100 * v:.1f}%" for v in pair)

    head = (
        f"r = {radius:.4f} (median NN distance of the training digits), {count} samples\n\n"
        "| method | static x0 | static decoded | inter x0 | inter decoded | min d/r "
        "| change | extra | infeasible | s / image | ms / correct |\n"
        "|---|---|---|---|---|---|---|---|---|---|---|\n"
    )
    lines = [
        f"| {r.label} | {pct(r.static)} | {pct(r.inter)} | {r.min_ratio:.6f} | "
        f"{r.change:.3f} | {r.extra} | {r.infeasible} | {r.seconds:.3f} | {r.correct_ms:.2f} |"
        for r in rows
    ]
    return head + "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--classes", type=int, default=4, help="digits 0 .. classes-1")
    parser.add_argument("--samples", type=int, default=16, help="samples per class")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model = load_digits()
    prompts = model.prompts()[: args.classes]
    radius = median_nn_radius()
    with tempfile.TemporaryDirectory() as tmp:
        index = build_protected_set(model, "digits-train", Path(tmp) / "train", progress=False)
        shields, static = load_vectors(index).flatten(1), load_shields(index)
    variants = {
        "none": None,
        "spell": {},
        "spell + project": {"project": True},
        "spell + project, clip_box 1": {"project": True, "clip_box": 1.0},
    }
    # one untimed batch first: torch's first convolutions are slow
    generate_prompt(model, NoMethod(), prompts[0], 2, 2, 0, SamplingSettings(2.0, 2))
    rows = []
    for label, fields in variants.items():
        if fields is None:
            method = NoMethod()
        else:
            method = Spell(SpellConfig(radius=radius, **fields), static=static)
            label = f"{label} (`{method.id}`)"
        rows.append(measure(label, model, method, prompts, args, shields, radius))
        print(f"done: {label}", flush=True)
    print(table(rows, radius, len(prompts) * args.samples))


if __name__ == "__main__":
    main()
