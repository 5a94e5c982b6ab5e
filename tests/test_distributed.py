"""Same bytes whatever the process count; a killed run resumes to the same bytes."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

SMALL = ["--model", "digits", "--methods", "spell", "--samples", "4", "--batch-size", "2",
         "--steps", "6", "--threads", "1", "--logger", "none"]


def bench(*args: str, **kwargs) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    return subprocess.run([sys.executable, "-m", "bench", *args], capture_output=True, text=True,
                          env=env, **kwargs)


def sample_bytes(run: Path) -> dict[str, bytes]:
    return {str(p.relative_to(run)): p.read_bytes() for p in sorted(run.glob("samples/*/*.npz"))}


def test_two_processes_give_the_bytes_of_one(tmp_path):
    one = bench("generate", *SMALL, "--prompts", "3", "--out", str(tmp_path), "--name", "one")
    assert one.returncode == 0, one.stderr
    two = bench("generate", *SMALL, "--prompts", "3", "--out", str(tmp_path), "--name", "two",
                "--accelerator", "cpu", "--devices", "2", "--strategy", "ddp")
    assert two.returncode == 0, two.stderr
    a, b = sample_bytes(tmp_path / "one"), sample_bytes(tmp_path / "two")
    assert len(a) == 6 and a.keys() == b.keys()
    assert all(a[k] == b[k] for k in a)


def test_killed_run_resumes_to_identical_bytes(tmp_path):
    args = ["generate", *SMALL, "--prompts", "6", "--out", str(tmp_path)]
    proc = subprocess.Popen([sys.executable, "-m", "bench", *args, "--name", "killed"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    samples = tmp_path / "killed" / "samples"
    deadline = time.time() + 300
    while len(list(samples.glob("*/*.npz"))) < 3 and time.time() < deadline:
        assert proc.poll() is None, "the run ended before it could be killed"
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = len(list(samples.glob("*/*.npz")))
    assert 3 <= done < 12, done
    resumed = bench(*args, "--name", "killed")
    assert resumed.returncode == 0, resumed.stderr
    assert f"generated {(12 - done) * 4} images" in resumed.stdout
    whole = bench(*args, "--name", "whole")
    assert whole.returncode == 0, whole.stderr
    a, b = sample_bytes(tmp_path / "killed"), sample_bytes(tmp_path / "whole")
    assert len(a) == 12 and a == b
    assert not list(samples.glob("*/.*.tmp")), "stale temporary files were left behind"


def test_config_change_on_resume_is_refused(tmp_path):
    args = ["generate", *SMALL, "--prompts", "1", "--out", str(tmp_path), "--name", "r"]
    assert bench(*args).returncode == 0
    changed = bench(*args[:-2], "--name", "r", "--seed", "5")
    assert changed.returncode == 2
    assert "another config" in changed.stderr and len(changed.stderr.strip().splitlines()) == 1
    forced = bench(*args[:-2], "--name", "r", "--seed", "5", "--force")
    assert forced.returncode == 0, forced.stderr


def test_features_extracted_by_two_processes_score_as_one(tmp_path):
    """`bench run --devices 2`: both ranks extract features, rank 0 scores from the
    caches, and every metric equals a one-process run's."""
    import json

    args = [*SMALL, "--prompts", "3", "--out", str(tmp_path)]
    one = bench("run", *args, "--name", "one")
    assert one.returncode == 0, one.stderr
    two = bench("run", *args, "--name", "two", "--accelerator", "cpu", "--devices", "2",
                "--strategy", "ddp")
    assert two.returncode == 0, two.stderr
    a, b = (json.loads((tmp_path / n / "metrics.json").read_text()) for n in ("one", "two"))
    assert [r["metrics"] for r in a["results"]] == [r["metrics"] for r in b["results"]]
    assert [r["per_prompt"] for r in a["results"]] == [r["per_prompt"] for r in b["results"]]
    cached = sorted((tmp_path / "two" / "features").glob("*/*/*/*.npz"))
    assert len(cached) == 2 * 3 * 2  # two extractors x three prompts x two method-configs
    # `bench score --devices 2` on the one-process run, features gone: the same numbers
    import shutil

    shutil.rmtree(tmp_path / "one" / "features")
    again = bench("score", str(tmp_path / "one"), "--accelerator", "cpu", "--devices", "2",
                  "--strategy", "ddp")
    assert again.returncode == 0, again.stderr
    c = json.loads((tmp_path / "one" / "metrics.json").read_text())
    assert [r["metrics"] for r in c["results"]] == [r["metrics"] for r in a["results"]]
