"""Refuse what is wrong, survive what goes wrong: each case is a real `bench` process on
one small digits config, checked by its exit code (2 bad input, 1 the environment,
130 Ctrl-C), its one stderr line and the state of the run directory afterwards."""

import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench.run_dir import RunDir

SMALL = ["--prompts", "2", "--samples", "4", "--batch-size", "2", "--steps", "3"]
QUIET = ["--threads", "1", "--logger", "none"]
SPELL = "spell-r2-l1.6"


def bench(*args, preexec_fn=None, env=None) -> subprocess.CompletedProcess:
    env = {**os.environ, **(env or {})}
    env.pop("CI", None)  # nothing here depends on it
    return subprocess.run(
        [sys.executable, "-m", "bench", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=180,
        env=env,
        preexec_fn=preexec_fn,
    )


def one_line(result: subprocess.CompletedProcess, code: int) -> str:
    """The single stderr line of a run that exited with `code`."""
    lines = result.stderr.strip().splitlines()
    assert result.returncode == code, result.stderr[-3000:]
    assert len(lines) == 1, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    return lines[0]


def generate(out: Path, *args) -> subprocess.CompletedProcess:
    return bench("generate", *SMALL, *QUIET, "--out", out, *args)


def suggested(line: str) -> list[str]:
    """The `bench generate ...` command an error line tells the user to run."""
    command = re.search(r"`(bench generate [^`]+)`", line).group(1)
    return command.split()[1:]


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    """One small run through `bench run`: generated, scored and reported."""
    out = tmp_path_factory.mktemp("finished")
    done = bench("run", *SMALL, *QUIET, "--out", out, "--name", "r")
    assert done.returncode == 0, done.stderr[-3000:]
    return out / "r"


@pytest.fixture
def run_copy(finished, tmp_path) -> RunDir:
    shutil.copytree(finished, tmp_path / "r", ignore=shutil.ignore_patterns("report"))
    return RunDir(tmp_path / "r")


# --------------------------------------------------------------------- bad input: exit 2

BAD_CONFIGS = {
    "radius_inf": '[run]\nmethods = ["spell"]\n[method.spell]\nradius = inf\n',
    "typo_section": '[run]\nmethods = ["spell"]\n[method.spel]\nradius = 2.0\n',
    "not_a_factory": '[run]\nmodel = "os:getcwd"\n',
}


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--prompts", "999"], "model digits has 10 prompts"),
        (["--methods", ""], "names no method"),
        (["--prompts", "0,0"], "given more than once"),
        (["--name", "../escaped"], "must be a plain folder name"),
        (["--name", "a/b"], "must be a plain folder name"),
        (["--radius", "inf"], "finite number"),
        (["--config", "radius_inf"], "finite number"),
        (["--config", "typo_section"], "did you mean [method.spell]?"),
        (["--config", "not_a_factory"], "'os:getcwd' is not a model factory"),
        (["--prompts", "file:binary.txt"], "is binary"),
        (["--prompts", "file:latin1.txt"], "is not UTF-8 text"),
    ],
    ids=lambda v: "_".join(v) if isinstance(v, list) else None,
)
def test_bad_input_is_refused_with_nothing_written(tmp_path, args, expected):
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    for name, text in BAD_CONFIGS.items():
        (inputs / name).write_text(text)
    (inputs / "binary.txt").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    (inputs / "latin1.txt").write_bytes("un café noir\n".encode("latin-1"))
    args = [
        str(inputs / a) if a in BAD_CONFIGS else a.replace("file:", f"file:{inputs}/") for a in args
    ]
    out = tmp_path / "out"
    line = one_line(generate(out, *args), 2)
    assert line.startswith("error: ") and expected in line
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["inputs"]


def test_missing_weights_are_one_line_without_library_noise(tmp_path):
    """Diffusers' deprecations and notices stay out of the way of the one line."""
    env = {"HF_HOME": str(tmp_path / "hf"), "SPELLBENCH_LDM_PATH": ""}
    args = ["generate", "--model", "ldm", "--out", tmp_path / "out", *QUIET]
    line = one_line(bench(*args, env=env), 2)
    assert "weights for model 'ldm' not found" in line and "hf download" in line
    assert not (tmp_path / "out").exists()


def test_debug_shows_the_traceback_before_the_line(tmp_path):
    args = ["generate", "--name", "a/b", "--out", tmp_path]
    line = one_line(bench(*args), 2)
    debug = bench("--debug", *args)
    assert debug.returncode == 2 and "Traceback" in debug.stderr
    assert debug.stderr.strip().splitlines()[-1] == line


# ------------------------------------------------------------- the environment: exit 1


def test_out_that_is_a_file(tmp_path):
    (tmp_path / "file").write_text("not a folder")
    line = one_line(generate(tmp_path / "file"), 1)
    assert f"{tmp_path / 'file'}" in line and "Not a directory" in line


@pytest.fixture
def mount_point(tmp_path):
    """A tmpfs mounted here (root only), unmounted afterwards."""
    made = []

    def mount(path: Path, options: str) -> bool:
        path.mkdir()
        if os.geteuid() != 0 or shutil.which("mount") is None:
            return False
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)])
        made.extend([path] if done.returncode == 0 else [])
        return done.returncode == 0

    yield mount
    for path in made:
        subprocess.run(["umount", "-l", str(path)])


def _as_nobody() -> None:
    """Root is never refused by permissions: the command runs as `nobody` instead."""
    os.setgid(65534)
    os.setuid(65534)


def test_out_on_a_read_only_file_system(tmp_path, mount_point):
    out = tmp_path / "ro"
    drop = None
    if not mount_point(out, "ro,size=64k"):
        out.chmod(0o555)  # permissions refuse the same way
        if os.geteuid() == 0:  # nobody must reach `out`, and may write nowhere under it
            for parent in (tmp_path, *tmp_path.parents):
                parent.chmod(parent.stat().st_mode | 0o005)
            drop = _as_nobody
    home = {"HOME": str(out), "SPELLBENCH_CACHE": str(out / "cache")}
    result = bench("generate", *SMALL, *QUIET, "--out", out, preexec_fn=drop, env=home)
    line = one_line(result, 1)
    assert str(out) in line and ("Read-only" in line or "Permission denied" in line)


def _file_size_limit() -> None:
    """Without root (no small tmpfs): files may not grow past 2 kB, as on a full disk."""
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (2048, 2048))


def test_a_full_disk_names_the_file_and_marks_nothing_complete(tmp_path, mount_point):
    out = tmp_path / "small"
    limit = None if mount_point(out, "size=24k") else _file_size_limit
    line = one_line(bench("generate", *SMALL, *QUIET, "--out", out, preexec_fn=limit), 1)
    assert re.search(r"No space left on device|File too large", line), line
    assert str(out / "digits") in line and "rerun the same command" in line
    run = RunDir(out / "digits")
    assert run.status() == "generating" and not list(run.samples.glob("*/.*.tmp"))
    for path in run.sample_files():  # whatever is there reads whole
        assert run.load_samples(path.parent.name, path.stem)["images"].shape[0] == 4


def test_a_second_command_on_a_held_run_fails_at_once_naming_the_holder(run_copy):
    with run_copy.lock():
        for args in (["generate", *SMALL, *QUIET], ["score"]):
            where = ["--out", run_copy.path.parent, "--name", "r"]
            result = bench(*args, *(where if args[0] == "generate" else [run_copy.path]))
            line = one_line(result, 1)
            assert f"in use by another bench command (pid {os.getpid()})" in line
    assert run_copy.status() == "reported" and not run_copy.holder_file.exists()


# ------------------------------------------------------------------- Ctrl-C: exit 130


def test_ctrl_c_says_how_far_it_got_and_the_rerun_resumes(tmp_path):
    # 8 method-configs (none, spell, a 6-point CFG sweep) x 10 prompts: 80 quick items.
    args = ["generate", "--methods", "spell,cfg", "--prompts", "all", "--samples", "2"]
    args += ["--batch-size", "2", "--steps", "3", *QUIET, "--out", tmp_path, "--name", "c"]
    cmd = [sys.executable, "-m", "bench", *map(str, args)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    samples, deadline = tmp_path / "c" / "samples", time.time() + 120
    while not list(samples.glob("*/*.npz")) and time.time() < deadline:
        assert proc.poll() is None, proc.communicate()[1]
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    run = RunDir(tmp_path / "c")
    done = len(run.sample_files())
    assert proc.returncode == 130, err
    assert err.strip().splitlines() == [
        f"interrupted: {done} of 80 prompt items complete; rerun the same command to resume"
    ]
    assert 0 < done < 80 and run.status() == "generating"
    assert not list(samples.glob("*/.*.tmp")) and not run.holder_file.exists()
    resumed = bench(*args)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"generated {(80 - done) * 2} images" in resumed.stdout
    assert run.status() == "generated" and run.progress() == (80, 80)


# --------------------------------------------------------- an unfinished run is not scored


def test_an_unfinished_run_is_refused_then_scored_partially_and_reported_so(run_copy):
    run = run_copy
    (run.metrics_file).unlink()
    run.sample_file(SPELL, "1").unlink()  # as a killed run leaves it
    run.set_status("generating")
    line = one_line(bench("score", run.path), 2)
    assert "unfinished (3 of 4 prompt items)" in line and f"{SPELL} lacks prompts 1" in line
    assert "--partial" in line and not run.metrics_file.exists()

    partial = bench("score", run.path, "--partial")
    assert partial.returncode == 0, partial.stderr[-3000:]
    metrics = run.metrics()
    assert metrics["partial"] is True and metrics["prompts"] == ["0"]
    assert metrics["missing"] == {SPELL: ["1"]}
    assert all(list(r["per_prompt"]) == ["0"] for r in metrics["results"])
    assert run.status() == "generating" and run.manifest()["partial_metrics"] is True
    baseline = Path(__file__).resolve().parent.parent / "ci" / "baseline.json"
    assert "holds partial scores" in one_line(bench("regress", run.path, "--baseline", baseline), 2)

    report = bench("report", run.path)
    assert report.returncode == 0, report.stderr[-3000:]
    assert "Partial: generation is unfinished" in run.report_index.read_text()
    assert run.status() == "generating"
    assert suggested(line) == ["generate", *run.generate_command().split()[2:]]


def test_status_follows_the_stages_and_a_rerun_that_does_nothing_keeps_it(run_copy):
    """`bench run` left generated -> scoring -> scored -> reported; both metrics files."""
    assert run_copy.status() == "reported" and run_copy.is_scored()
    metrics = run_copy.metrics()
    assert metrics["partial"] is False and metrics["prompts"] == ["0", "1"]
    assert run_copy.metrics_csv_file.read_text().count(SPELL) == 3  # "all" and 2 prompts
    again = bench("generate", *SMALL, *QUIET, "--out", run_copy.path.parent, "--name", "r")
    assert again.returncode == 0 and "generated 0 images" in again.stdout
    assert run_copy.status() == "reported"


# ------------------------------------------------------------- a damaged sample file


@pytest.mark.parametrize("damage", ["truncated", "overwritten"])
def test_a_damaged_sample_file_is_named_set_aside_and_generated_again(run_copy, damage):
    run = run_copy
    path = run.sample_file("none", "0")
    whole = path.read_bytes()
    damaged = whole[: len(whole) // 2] if damage == "truncated" else b"not an npz at all"
    path.write_bytes(damaged)
    line = one_line(bench("score", run.path), 2)
    assert f"{path} is truncated or corrupt" in line and "bench generate" in line
    assert not path.exists() and path.with_name("0.npz.corrupt").read_bytes() == damaged
    assert run.status() == "generating"
    if damage == "truncated":
        again = bench(*suggested(line))
        assert again.returncode == 0 and "generated 4 images" in again.stdout
        assert path.read_bytes() == whole and run.status() == "generated"
        assert run.load_samples("none", "0")["images"].shape == (4, 8, 8, 1)
