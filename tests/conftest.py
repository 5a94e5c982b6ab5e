import pytest
import torch

from bench.models.digits import DigitsAdapter, DigitsDenoiser


@pytest.fixture(scope="session")
def random_digits() -> DigitsAdapter:
    """The digits architecture with random weights: fast, for loop mechanics."""
    torch.manual_seed(0)
    return DigitsAdapter(net=DigitsDenoiser().eval().requires_grad_(False))
