"""Bad input: one line on stderr, a non-zero exit, nothing marked complete."""

import subprocess
import sys

import pytest

from bench.cli import main


def run_cli(monkeypatch, capsys, *args) -> tuple[int, str]:
    monkeypatch.setattr(sys, "argv", ["bench", *args])
    with pytest.raises(SystemExit) as exit_info:
        main()
    return exit_info.value.code, capsys.readouterr().err


def small(tmp_path):
    return ["--out", str(tmp_path), "--prompts", "1", "--samples", "2", "--steps", "2"]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--model", "no-such-model"], "unknown model 'no-such-model'"),
        (["--methods", "spell,nope"], "unknown method 'nope'"),
        (["--samples", "0"], "samples"),
        (["--samples", "some"], "give a count or 'references'"),
        (["--samples", "references"], "needs a prompt set with reference images"),
        (["--prompts", "42,"], "unknown prompt ids"),
    ],
)
def test_bad_flags(monkeypatch, capsys, tmp_path, args, expected):
    code, err = run_cli(monkeypatch, capsys, "generate", *small(tmp_path), *args)
    assert code != 0
    assert expected in err
    assert len(err.strip().splitlines()) == 1
    assert not list(tmp_path.glob("*/manifest.json"))


def test_negative_radius(monkeypatch, capsys, tmp_path):
    config = tmp_path / "bench.toml"
    config.write_text('[run]\nmethods = ["spell"]\n[method.spell]\nradius = -1.0\n')
    code, err = run_cli(monkeypatch, capsys, "generate", "--config", str(config), *small(tmp_path))
    assert code != 0 and "radius" in err and len(err.strip().splitlines()) == 1
    assert not list(tmp_path.glob("*/manifest.json"))


def test_malformed_config(monkeypatch, capsys, tmp_path):
    config = tmp_path / "bench.toml"
    config.write_text("[run\nsamples = 3\n")
    code, err = run_cli(monkeypatch, capsys, "generate", "--config", str(config), *small(tmp_path))
    assert code != 0 and "malformed config" in err and len(err.strip().splitlines()) == 1


def test_unknown_config_key(monkeypatch, capsys, tmp_path):
    config = tmp_path / "bench.toml"
    config.write_text("[run]\nsampels = 3\n")
    code, err = run_cli(monkeypatch, capsys, "generate", "--config", str(config), *small(tmp_path))
    assert code != 0 and "sampels" in err


def test_console_script_exit_code(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "bench", "generate", "--model", "nope", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    assert result.stderr.startswith("error: unknown model 'nope'; available: digits")
    assert len(result.stderr.strip().splitlines()) == 1
