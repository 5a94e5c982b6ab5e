"""Radius calibration (Appendix D) and the paper presets."""

from __future__ import annotations

import tomllib

import numpy as np
import pytest
import torch

from bench.calibrate import calibrate, calibration_toml
from bench.config import load_config
from bench.errors import BenchError
from bench.models.presets import paper_preset
from bench.sampler import SamplingSettings, generate_prompt
from methods.registry import expand


def test_calibration_measures_the_plain_batch_and_sweeps_to_twice_the_median(random_digits):
    prompt = random_digits.prompts()[2]
    result = calibrate(random_digits, prompt, batch_size=5, steps=5, guidance=2.0, seed=3)
    plain = generate_prompt(
        random_digits, expand("none")[0], prompt, 5, 5, 3, SamplingSettings(2.0, 5)
    )
    distances = torch.pdist(torch.from_numpy(plain["latents"]).flatten(1).double())
    assert result["median_distance"] == pytest.approx(float(np.median(distances.numpy())))
    radii = result["radii"]
    assert len(radii) == 16 and radii[0] > 0 and radii == sorted(radii)
    assert radii[-1] == pytest.approx(2 * result["median_distance"], rel=1e-3)


def test_calibration_toml_is_a_spell_sweep(random_digits):
    result = calibrate(random_digits, random_digits.prompts()[0], 4, 3, 1.0)
    parsed = tomllib.loads(calibration_toml(result))
    spell = parsed["method"]["spell"]
    assert spell["radius"] == pytest.approx(result["radii"], rel=1e-5)
    assert len(expand("spell", spell)) == 16


def test_calibration_needs_two_samples(random_digits):
    with pytest.raises(BenchError, match="at least 2"):
        calibrate(random_digits, random_digits.prompts()[0], 1, 3, 1.0)


def test_paper_presets_follow_appendix_d():
    ldm = paper_preset("ldm")
    assert (ldm["guidance"], ldm["steps"], ldm["batch_size"]) == (5.0, 50, 8)
    assert ldm["methods"]["spell"] == {
        "radius": 20.0,
        "overcompensation": 1.6,
        "intra_batch": True,
        "inter_batch": True,
    }
    assert paper_preset("sd3")["methods"]["spell"]["radius"] == 200.0
    assert paper_preset("sd3")["steps"] == 28
    assert paper_preset("edm2")["guidance"] == 1.2
    assert paper_preset("mdt")["batch_size"] == 2
    ldm["methods"]["spell"]["radius"] = 1.0
    assert paper_preset("ldm")["methods"]["spell"]["radius"] == 20.0
    with pytest.raises(BenchError, match="sd15"):
        paper_preset("sd15")


@pytest.mark.parametrize(
    ("model", "prompts", "expected"),
    [
        # model, --prompts, (prompts, samples, batch, steps, CFG, r, lambda)
        ("edm2", None, ("imagenet", 50, 8, 50, 1.2, 20.0, 1.0)),
        ("mdt", None, ("imagenet", 50, 2, 50, 3.8, 45.0, 1.0)),
        ("sd3", "imagenet", ("imagenet", 50, 8, 28, 5.5, 200.0, 1.0)),
        ("sd3", "cc12m:/d:test", ("cc12m:/d:test", "references", 8, 28, 5.5, 200.0, 1.6)),
        ("ldm", "cc12m:/d:test", ("cc12m:/d:test", "references", 8, 50, 5.0, 20.0, 1.6)),
        ("mdm", "cc12m:/d:test", ("cc12m:/d:test", "references", 16, 50, 5.5, 50.0, 1.6)),
    ],
)
def test_the_paper_preset_writes_table1s_protocol(model, prompts, expected):
    """Section 4 and Appendix D: none against SPELL with intra- and inter-batch
    repellency, ImageNet's 50 per class or CC12M's reference count per caption."""
    flags = {"model": model, **({"prompts": prompts} if prompts else {})}
    config = load_config(None, flags, preset="paper")
    run, spell = config.run, config.method["spell"]
    got = (run.prompts, run.samples, run.batch_size, run.steps, run.guidance)
    assert got + (spell["radius"], spell["overcompensation"]) == expected
    assert run.methods == ["none", "spell"]
    assert spell["intra_batch"] is True and spell["inter_batch"] is True


def test_the_paper_preset_asks_for_the_cc12m_folder():
    with pytest.raises(BenchError, match=r"--prompts cc12m:DIR:test"):
        load_config(None, {"model": "ldm"}, preset="paper")
