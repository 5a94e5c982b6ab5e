"""Shield sets answer: which shields lie within r of these x0 predictions?"""

from bench.shields.base import Neighbours, ShieldSet
from bench.shields.exact import ExactShieldSet

__all__ = ["ExactShieldSet", "Neighbours", "ShieldSet"]
