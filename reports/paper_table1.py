"""The SPELL paper's Table 1 (mean ± std over 5 seeds, full datasets) beside a run of
the same model: the paper's row pair (the model, then + SPELL) and the run's `none`
and SPELL configs, so a user with the weights sees how far their run is from it.

A run's model picks its row pair; `sd3` on ImageNet class prompts is the paper's
"SD3-Medium-Class". The paper's "Latent Diffusion" and "Simple Diffusion" are
ml-mdm's checkpoints (Gu et al. 2023); our `ldm` is CompVis's, so its pair is shown
with that caveat.
"""

from __future__ import annotations

from dataclasses import dataclass

from reports.rundata import RunData
from reports.tables import Cell, Table, metric_cell, metric_columns

KEYS = ("recall", "vendi", "coverage", "precision", "density", "fid", "fd_dinov2")

Row = dict[str, tuple[float, float]]


@dataclass(frozen=True)
class PaperPair:
    label: str
    setup: str
    none: Row
    spell: Row
    caveat: str = ""


def _row(*values: tuple[float, float]) -> Row:
    return dict(zip(KEYS, values, strict=True))


PAPER_TABLE1 = {
    "ldm": PaperPair(
        "Latent Diffusion",
        "text-to-image, CC12M",
        _row((0.236, 0.003), (2.527, 0.005), (0.447, 0.001), (0.559, 0.000), (0.768, 0.002),
             (9.501, 0.024), (106.244, 0.384)),
        _row((0.289, 0.003), (2.695, 0.002), (0.457, 0.001), (0.551, 0.001), (0.745, 0.002),
             (9.554, 0.043), (98.761, 0.441)),
        "the paper's Latent Diffusion is ml-mdm's checkpoint, not CompVis's ldm",
    ),
    "sd3": PaperPair(
        "SD3-Medium",
        "text-to-image, CC12M",
        _row((0.379, 0.004), (3.749, 0.005), (0.294, 0.000), (0.313, 0.001), (0.345, 0.001),
             (20.103, 0.090), (230.248, 0.812)),
        _row((0.483, 0.002), (4.711, 0.013), (0.229, 0.001), (0.211, 0.002), (0.213, 0.002),
             (35.174, 0.153), (482.246, 0.948)),
    ),
    "mdm": PaperPair(
        "Simple Diffusion",
        "text-to-image, CC12M",
        _row((0.230, 0.003), (2.799, 0.006), (0.355, 0.002), (0.441, 0.001), (0.556, 0.002),
             (19.879, 0.003), (245.138, 0.586)),
        _row((0.248, 0.002), (2.886, 0.005), (0.355, 0.001), (0.433, 0.002), (0.541, 0.002),
             (19.959, 0.033), (245.748, 0.562)),
    ),
    "edm2": PaperPair(
        "EDMv2",
        "class-to-image, ImageNet",
        _row((0.589, 0.002), (11.645, 0.022), (0.551, 0.002), (0.518, 0.002), (1.404, 0.005),
             (3.377, 0.022), (68.452, 0.298)),
        _row((0.600, 0.002), (11.806, 0.013), (0.547, 0.001), (0.508, 0.001), (1.364, 0.005),
             (3.456, 0.021), (68.909, 0.161)),
    ),
    "sd3-imagenet": PaperPair(
        "SD3-Medium-Class",
        "class-to-image, ImageNet",
        _row((0.143, 0.002), (8.861, 0.028), (0.202, 0.002), (0.323, 0.002), (0.801, 0.005),
             (22.246, 0.020), (328.032, 0.571)),
        _row((0.206, 0.002), (12.190, 0.032), (0.146, 0.001), (0.181, 0.002), (0.420, 0.006),
             (38.709, 0.054), (478.286, 0.553)),
    ),
    "mdt": PaperPair(
        "MDTv2",
        "class-to-image, ImageNet",
        _row((0.623, 0.002), (12.546, 0.021), (0.505, 0.001), (0.401, 0.002), (1.020, 0.002),
             (4.884, 0.052), (133.175, 0.721)),
        _row((0.634, 0.002), (12.772, 0.027), (0.505, 0.001), (0.407, 0.001), (1.029, 0.005),
             (4.381, 0.047), (122.125, 0.291)),
    ),
}  # fmt: skip
ALIASES = {"simple-diffusion": "mdm"}


def paper_key(model: str, prompts: object) -> str | None:
    """The Table 1 pair of a run's model (and prompt set, for SD3), or None."""
    model = ALIASES.get(model, model)
    if model == "sd3" and isinstance(prompts, str) and prompts.startswith("imagenet"):
        return "sd3-imagenet"
    return model if model in PAPER_TABLE1 else None


def _paper_cells(values: Row) -> dict[str, Cell]:
    return {k: Cell(mean, std=std) for k, (mean, std) in values.items()}


def _run_config(run: RunData, method: str) -> str | None:
    """The run's first config of `method` (its shield-free SPELL, for the paper's)."""
    configs = [c for c in run.configs if c.method == method]
    plain = [c for c in configs if not c.params.get("protect")]
    chosen = plain or configs
    return chosen[0].id if chosen else None


def paper_table(run: RunData) -> Table | None:
    """The paper's row pair and the run's `none` and SPELL, or None for a model the
    paper's Table 1 does not have."""
    settings = run.config.get("run", {})
    key = paper_key(str(settings.get("model", "")), settings.get("prompts"))
    if key is None:
        return None
    pair = PAPER_TABLE1[key]
    note = (
        f"The SPELL paper's Table 1 ({pair.setup}; mean ± std over 5 seeds, full "
        "dataset) above this run (mean over prompts [bootstrap interval]). Run "
        "`bench run --preset paper` for the paper's protocol."
        + (f" Caveat: {pair.caveat}." if pair.caveat else "")
    )
    table = Table(
        "table1-paper",
        f"Table 1 against the paper: {pair.label}",
        note,
        [("method", "Method"), ("id", "Config")] + metric_columns(list(KEYS)),
    )
    table.rows.append({"method": f"paper: {pair.label}", "id": "-", **_paper_cells(pair.none)})
    table.rows.append({"method": "paper: + SPELL", "id": "-", **_paper_cells(pair.spell)})
    for method in ("none", "spell"):
        config = _run_config(run, method)
        if config is not None:
            cells = {k: metric_cell(run, config, k) for k in KEYS}
            table.rows.append({"method": f"this run: {method}", "id": config, **cells})
    return table
