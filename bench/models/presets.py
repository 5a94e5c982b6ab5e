"""Paper presets: the SPELL paper's Table 1 protocol per model (`--preset paper`).

Each preset gives the CFG weight, the number of sampling steps, the batch size and
SPELL's radius and overcompensation (lambda) of Appendix D, and Section 4's protocol:
`none` against SPELL with intra- and inter-batch repellency, on the ImageNet classes
(50 samples each: 50,000 images) or on the CC12M captions (as many samples as each
caption has reference images, 4 to 128; the user names the CC12M folder). The radii
are L2 distances in each model's own diffusion space, so they differ by model.
"""

from __future__ import annotations

import copy

from bench.errors import BenchError

IMAGENET = "imagenet"
CC12M = "cc12m"
SAMPLES = {IMAGENET: 50, CC12M: "references"}
REPELLENCY = {"intra_batch": True, "inter_batch": True}


def _preset(
    guidance: float, steps: int, batch: int, radius: float, lam: float, note: str, data: str
) -> dict:
    return {
        "guidance": guidance,
        "steps": steps,
        "batch_size": batch,
        "prompts": data,
        "samples": SAMPLES[data],
        "run_methods": ["none", "spell"],
        "methods": {"spell": {"radius": radius, "overcompensation": lam, **REPELLENCY}},
        "source": f"SPELL paper, Appendix D and Section 4: {note}",
    }


PAPER_PRESETS: dict[str, dict] = {
    "ldm": _preset(5.0, 50, 8, 20.0, 1.6, "Latent Diffusion on CC12M", CC12M),
    "sd3": _preset(5.5, 28, 8, 200.0, 1.6, "Stable Diffusion 3 on CC12M", CC12M),
    "sd3-imagenet": _preset(
        5.5, 28, 8, 200.0, 1.0, "Stable Diffusion 3 on ImageNet (no overcompensation)", IMAGENET
    ),
    "edm2": _preset(
        1.2, 50, 8, 20.0, 1.0, "EDMv2, sigma_min 0.002, sigma_max 80, rho 7, S_churn 0", IMAGENET
    ),
    "mdt": _preset(3.8, 50, 2, 45.0, 1.0, "MDTv2 on ImageNet", IMAGENET),
    "simple-diffusion": _preset(5.5, 50, 16, 50.0, 1.6, "Simple Diffusion on CC12M", CC12M),
}
ALIASES = {"mdm": "simple-diffusion"}  # ml-mdm's pixel UNet is the paper's Simple Diffusion


def paper_preset(model_name: str) -> dict:
    """A copy of the paper's settings for `model_name` (a BenchError for models the
    paper did not run, e.g. sd15 and dit)."""
    model_name = ALIASES.get(model_name, model_name)
    if model_name not in PAPER_PRESETS:
        raise BenchError(
            f"the SPELL paper has no settings for model {model_name!r}; "
            f"presets exist for: {', '.join([*PAPER_PRESETS, *ALIASES])}"
        )
    return copy.deepcopy(PAPER_PRESETS[model_name])
