"""Protection rate of every method-config of a run that shields a protected set."""

import numpy as np
import torch

from bench.atomic import atomic_save_npz
from bench.run_dir import RunDir
from bench.shields.store import save_shields
from metrics.run_protection import add_protection, rates_against
from metrics.run_reader import MethodDir


def method(tmp_path, name, params, latents) -> MethodDir:
    run = RunDir(tmp_path / "run")
    atomic_save_npz(run.sample_file(name, "0"), {"latents": latents.astype(np.float32)})
    return MethodDir(run, name, name.split("-")[0], params)


def test_every_method_gets_the_share_within_r(tmp_path):
    shields = np.zeros((3, 4), np.float32)
    shields[1, 0], shields[2, 0] = 10.0, 20.0
    index = tmp_path / "index"
    save_shields(index, torch.from_numpy(shields))
    near = np.array([[0.5, 0, 0, 0], [10.2, 0, 0, 0], [5.0, 0, 0, 0], [21.0, 0, 0, 0]])
    far = near + np.array([0, 3.0, 0, 0])
    methods = [
        method(tmp_path, "none", {}, near),
        method(tmp_path, "spell-r1", {"protect": str(index), "radius": 1.0}, far),
    ]
    results = [{"metrics": {}}, {"metrics": {}}]
    protocol = add_protection(results, methods)
    assert results[0]["metrics"]["protection_rate"] == 0.5  # 0.5 and 0.2 away; 5 and 1 are not
    assert results[1]["metrics"]["protection_rate"] == 0.0
    assert protocol["radius"] == 1.0 and protocol["size"] == 3
    # one measurement: any radius against a stored set, for every method-config of a run
    assert rates_against(methods[0].run, index, 1.0) == {"none": 0.5, "spell-r1": 0.0}
    assert rates_against(methods[0].run, index, 3.1) == {"none": 0.75, "spell-r1": 0.5}


def test_no_protected_set_adds_nothing(tmp_path):
    results = [{"metrics": {}}]
    assert add_protection(results, [method(tmp_path, "none", {}, np.zeros((2, 4)))]) is None
    assert results == [{"metrics": {}}]
