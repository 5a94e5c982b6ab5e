"""Which prompts scoring may use: all of a finished run; with `partial`, only those
every method-config finished (paired); an unfinished run is otherwise refused."""

import numpy as np
import pytest

from bench.config import BenchConfig
from bench.errors import BenchError
from bench.run_dir import RunDir
from metrics.completeness import scoring_scope

ARRAYS = {"images": np.zeros((2, 8, 8, 1), np.uint8), "seconds": np.array([0.1, 0.2])}


def make_run(tmp_path, done: dict[str, list[str]], prompts=("0", "1", "2")) -> RunDir:
    config = BenchConfig(run={"out": tmp_path, "name": "r"})
    run = RunDir(tmp_path / "r")
    run.prepare(config)
    run.write_manifest(config, "generating", method_ids=list(done), prompt_ids=list(prompts))
    for method_id, ids in done.items():
        for prompt_id in ids:
            run.save_prompt(method_id, prompt_id, ARRAYS)
    return run


def test_a_finished_run_scores_every_prompt(tmp_path):
    scope = scoring_scope(make_run(tmp_path, {"none": ["0", "1", "2"], "spell": ["0", "1", "2"]}))
    assert scope.prompt_ids == ["0", "1", "2"] and not scope.partial
    assert scope.record() == {"partial": False, "prompts": ["0", "1", "2"]}


def test_an_unfinished_run_is_refused_with_the_command_to_finish_it(tmp_path):
    run = make_run(tmp_path, {"none": ["0", "1", "2"], "spell": ["0", "2"]})
    with pytest.raises(BenchError) as err:
        scoring_scope(run)
    message = str(err.value)
    assert "unfinished (5 of 6 prompt items): spell lacks prompts 1" in message
    assert run.generate_command() in message and "--partial" in message
    assert "\n" not in message


def test_partial_keeps_the_prompts_every_method_finished(tmp_path):
    run = make_run(tmp_path, {"none": ["0", "1"], "spell": ["0", "2"], "pg": ["0", "1", "2"]})
    scope = scoring_scope(run, partial=True)
    assert scope.prompt_ids == ["0"] and scope.partial
    assert scope.record() == {
        "partial": True,
        "prompts": ["0"],
        "missing": {"none": ["2"], "spell": ["1"]},
    }


def test_partial_with_no_paired_prompt_is_refused(tmp_path):
    run = make_run(tmp_path, {"none": ["0"], "spell": ["1"]}, prompts=("0", "1"))
    with pytest.raises(BenchError, match="no prompt is complete for every method-config"):
        scoring_scope(run, partial=True)
    empty = make_run(tmp_path / "e", {"none": ["0"], "spell": []}, prompts=("0",))
    with pytest.raises(BenchError, match="spell lacks prompts 0"):
        scoring_scope(empty, partial=True)


def test_a_run_without_a_plan_is_judged_by_its_files(tmp_path):
    """Older or hand-made runs: the prompts any method finished are the plan."""
    run = RunDir(tmp_path)
    for method_id, ids in {"a": ["0", "1"], "b": ["1"]}.items():
        for prompt_id in ids:
            run.save_prompt(method_id, prompt_id, ARRAYS)
    assert run.missing_prompts() == {"b": ["0"]} and run.progress() == (3, 4)
    assert scoring_scope(run, partial=True).prompt_ids == ["1"]
