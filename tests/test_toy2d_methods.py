"""Every method runs on every toy2d model; each method's off setting is bit-identical
to `none` there too, and its on setting changes the samples; scoring a toy2d run adds
the exact metrics and the report draws samples over the density instead of grids."""

import json

import numpy as np
import pytest
from conftest import fits
from test_method_off import OFF

from bench.config import BenchConfig
from bench.errors import BenchError
from bench.generate import check_methods_fit
from bench.models.registry import load_model
from bench.sampler import SamplingSettings, generate_prompt
from bench.stages import report_stage, score_stage
from methods.registry import available, expand

TOY_MODELS = ("toy2d", "toy2d-exact", "toy2d-weak")
STEPS = 6
ON = {
    "spell": {"radius": 0.2},
    "pg": {"strength": 1.0},
    "ig": {"interval": [0.0, 0.5]},
    "cads": {"noise_scale": 0.5, "tau1": 0.1, "tau2": 0.9},
    "cfg": {"weight": 1.0},
    "autoguidance": {},
    "apg": {"eta": 0.0},
    "cfg-zero-star": {},
    "tcfg": {},
    "mag": {},
    "spell-feature": {"radius": 0.2},
    "pg-feature": {"strength": 1.0},
}
NOT_ON_TOY2D = {"fdg", "pag", "seg", "slg"}  # image latents or attention layers needed
EXACT_KEYS = (
    "exact_log_density",
    "mode_coverage",
    "mode_coverage_weighted",
    "mode_entropy",
    "distinct_modes_per_batch",
    "exact_precision",
    "exact_recall",
    "exact_density",
    "exact_coverage",
    "exact_vendi",
)


@pytest.fixture(scope="module", params=TOY_MODELS)
def toy(request):
    return load_model(request.param)


def _generate(model, name, params):
    if params.get("weight") == "model-default":
        params = {"weight": model.default_guidance}
    settings = SamplingSettings(guidance=model.default_guidance, steps=STEPS)
    return generate_prompt(model, expand(name, params)[0], model.prompts()[1], 6, 3, 5, settings)


def test_every_method_runs_and_its_on_setting_changes_the_samples(toy):
    plain = _generate(toy, "none", {})
    assert set(ON) | {"none"} | NOT_ON_TOY2D == set(available())
    for name in NOT_ON_TOY2D:
        with pytest.raises(BenchError, match="cannot run on model"):
            check_methods_fit(toy, expand(name))
    for name, params in ON.items():
        if not fits(expand(name, params)[0], toy):
            continue
        out = _generate(toy, name, params)
        assert np.isfinite(out["latents"]).all() and out["latents"].shape == (6, 2), name
        assert not np.array_equal(out["latents"], plain["latents"]), name


def test_off_settings_are_bit_identical_to_none(toy):
    plain = _generate(toy, "none", {})
    for name, params in OFF.items():
        if not fits(expand(name)[0], toy):
            continue
        out = _generate(toy, name, params)
        for key in ("latents", "images", "nfe", "trace_active"):
            assert np.array_equal(out[key], plain[key]), (name, key)


def test_a_toy2d_run_is_scored_exactly_and_drawn_over_the_density(tmp_path):
    from bench.generate import generate

    config = BenchConfig(
        run={"model": "toy2d-exact", "methods": ["none", "spell"], "prompts": 2, "samples": 8,
             "batch_size": 4, "steps": STEPS, "out": tmp_path, "name": "t", "threads": 1},
        method={"spell": {"radius": 0.15}},
    )  # fmt: skip
    run = generate(config, progress=False)
    result = score_stage(run.path)
    for entry in result["results"]:
        for key in EXACT_KEYS:
            assert key in entry["metrics"], key
            assert set(entry["per_prompt"]["0"]) >= {key}
    assert result["protocol"]["exact"]["truth"] == "toy2d"
    index = report_stage(run.path).read_text()
    assert "Samples over the true density" in index and "Image grids do not apply" in index
    assert (run.report / "figures" / "samples-0.png").is_file()
    assert json.loads(run.manifest_file.read_text())["status"] == "reported"


def test_digits_gmm_runs_get_exact_metrics_too(tmp_path):
    from bench.generate import generate

    config = BenchConfig(
        run={"model": "digits-gmm", "methods": ["none"], "prompts": 1, "samples": 6,
             "batch_size": 3, "steps": 4, "out": tmp_path, "name": "g", "threads": 1},
    )  # fmt: skip
    run = generate(config, progress=False)
    metrics = score_stage(run.path)["results"][0]["metrics"]
    assert metrics["exact_log_density"] is not None and 0 <= metrics["mode_coverage"] <= 1
