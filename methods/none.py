"""`none`: the model as it is (plain classifier-free guidance)."""

from methods.base import DiversityMethod
from methods.registry import register


@register
class NoMethod(DiversityMethod):
    name = "none"
