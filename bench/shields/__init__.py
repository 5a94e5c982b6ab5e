"""Shield sets answer: which shields lie within r of these x0 predictions?"""

from bench.shields.base import Neighbours, ShieldSet
from bench.shields.exact import ExactShieldSet
from bench.shields.factory import BACKENDS, make_shield_set
from bench.shields.projected import ProjectedShieldSet
from bench.shields.repel import repulsion, shield_delta
from bench.shields.store import (
    ShieldWriter,
    describe_shields,
    load_shields,
    load_vectors,
    save_shields,
)

__all__ = [
    "BACKENDS",
    "ExactShieldSet",
    "Neighbours",
    "ProjectedShieldSet",
    "ShieldSet",
    "ShieldWriter",
    "describe_shields",
    "load_shields",
    "load_vectors",
    "make_shield_set",
    "repulsion",
    "save_shields",
    "shield_delta",
]
