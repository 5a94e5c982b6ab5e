"""Train the toy2d MLP denoisers: `toy2d` and the weaker `toy2d-weak`.

`bench train toy2d [--which toy2d|toy2d-weak|both]` (CPU, a few minutes).

Data: a fixed, seeded set of exact samples of the true mixture (classes balanced).
Loss: EDM's x0 loss with weight (s^2 + sd^2) / (s sd)^2 (the preconditioned output's
MSE), at timesteps drawn uniformly from the 1000 training steps of the toy2d schedule
(uniform in log-noise), with label dropout to the null column so that classifier-free
guidance exists. Adam with linear warm-up and cosine decay; the weights saved are an
EMA of the trained ones (safetensors, atomic), and bench/weights/toy2d.json records
each network's architecture and training settings.

`toy2d-weak` is the autoguidance-style bad version: fewer, narrower layers and under
half the training steps (alone it is very blurry; as autoguidance's guide for `toy2d`,
x0_weak + w (x0 - x0_weak), it raises log-density at w = 2 to 2.71 with coverage 0.96).

The committed `toy2d` with the default sampler (DDPM, 50 steps), 4 classes x 256
samples, run seed 0, batches of 64, metrics/exact.py, class means:

    w    log-density  coverage  weighted cov.  entropy (pi: 2.358)  outliers
    1.0     1.996       0.882       0.971           2.176             0.042
    1.5     2.666       0.779       0.939           1.812             0.012
    2.0     2.824       0.632       0.893           1.578             0.008
    3.0     3.028       0.426       0.796           1.305             0.005
    5.0     3.265       0.309       0.688           1.007             0.002

(`toy2d-exact` at w = 1: 2.712, 0.985, 0.997, 2.246, 0.002.)

The defaults of `RECIPES` made the committed weights (torch 2.14.1, one thread, 2-core
CPU, about 3.5 + 1.2 minutes; a rerun on the same build reproduced the final losses
exactly); another torch build reproduces them up to float rounding, not bit for bit.
"""

from __future__ import annotations

import copy
import json
import time
import warnings
from pathlib import Path

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, TensorDataset

from bench.atomic import atomic_write_text
from bench.models.toy2d import (
    NULL_CLASS,
    NUM_CLASSES,
    SETTINGS,
    WEAK_WEIGHTS,
    WEIGHTS,
    Toy2DDenoiser,
    make_toy2d_scheduler,
    toy2d_ground_truth,
)
from bench.train_digits import save_weights_atomic, warmup_cosine

_TRAINING = {
    "batch_size": 2048,
    "lr": 3e-3,
    "warmup_steps": 200,
    "label_dropout": 0.15,
    "ema_decay": 0.999,
    "data_size": 262144,
    "seed": 0,
}
RECIPES: dict[str, dict] = {
    "toy2d": {
        "architecture": {"hidden": 128, "layers": 4, "embed_dim": 32},
        "training": {"steps": 6000, **_TRAINING},
    },
    "toy2d-weak": {  # the weaker guide: smaller and shorter-trained
        "architecture": {"hidden": 64, "layers": 3, "embed_dim": 32},
        "training": {"steps": 2500, **_TRAINING},
    },
}
OUTPUTS = {"toy2d": WEIGHTS, "toy2d-weak": WEAK_WEIGHTS}


def training_data(size: int, seed: int) -> TensorDataset:
    """`size` exact samples, size / C per class, with their labels."""
    truth = toy2d_ground_truth()
    rng = np.random.default_rng(seed)
    per = size // NUM_CLASSES
    points = np.concatenate([truth.sample(per, rng, c) for c in range(NUM_CLASSES)])
    labels = np.repeat(np.arange(NUM_CLASSES), per)
    return TensorDataset(torch.from_numpy(points).float(), torch.from_numpy(labels))


class Toy2DDiffusion(L.LightningModule):
    def __init__(
        self,
        architecture: dict,
        lr: float,
        warmup_steps: int,
        total_steps: int,
        label_dropout: float,
        ema_decay: float,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.net = Toy2DDenoiser(**architecture)
        self.ema = copy.deepcopy(self.net).requires_grad_(False).eval()
        abar = make_toy2d_scheduler().alphas_cumprod.clone().float()
        self.register_buffer("alphas_cumprod", abar, persistent=False)
        self.ema_updates = 0

    def diffusion_loss(self, x0: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        n = x0.shape[0]
        drop = torch.rand(n, device=x0.device) < self.hparams.label_dropout
        labels = torch.where(drop, torch.full_like(labels, NULL_CLASS), labels)
        cond = torch.nn.functional.one_hot(labels, NUM_CLASSES + 1).float()
        t = torch.randint(0, len(self.alphas_cumprod), (n,), device=x0.device)
        abar = self.alphas_cumprod[t][:, None]
        alpha, sigma = abar.sqrt(), (1.0 - abar).sqrt()
        x_t = alpha * x0 + sigma * torch.randn_like(x0)
        pred = self.net(x_t, alpha, sigma, cond)
        s, sd = sigma / alpha, self.net.sigma_data
        weight = (s**2 + sd**2) / (s * sd) ** 2
        return (weight * (pred - x0) ** 2).sum(1).mean() / 2.0

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        loss = self.diffusion_loss(*batch)
        self.log("train_loss", loss, on_step=False, on_epoch=True, batch_size=batch[0].shape[0])
        return loss

    def on_train_batch_end(self, outputs, batch, batch_idx: int) -> None:
        self.ema_updates += 1
        decay = min(self.hparams.ema_decay, (1 + self.ema_updates) / (10 + self.ema_updates))
        with torch.no_grad():
            for ema_p, p in zip(self.ema.parameters(), self.net.parameters(), strict=True):
                ema_p.lerp_(p, 1.0 - decay)

    def configure_optimizers(self):
        hp = self.hparams
        opt = torch.optim.Adam(self.net.parameters(), lr=hp.lr)
        sched = torch.optim.lr_scheduler.LambdaLR(
            opt, lambda s: warmup_cosine(s, hp.warmup_steps, hp.total_steps)
        )
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}


def train_toy2d(which: str = "toy2d", out: Path | None = None, progress: bool = False) -> dict:
    """Train one recipe and save its EMA weights; returns a summary (also in toy2d.json)."""
    recipe = RECIPES[which]
    arch, tr = recipe["architecture"], recipe["training"]
    out = out or OUTPUTS[which]
    L.seed_everything(tr["seed"], workers=True, verbose=False)
    data = training_data(tr["data_size"], tr["seed"])
    gen = torch.Generator().manual_seed(tr["seed"])
    loader = DataLoader(
        data, batch_size=tr["batch_size"], shuffle=True, drop_last=True, generator=gen
    )
    module = Toy2DDiffusion(
        arch, tr["lr"], tr["warmup_steps"], tr["steps"], tr["label_dropout"], tr["ema_decay"]
    )
    trainer = L.Trainer(
        accelerator="cpu",
        devices=1,
        max_steps=tr["steps"],
        max_epochs=-1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=progress,
        enable_model_summary=False,
        deterministic=True,
    )
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*does not have many workers.*")
        trainer.fit(module, loader)
    seconds = time.perf_counter() - start
    save_weights_atomic(module.ema, out)
    summary = {
        "architecture": arch,
        "training": tr,
        "steps": trainer.global_step,
        "final_loss": float(trainer.callback_metrics.get("train_loss", float("nan"))),
        "seconds": round(seconds, 1),
        "parameters": sum(p.numel() for p in module.ema.parameters()),
        "torch": torch.__version__,
    }
    _record(out.stem, summary)
    return summary


def _record(key: str, summary: dict, path: Path = SETTINGS) -> None:
    settings = json.loads(path.read_text()) if path.exists() else {}
    settings[key] = summary
    atomic_write_text(path, json.dumps(settings, indent=2, sort_keys=True) + "\n")
