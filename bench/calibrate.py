"""Radius calibration (SPELL paper, Appendix D).

Generate one batch without repellency, take the median pairwise L2 distance of
its final latents (the space SPELL measures in), and sweep radii up to twice
that median. The paper tests "16 values from 0 to 2x the median"; radius 0 is
the plain model, which every run includes as `none`, so the sweep is the 16
radii 2m * k / 16 for k = 1..16.
"""

from __future__ import annotations

import numpy as np
import torch

from bench.errors import BenchError
from bench.models.base import ModelAdapter, Prompt
from bench.sampler import SamplingSettings, sample_batch
from bench.seeding import sample_seed
from methods.base import BatchContext
from methods.none import NoMethod

NUM_RADII = 16


def calibrate(
    model: ModelAdapter,
    prompt: Prompt,
    batch_size: int,
    steps: int,
    guidance: float,
    seed: int = 0,
    scheduler: str = "native",
    num_radii: int = NUM_RADII,
) -> dict:
    """One batch of `prompt` with no method; distances between its final latents."""
    if batch_size < 2:
        raise BenchError(f"calibration needs a batch of at least 2 samples, got {batch_size}")
    seeds = [sample_seed(seed, prompt.id, i) for i in range(batch_size)]
    ctx = BatchContext(prompt.id, 0, list(range(batch_size)), seeds, model.device)
    settings = SamplingSettings(guidance=guidance, steps=steps, scheduler=scheduler)
    result = sample_batch(model, NoMethod(), prompt, ctx, settings)
    distances = torch.pdist(result.x0.flatten(1).double()).cpu().numpy()
    median = float(np.median(distances))
    radii = np.linspace(0.0, 2.0 * median, num_radii + 1)[1:]
    return {
        "model": model.name,
        "prompt": prompt.id,
        "batch_size": batch_size,
        "steps": steps,
        "guidance": guidance,
        "seed": seed,
        "scheduler": scheduler,
        "dimension": int(result.x0[0].numel()),
        "median_distance": median,
        "min_distance": float(distances.min()),
        "max_distance": float(distances.max()),
        "radii": [float(f"{r:.4g}") for r in radii],
    }


def calibration_toml(result: dict) -> str:
    """A bench.toml snippet: the SPELL radius sweep, with how it was measured."""
    radii = ", ".join(f"{r:g}" for r in result["radii"])
    return "\n".join([
        f"# radius calibration for {result['model']}: prompt {result['prompt']}, "
        f"{result['batch_size']} samples, {result['steps']} steps, CFG {result['guidance']:g}, "
        f"seed {result['seed']}",
        f"# median pairwise L2 distance of final latents: {result['median_distance']:.4g} "
        f"(min {result['min_distance']:.4g}, max {result['max_distance']:.4g}, "
        f"dimension {result['dimension']})",
        "[method.spell]",
        f"radius = [{radii}]",
        "",
    ])
