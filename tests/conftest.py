import pytest
import torch

from bench.models.digits import DigitsAdapter, DigitsDenoiser

# One intra-op thread: tests are small, and on a busy 2-core machine extra threads
# spin against each other (subprocess tests pass --threads themselves).
torch.set_num_threads(1)


def fits(method, model) -> bool:
    """Whether the model offers what the method needs (else a run refuses it up front)."""
    return method.unsupported(tuple(model.latent_shape), model.abilities()) is None


@pytest.fixture(scope="session")
def random_digits() -> DigitsAdapter:
    """The digits architecture with random weights: fast, for loop mechanics."""
    torch.manual_seed(0)
    return DigitsAdapter(net=DigitsDenoiser().eval().requires_grad_(False))
