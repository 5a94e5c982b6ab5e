"""`none`: the model as it is (plain classifier-free guidance)."""

from methods.base import DiversityMethod


class NoMethod(DiversityMethod):
    name = "none"
