"""Per-model method tables in bench.toml, and the run name that follows the model."""

import pytest

from bench.config import load_config
from bench.errors import BenchError

TOML = """
[run]
model = "digits"
[method.spell]
radius = 2.0
overcompensation = 1.6
[models.toy2d.method.spell]
radius = [0.02, 0.05]
"""


def test_the_running_models_tables_update_the_method_tables(tmp_path):
    path = tmp_path / "bench.toml"
    path.write_text(TOML)
    digits = load_config(path)
    assert digits.method["spell"] == {"radius": 2.0, "overcompensation": 1.6}
    toy = load_config(path, {"model": "toy2d"})
    assert toy.method["spell"] == {"radius": [0.02, 0.05], "overcompensation": 1.6}
    assert (digits.run.name, toy.run.name) == ("digits", "toy2d")
    assert digits.hash() != toy.hash()
    flagged = load_config(path, {"model": "toy2d"}, method_flags={"spell": {"radius": 0.1}})
    assert flagged.method["spell"]["radius"] == 0.1  # flags still win


def test_a_model_table_holds_only_method_tables(tmp_path):
    path = tmp_path / "bench.toml"
    path.write_text('[models.toy2d]\nsteps = 3\n')
    with pytest.raises(BenchError, match=r"\[models.toy2d\] takes only method tables"):
        load_config(path)


def test_the_shipped_config_sizes_spell_for_toy2d():
    toy = load_config(None, {"model": "toy2d"})
    assert max(toy.method["spell"]["radius"]) <= 0.1 and toy.run.name == "toy2d"
