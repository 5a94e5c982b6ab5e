"""The committed digits UNet: recognisable samples, and SPELL does what the paper says."""

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression

from bench.data.digits import load_split
from bench.models.digits import DigitsAdapter
from bench.sampler import SamplingSettings, generate_prompt
from methods.registry import expand
from metrics.extractors import get_extractor
from metrics.vendi import vendi_score

CLASSES = [1, 4, 8]
SAMPLES, BATCH = 16, 8


@pytest.fixture(scope="module")
def samples() -> dict[str, dict[int, dict[str, np.ndarray]]]:
    """16 samples of three classes under none and SPELL (r = 2, lambda = 1.6), same seeds."""
    model = DigitsAdapter()
    settings = SamplingSettings(guidance=model.default_guidance, steps=50)
    out = {}
    for name, params in (("none", {}), ("spell", {"radius": 2.0, "overcompensation": 1.6})):
        method = expand(name, params)[0]
        prompts = {p.label: p for p in model.prompts()}
        out[name] = {
            c: generate_prompt(model, method, prompts[c], SAMPLES, BATCH, 0, settings)
            for c in CLASSES
        }
    return out


def mean_pairwise_distance(latents: np.ndarray) -> float:
    return float(torch.pdist(torch.from_numpy(latents.reshape(len(latents), -1))).mean())


def test_none_samples_are_recognisable(samples):
    train = load_split("train")
    classifier = LogisticRegression(max_iter=2000).fit(
        train.images.reshape(len(train.images), -1), train.labels
    )
    for c, arrays in samples["none"].items():
        pixels = arrays["images"].astype(np.float32)[..., 0] / 255 * 2 - 1
        accuracy = (classifier.predict(pixels.reshape(len(pixels), -1)) == c).mean()
        assert accuracy >= 0.9, f"class {c}: {accuracy:.2f}"


def test_spell_raises_the_spread_of_every_class(samples):
    for c in CLASSES:
        plain = mean_pairwise_distance(samples["none"][c]["latents"])
        spell = mean_pairwise_distance(samples["spell"][c]["latents"])
        assert spell > plain, f"class {c}: {spell:.3f} <= {plain:.3f}"


def test_repellency_is_concentrated_early(samples):
    active = np.concatenate([samples["spell"][c]["trace_active"] for c in CLASSES])
    steps = active.shape[1]
    early = active[:, : steps // 5].mean()
    late = active[:, -(steps // 5) :].mean()
    assert early > late, (early, late)
    assert not samples["none"][CLASSES[0]]["trace_active"].any()


def test_spell_scores_higher_vendi_in_digits_feature_space(samples):
    extractor = get_extractor("digits")
    gain = []
    for c in CLASSES:
        plain = vendi_score(extractor.extract(samples["none"][c]["images"])["features"])
        spell = vendi_score(extractor.extract(samples["spell"][c]["images"])["features"])
        gain.append(spell - plain)
    assert np.mean(gain) > 0, gain
