"""The default configuration's method sections are valid sweeps with unique ids."""

import tomllib

from bench.config import DEFAULT_CONFIG
from methods.registry import expand


def test_every_default_sweep_expands_to_unique_ids():
    sections = tomllib.loads(DEFAULT_CONFIG.read_text())["method"]
    assert {"spell", "pg", "ig", "cads", "cfg"} <= sections.keys()
    ids = [m.id for name, params in sections.items() for m in expand(name, params)]
    assert len(ids) == len(set(ids))
    assert "pg-s16" in ids and "ig-t0.1-0.6" in ids and "cads-t0.8-0.9-s0.5" in ids
    assert {"cfg-w1", "cfg-w7.5"} <= set(ids)
