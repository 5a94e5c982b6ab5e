import pytest
import torch

from bench.data.digits import load_split
from bench.models.digits import NULL_CLASS
from bench.train_digits import DigitsDiffusion, drop_labels, random_shift


@pytest.mark.filterwarnings("ignore:.*self.trainer. reference is not registered")
def test_training_steps_decrease_the_loss_on_a_fixed_batch():
    torch.manual_seed(0)
    module = DigitsDiffusion(lr=2e-3, total_steps=20, warmup_steps=1)
    opt = module.configure_optimizers()["optimizer"]
    split = load_split("train")
    batch = (torch.from_numpy(split.images[:32]), torch.from_numpy(split.labels[:32]))

    def loss_at_fixed_noise() -> float:
        torch.manual_seed(1)  # same timesteps, noise and dropped labels every time
        with torch.no_grad():
            return module.diffusion_loss(*batch).item()

    before = loss_at_fixed_noise()
    ema_before = module.ema.unet.conv_in.weight.clone()
    for step in range(20):
        opt.zero_grad()
        module.training_step(batch, step).backward()
        opt.step()
        module.update_ema()
    assert loss_at_fixed_noise() < 0.7 * before
    assert not torch.equal(module.ema.unet.conv_in.weight, ema_before)


def test_label_dropout_rate():
    labels = torch.arange(10).repeat(5000)
    dropped = drop_labels(labels, 0.15, torch.Generator().manual_seed(0))
    is_null = dropped == NULL_CLASS
    assert abs(is_null.float().mean().item() - 0.15) < 0.01
    assert torch.equal(dropped[~is_null], labels[~is_null])
    assert not (drop_labels(labels, 0.0) == NULL_CLASS).any()


def test_random_shift_moves_by_at_most_one_pixel():
    torch.manual_seed(0)
    images = torch.from_numpy(load_split("train").images[:64])
    shifted = random_shift(images, 1.0)
    assert shifted.shape == images.shape
    for img, out in zip(images, shifted, strict=True):
        padded = torch.nn.functional.pad(img, (1, 1, 1, 1), value=-1.0)
        windows = [padded[:, r : r + 8, c : c + 8] for r in range(3) for c in range(3)]
        assert any(torch.equal(out, w) for w in windows)
    assert torch.equal(random_shift(images, 0.0), images)
