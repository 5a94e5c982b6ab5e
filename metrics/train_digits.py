"""Train the embedded digits classifier with Lightning (`bench train digits-features`)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import lightning as L
import torch
import torch.nn.functional as F
from safetensors.torch import save

from bench.atomic import atomic_write_bytes
from bench.data.digits import load_split
from metrics.digits_classifier import (
    FEATURE_DIM,
    FORMAT,
    WEIGHTS,
    DigitsClassifier,
    uint8_to_input,
    unit_to_uint8,
)
from metrics.threads import intra_op_threads


class ClassifierModule(L.LightningModule):
    def __init__(self, net: DigitsClassifier, lr: float, epochs: int) -> None:
        super().__init__()
        self.net, self.lr, self.epochs = net, lr, epochs

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], _: int) -> torch.Tensor:
        x, y = batch
        _, logits = self.net(_augment(x))
        return F.cross_entropy(logits, y, label_smoothing=0.05)

    def configure_optimizers(self):
        opt = torch.optim.AdamW(self.net.parameters(), lr=self.lr, weight_decay=1e-4)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=self.epochs)
        return [opt], [sched]


def _augment(x: torch.Tensor) -> torch.Tensor:
    """Random shifts of up to one pixel (zero = black fill), so features tolerate jitter."""
    padded = F.pad(x, (1, 1, 1, 1), value=-1.0)
    dx, dy = torch.randint(0, 3, (2,)).tolist()
    return padded[:, :, dy : dy + x.shape[2], dx : dx + x.shape[3]]


def _quantised(split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """The split as the scorer sees it: through uint8, like generated images."""
    data = load_split(split)
    x = uint8_to_input(torch.from_numpy(unit_to_uint8(data.images)))
    return x, torch.from_numpy(data.labels)


@torch.no_grad()
def held_out_accuracy(net: DigitsClassifier) -> float:
    x, y = _quantised("held_out")
    _, logits = net.eval()(x)
    return float((logits.argmax(1) == y).float().mean())


def train_digits_classifier(
    out: Path = WEIGHTS,
    seed: int = 0,
    epochs: int = 60,
    batch_size: int = 64,
    lr: float = 3e-3,
    feature_dim: int = FEATURE_DIM,
) -> float:
    """Train on the train split, write safetensors atomically to `out`, return held-out accuracy.

    Runs on one CPU thread: faster for this tiny CNN, and the weights do not depend on
    the machine's core count (float sums are ordered differently with more threads).
    """
    with intra_op_threads(1):
        net = _fit(seed, epochs, batch_size, lr, feature_dim)
    accuracy = held_out_accuracy(net)
    meta = {
        "format": FORMAT,
        "feature_dim": str(feature_dim),
        "seed": str(seed),
        "epochs": str(epochs),
        "held_out_accuracy": f"{accuracy:.4f}",
    }
    state = {k: v.detach().contiguous() for k, v in net.state_dict().items()}
    atomic_write_bytes(Path(out), save(state, metadata=meta))
    return accuracy


def _fit(seed: int, epochs: int, batch_size: int, lr: float, feature_dim: int) -> DigitsClassifier:
    L.seed_everything(seed, workers=True, verbose=False)
    x, y = _quantised("train")
    loader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(x, y), batch_size=batch_size, shuffle=True
    )
    net = DigitsClassifier(feature_dim=feature_dim)
    with tempfile.TemporaryDirectory() as root:
        trainer = L.Trainer(
            max_epochs=epochs,
            accelerator="cpu",
            devices=1,
            logger=False,
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            deterministic=True,
            default_root_dir=root,
        )
        trainer.fit(ClassifierModule(net, lr, epochs), loader)
    return net
