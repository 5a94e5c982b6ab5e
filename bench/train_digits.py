"""Train the embedded digits UNet (`bench train digits`).

Standard DDPM epsilon-prediction on the training split, on the noise schedule of
`make_digits_scheduler()`, with label dropout to the null class so that
classifier-free guidance works. The weights saved are an EMA of the trained ones.
The defaults of `train_digits_unet` are the recipe of the committed weights (made with
torch 2.14.1 on a busy 2-core CPU, about 55 minutes); another torch build or thread
count reproduces them up to float rounding, not bit for bit.

`bench train digits --weak` trains autoguidance's guide with `train_weak_digits_unet`:
the same design and recipe at `WEAK_CHANNELS` widths, for `WEAK_EPOCHS` epochs; beside
its weights, digits_unet_weak.json records its settings and both networks' size and
`fixed_noise_loss` (the summary's final_loss is a training-epoch mean, which the main
weights do not record).
"""

from __future__ import annotations

import copy
import json
import math
import os
import time
import warnings
from pathlib import Path

import lightning as L
import torch
from safetensors.torch import save
from torch.utils.data import DataLoader, TensorDataset

from bench.atomic import atomic_write_text
from bench.data.digits import load_split
from bench.models.digits import (
    CHANNELS,
    NULL_CLASS,
    WEAK_CHANNELS,
    WEAK_WEIGHTS,
    WEIGHTS,
    DigitsDenoiser,
    load_denoiser,
    make_digits_scheduler,
)

DEFAULT_EPOCHS = 400
DEFAULT_SEED = 0
DEFAULT_BATCH_SIZE = 128
DEFAULT_LR = 2e-3
LABEL_DROPOUT = 0.15
EMA_DECAY = 0.999
WARMUP_STEPS = 100
SHIFT_PROB = 0.0
WEAK_EPOCHS = 100


def drop_labels(labels: torch.Tensor, p: float, generator: torch.Generator | None = None):
    """Replace each label by the null class with probability p."""
    drop = torch.rand(labels.shape, generator=generator, device=labels.device) < p
    return torch.where(drop, torch.full_like(labels, NULL_CLASS), labels)


def random_shift(images: torch.Tensor, p: float) -> torch.Tensor:
    """Shift each image by up to one pixel per axis with probability p (background fill)."""
    if p <= 0:
        return images
    n, _, h, w = images.shape
    padded = torch.nn.functional.pad(images, (1, 1, 1, 1), value=-1.0)
    offsets = torch.randint(-1, 2, (n, 2), device=images.device)
    offsets = offsets * (torch.rand(n, 1, device=images.device) < p)
    rows = torch.arange(h, device=images.device) + 1 + offsets[:, :1]
    cols = torch.arange(w, device=images.device) + 1 + offsets[:, 1:]
    batch = torch.arange(n, device=images.device)[:, None, None]
    return padded[batch, 0, rows[:, :, None], cols[:, None, :]].unsqueeze(1)


def warmup_cosine(step: int, warmup: int, total: int) -> float:
    """LR multiplier: linear warm-up, then cosine decay to zero at `total`."""
    if step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return 0.5 * (1.0 + math.cos(math.pi * progress))


class DigitsDiffusion(L.LightningModule):
    """DDPM epsilon-prediction training of `DigitsDenoiser`, with an EMA copy."""

    def __init__(
        self,
        lr: float = DEFAULT_LR,
        label_dropout: float = LABEL_DROPOUT,
        ema_decay: float = EMA_DECAY,
        shift_prob: float = SHIFT_PROB,
        total_steps: int = 1,
        warmup_steps: int = WARMUP_STEPS,
        block_out_channels: tuple[int, ...] = CHANNELS,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.net = DigitsDenoiser(block_out_channels)
        self.ema = copy.deepcopy(self.net).requires_grad_(False).eval()
        scheduler = make_digits_scheduler()
        self.num_timesteps = scheduler.config.num_train_timesteps
        self.register_buffer("alphas_cumprod", scheduler.alphas_cumprod.clone(), persistent=False)
        self.ema_updates = 0

    def diffusion_loss(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        images = random_shift(images, self.hparams.shift_prob)
        labels = drop_labels(labels, self.hparams.label_dropout)
        t = torch.randint(0, self.num_timesteps, (images.shape[0],), device=images.device)
        noise = torch.randn_like(images)
        abar = self.alphas_cumprod[t].view(-1, 1, 1, 1)
        x_t = abar.sqrt() * images + (1.0 - abar).sqrt() * noise
        pred = self.net(x_t, t, self.net.label_embedding(labels))
        return torch.nn.functional.mse_loss(pred, noise)

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        loss = self.diffusion_loss(*batch)
        self.log("train_loss", loss, on_step=False, on_epoch=True, batch_size=batch[0].shape[0])
        return loss

    def on_train_batch_end(self, outputs, batch, batch_idx: int) -> None:
        self.update_ema()

    @torch.no_grad()
    def update_ema(self) -> None:
        # Short warm-up so the EMA is not dominated by the random init early on.
        self.ema_updates += 1
        decay = min(self.hparams.ema_decay, (1 + self.ema_updates) / (10 + self.ema_updates))
        for ema_p, p in zip(self.ema.parameters(), self.net.parameters(), strict=True):
            ema_p.lerp_(p, 1.0 - decay)
        for ema_b, b in zip(self.ema.buffers(), self.net.buffers(), strict=True):
            ema_b.copy_(b)

    def configure_optimizers(self):
        hp = self.hparams
        opt = torch.optim.AdamW(self.net.parameters(), lr=hp.lr, weight_decay=1e-4)
        sched = torch.optim.lr_scheduler.LambdaLR(
            opt, lambda s: warmup_cosine(s, hp.warmup_steps, hp.total_steps)
        )
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}


def train_loader(batch_size: int, seed: int) -> DataLoader:
    split = load_split("train")
    data = TensorDataset(torch.from_numpy(split.images), torch.from_numpy(split.labels))
    gen = torch.Generator().manual_seed(seed)
    return DataLoader(data, batch_size=batch_size, shuffle=True, drop_last=True, generator=gen)


def save_weights_atomic(net: DigitsDenoiser, out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    state = {k: v.detach().cpu().contiguous().clone() for k, v in net.state_dict().items()}
    tmp.write_bytes(save(state))
    os.replace(tmp, out)


def train_digits_unet(
    out: Path = WEIGHTS,
    epochs: int = DEFAULT_EPOCHS,
    seed: int = DEFAULT_SEED,
    batch_size: int = DEFAULT_BATCH_SIZE,
    lr: float = DEFAULT_LR,
    label_dropout: float = LABEL_DROPOUT,
    shift_prob: float = SHIFT_PROB,
    max_steps: int = -1,
    progress: bool = False,
    block_out_channels: tuple[int, ...] = CHANNELS,
) -> dict:
    """Train and save the EMA weights to `out` (safetensors, atomic). Returns a summary."""
    L.seed_everything(seed, workers=True, verbose=False)
    loader = train_loader(batch_size, seed)
    total = epochs * len(loader) if max_steps < 0 else min(max_steps, epochs * len(loader))
    module = DigitsDiffusion(
        lr=lr,
        label_dropout=label_dropout,
        shift_prob=shift_prob,
        total_steps=total,
        block_out_channels=block_out_channels,
    )
    trainer = L.Trainer(
        accelerator="cpu",
        devices=1,
        max_epochs=epochs,
        max_steps=max_steps,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=progress,
        enable_model_summary=False,
        log_every_n_steps=1,
    )
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*does not have many workers.*")
        warnings.filterwarnings("ignore", message=".*module\\(s\\) in eval mode.*")
        trainer.fit(module, loader)
    save_weights_atomic(module.ema, out)
    return {
        "path": str(out),
        "epochs": trainer.current_epoch,
        "steps": trainer.global_step,
        "final_loss": float(trainer.callback_metrics.get("train_loss", float("nan"))),
        "seconds": time.perf_counter() - start,
        "parameters": sum(p.numel() for p in module.ema.parameters()),
    }


@torch.no_grad()
def fixed_noise_loss(net: DigitsDenoiser, split: str, levels: int = 10, seed: int = 0) -> float:
    """The epsilon MSE over a split's images at `levels` evenly spaced training timesteps,
    with the true labels and seeded noise: the same draws for every network."""
    data = load_split(split)
    images, labels = torch.from_numpy(data.images), torch.from_numpy(data.labels)
    abar = make_digits_scheduler().alphas_cumprod
    gen = torch.Generator().manual_seed(seed)
    total = 0.0
    for t in torch.linspace(0, len(abar) - 1, levels).round().long():
        noise = torch.randn(images.shape, generator=gen)
        x_t = abar[t].sqrt() * images + (1.0 - abar[t]).sqrt() * noise
        pred = net(x_t, t.expand(len(images)), net.label_embedding(labels))
        total += torch.nn.functional.mse_loss(pred, noise).item()
    return total / levels


def network_summary(net: DigitsDenoiser) -> dict:
    return {
        "parameters": sum(p.numel() for p in net.parameters()),
        "fixed_noise_loss": {s: fixed_noise_loss(net, s) for s in ("train", "held_out")},
    }


def train_weak_digits_unet(
    out: Path = WEAK_WEIGHTS, seed: int = DEFAULT_SEED, progress: bool = False
) -> dict:
    """Train the weak guide, save it, and write its summary beside it (a .json, also
    returned): settings, training loss and time, and both networks' size and losses."""
    summary = train_digits_unet(
        out, epochs=WEAK_EPOCHS, seed=seed, progress=progress, block_out_channels=WEAK_CHANNELS
    )
    summary = {
        "architecture": {"block_out_channels": list(WEAK_CHANNELS)},
        "training": {
            "epochs": WEAK_EPOCHS,
            "seed": seed,
            "batch_size": DEFAULT_BATCH_SIZE,
            "lr": DEFAULT_LR,
            "label_dropout": LABEL_DROPOUT,
            "ema_decay": EMA_DECAY,
            "warmup_steps": WARMUP_STEPS,
        },
        "steps": summary["steps"],
        "final_loss": summary["final_loss"],
        "seconds": round(summary["seconds"], 1),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "networks": {
            WEIGHTS.stem: network_summary(load_denoiser(WEIGHTS)),
            out.stem: network_summary(load_denoiser(out, WEAK_CHANNELS)),
        },
    }
    text = json.dumps(summary, indent=2, sort_keys=True) + "\n"
    atomic_write_text(out.with_suffix(".json"), text)
    return summary
