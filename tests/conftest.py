import pytest
import torch

from bench.models.digits import DigitsAdapter, DigitsDenoiser

# One intra-op thread: tests are small, and on a busy 2-core machine extra threads
# spin against each other (subprocess tests pass --threads themselves).
torch.set_num_threads(1)


@pytest.fixture(autouse=True, scope="session")
def _own_cache(tmp_path_factory):
    """Listings the commands keep (methods.registry.cache_dir) go to a test folder."""
    import os

    os.environ.setdefault("SPELLBENCH_CACHE", str(tmp_path_factory.mktemp("cache")))


def fits(method, model) -> bool:
    """Whether the model offers what the method needs (else a run refuses it up front,
    in one line)."""
    from bench.errors import BenchError
    from bench.generate import check_methods_fit

    try:
        check_methods_fit(model, [method])
    except BenchError as err:
        assert "\n" not in str(err) and "cannot run on model" in str(err)
        return False
    return True


def sample_or_refuse(model, name: str, guidance: float, steps: int):
    """Method `name` (defaults) on 4 samples in batches of 2, or None when the model
    refuses it up front (in one line, checked by `fits`)."""
    from bench.sampler import SamplingSettings, generate_prompt
    from methods.registry import expand

    method = expand(name)[0]
    if not fits(method, model):
        return None
    settings = SamplingSettings(guidance, steps)
    return generate_prompt(model, method, model.prompts()[0], 4, 2, 0, settings)


@pytest.fixture(scope="session")
def random_digits() -> DigitsAdapter:
    """The digits architecture with random weights: fast, for loop mechanics."""
    torch.manual_seed(0)
    return DigitsAdapter(net=DigitsDenoiser().eval().requires_grad_(False))
