"""NaN and inf: a prompt with a non-finite feature (or latent) has no metric values, a
non-finite setting is refused at the config, and a sample that turns non-finite stops
its prompt with one line."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from test_cli_errors import run_cli, small
from test_score_run import _write_method

from bench.atomic import atomic_save_npz
from bench.errors import BenchError
from bench.experiment.schema import read_file
from bench.finite import check_finite
from bench.models.toy2d import render_points, toy2d_ground_truth
from bench.run_dir import RunDir
from bench.sampler import to_uint8
from bench.shields.store import save_shields
from metrics.exact import SPECS as EXACT_SPECS
from metrics.run_protection import add_protection, rates_against
from metrics.run_reader import MethodDir
from metrics.score import score_run

NONFINITE = "non-finite features"
PER_PROMPT = ("recall", "precision", "density", "coverage", "vendi", "class_score")


def _set_value(path: Path, key: str, index: tuple, value: float) -> None:
    """One value of one array of an npz file."""
    with np.load(path) as f:
        arrays = dict(f)
    arrays[key][index] = value
    np.savez(path, **arrays)


@pytest.fixture(scope="module")
def digits_scores(tmp_path_factory):
    """Two digits method-configs: one with a NaN in prompt 3's saved latents, one with an
    inf in prompt 5's cached digits features (scored once to fill the cache)."""
    run = tmp_path_factory.mktemp("nonfinite") / "run"
    (run / "samples").mkdir(parents=True)
    (run / "config.toml").write_text('[run]\nmodel = "digits"\nseed = 0\n')
    _write_method(run, "nan-latent", 0, times_in_npz=True)
    _write_method(run, "inf-feature", 0, times_in_npz=True)
    _set_value(run / "samples" / "nan-latent" / "3.npz", "latents", (0, 0, 4, 4), np.nan)
    score_run(run)
    (cached,) = run.glob("features/digits/*/inf-feature/5.npz")
    _set_value(cached, "features", (2, 0), np.inf)
    result = score_run(run)
    return {r["method_id"]: r for r in result["results"]}


@pytest.mark.parametrize(("method_id", "bad"), [("nan-latent", "3"), ("inf-feature", "5")])
def test_a_non_finite_prompt_has_no_values_and_the_means_skip_it(digits_scores, method_id, bad):
    r = digits_scores[method_id]
    for key in PER_PROMPT:
        assert r["per_prompt"][bad][key] is None, key
        assert r["notes"][bad][key] == NONFINITE
        assert r["per_prompt"]["0"][key] is not None
        assert isinstance(r["metrics"][key], float)
        assert "9 of 10 prompts" in r["notes"]["all"][key]
        low, high = r["ci"][key]  # bootstrapped over the nine prompts with a value
        assert low <= r["metrics"][key] <= high
    fine = [p["class_score"] for pid, p in r["per_prompt"].items() if pid != bad]
    assert r["metrics"]["class_score"] == pytest.approx(np.mean(fine))


@pytest.mark.parametrize("method_id", ["nan-latent", "inf-feature"])
def test_a_non_finite_prompt_makes_the_frechet_distances_null(digits_scores, method_id):
    r = digits_scores[method_id]
    for key in ("fd_digits", "fd_pixels"):
        assert r["metrics"][key] is None
        assert r["notes"]["all"][key].startswith(NONFINITE + " in prompt(s) ")


def _toy2d_run(root: Path) -> Path:
    """A toy2d-exact run of exact samples; prompt 1's first latent is NaN."""
    run = root / "run"
    (run / "samples" / "none").mkdir(parents=True)
    (run / "config.toml").write_text('[run]\nmodel = "toy2d-exact"\nseed = 0\nbatch_size = 4\n')
    truth = toy2d_ground_truth()
    for label in (0, 1):
        points = truth.sample(8, np.random.default_rng(label), label).astype(np.float32)
        images = to_uint8(render_points(torch.from_numpy(points)))
        if label == 1:
            points[0, 0] = np.nan
        arrays = {"images": images, "latents": points, "nfe": np.full(8, 6)}
        np.savez(run / "samples" / "none" / f"{label}.npz", **arrays, seconds=np.ones(8))
    return run


def test_exact_metrics_of_non_finite_latents_are_null(tmp_path):
    r = score_run(_toy2d_run(tmp_path))["results"][0]
    for spec in EXACT_SPECS:
        assert r["per_prompt"]["1"][spec.key] is None, spec.key
        assert r["notes"]["1"][spec.key] == NONFINITE
    assert r["per_prompt"]["1"]["recall"] is None and r["per_prompt"]["1"]["class_score"] is None
    assert r["per_prompt"]["0"]["exact_log_density"] is not None
    assert "1 of 2 prompts" in r["notes"]["all"]["mode_coverage"]
    assert r["metrics"]["fd_toy2d"] is None and NONFINITE in r["notes"]["all"]["fd_toy2d"]


def test_protection_rate_of_non_finite_latents_is_null(tmp_path):
    index = tmp_path / "index"
    save_shields(index, torch.zeros((2, 4)))
    run = RunDir(tmp_path / "run")
    latents = {"none": np.zeros((3, 4)), "spell-r1": np.full((3, 4), 0.1)}
    latents["spell-r1"][1, 2] = np.inf
    methods = []
    for name, params in (("none", {}), ("spell-r1", {"protect": str(index), "radius": 1.0})):
        atomic_save_npz(run.sample_file(name, "0"), {"latents": latents[name].astype(np.float32)})
        methods.append(MethodDir(run, name, name.split("-")[0], params))
    results = [{"metrics": {}}, {"metrics": {}}]
    add_protection(results, methods)
    assert results[0]["metrics"]["protection_rate"] == 1.0
    assert results[1]["metrics"]["protection_rate"] is None
    assert results[1]["notes"]["all"]["protection_rate"] == NONFINITE
    assert rates_against(run, index, 1.0) == {"none": 1.0}


# --------------------------------------------------------- non-finite settings: exit 2


@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
def test_non_finite_guidance_is_refused(monkeypatch, capsys, tmp_path, value):
    code, err = run_cli(monkeypatch, capsys, "run", *small(tmp_path), f"--guidance={value}")
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "run.guidance: Input should be a finite number" in err
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("where", ["flag", "toml"])
def test_non_finite_method_parameter_is_refused(monkeypatch, capsys, tmp_path, where):
    config = tmp_path / "bench.toml"
    table = "[method.spell]\nradius = nan\n" if where == "toml" else ""
    config.write_text('[run]\nmethods = ["spell"]\n' + table)
    args = ["--config", str(config), *small(tmp_path / "out")]
    args += ["--radius=nan"] if where == "flag" else []
    code, err = run_cli(monkeypatch, capsys, "run", *args)
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "method 'spell'" in err and "radius" in err and "finite number" in err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("table", "field"),
    [("[claims]\nprecision_cost = inf", "claims.precision_cost"),
     ("[claims]\nsignificance = nan", "claims.significance"),
     ("[protection]\nradius = inf", "protection.radius")],
)  # fmt: skip
def test_non_finite_experiment_settings_are_refused(tmp_path, table, field):
    path = tmp_path / "e.toml"
    path.write_text(f"[experiment]\nseeds = [0]\n{table}\n")
    with pytest.raises(BenchError, match=rf"{field}: Input should be a finite number$"):
        read_file(path)


# ------------------------------------------------------------------ check_finite


def test_finite_samples_pass():
    check_finite(torch.randn(4, 2, 3), "none", "0", 0, 10)


@pytest.mark.parametrize(
    ("values", "kind", "count"),
    [((np.nan,), "nan", 1), ((np.inf, -np.inf), "inf", 2), ((np.nan, np.inf), "nan and inf", 2)],
)
def test_non_finite_samples_name_method_prompt_and_step(values, kind, count):
    x = torch.zeros(4, 2, 3)
    for i, v in enumerate(values):
        x[i + 1, 1, i] = v
    with pytest.raises(BenchError) as info:
        check_finite(x, "spell-r2", "3", 11, 50)
    assert str(info.value) == (
        f"method 'spell-r2' prompt '3': {count} of 4 samples became non-finite ({kind}) "
        "at step 12 of 50"
    )
    assert info.value.exit_code == 2


BLOWUP = '''
from methods.base import DiversityMethod, MethodConfig


class Blowup(DiversityMethod):
    """Its correction is NaN at the second step, as an unstable method's would be."""

    name = "blowup"
    Config = MethodConfig

    def correct(self, step, x_t, x0_hat, ctx):
        return x0_hat * float("nan") if step.index == 1 else None
'''


def test_non_finite_samples_stop_generation_with_one_line(tmp_path):
    """The sampling loop checks its samples after each step (bench.finite.check_finite):
    a BenchError inside Lightning's predict is one line, exit 2, the prompt not saved."""
    (tmp_path / "blowup.py").write_text(BLOWUP)
    env = {**os.environ, "PYTHONPATH": f"{tmp_path}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    args = [
        "generate",
        "--out",
        tmp_path / "out",
        "--name",
        "r",
        "--prompts",
        "1",
        "--samples",
        "2",
    ]
    args += [
        "--steps",
        "3",
        "--threads",
        "1",
        "--logger",
        "none",
        "--methods",
        "none,blowup:Blowup",
    ]
    result = subprocess.run(
        [sys.executable, "-m", "bench", *map(str, args)],
        capture_output=True, text=True, timeout=180, env=env,
    )  # fmt: skip
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1, result.stderr[-3000:]
    assert lines[0] == (
        "error: method 'blowup' prompt '0': 2 of 2 samples became non-finite (nan) at step 2 of 3"
    )
    run = RunDir(tmp_path / "out" / "r")
    assert run.is_complete("none", "0") and not run.is_complete("blowup", "0")
