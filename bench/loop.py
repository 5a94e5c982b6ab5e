"""Generation as Lightning `Trainer.predict` over prompts.

One work item is one (method-config, prompt) pair with all its samples, so a
prompt's batches run in order on one rank (SPELL's inter-batch shields need
that). The writer callback saves each finished item atomically.
"""

from __future__ import annotations

import logging
import signal
import sys

import lightning as L
from lightning.pytorch.callbacks import BasePredictionWriter, Callback
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from bench.environment import is_global_zero as is_global_zero
from bench.errors import BenchError
from bench.launch import Launch, unknown_logger
from bench.models.base import ModelAdapter, Prompt
from bench.run_dir import RunDir
from bench.sampler import SamplingSettings, generate_prompt
from methods.base import DiversityMethod


class WorkItems(Dataset):
    def __init__(self, items: list[tuple[int, Prompt]]) -> None:
        self.items = items

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> tuple[int, Prompt]:
        return self.items[i]


def _single(batch: list):
    return batch[0]


class GenerationTask(L.LightningModule):
    def __init__(
        self,
        model: ModelAdapter,
        methods: list[DiversityMethod],
        settings: SamplingSettings,
        samples: int,
        batch_size: int,
        seed: int,
    ) -> None:
        super().__init__()
        self.adapter = model
        self.methods = methods
        self.settings = settings
        self.samples = samples
        self.sample_batch_size = batch_size
        self.seed = seed

    def on_predict_start(self) -> None:
        self.adapter.to(self.device)

    def transfer_batch_to_device(self, batch, device, dataloader_idx):
        # A work item holds no tensors, and Lightning cannot rebuild a frozen Prompt.
        return batch

    def predict_step(self, item: tuple[int, Prompt], batch_idx: int):
        method_index, prompt = item
        method = self.methods[method_index]
        arrays = generate_prompt(
            self.adapter,
            method,
            prompt,
            prompt.samples or self.samples,
            self.sample_batch_size,
            self.seed,
            self.settings,
        )
        if self.logger:
            seconds = float(arrays["seconds"].sum())
            self.logger.log_metrics(
                {
                    "images_per_second": len(arrays["seconds"]) / max(seconds, 1e-9),
                    "nfe_per_image": float(arrays["nfe"].mean()),
                },
                step=self.global_rank * 1_000_000 + batch_idx,
            )
        return method.id, prompt.id, arrays


class SampleWriter(BasePredictionWriter):
    def __init__(self, run: RunDir) -> None:
        super().__init__(write_interval="batch")
        self.run = run

    def write_on_batch_end(
        self, trainer, pl_module, prediction, batch_indices, batch, batch_idx, dataloader_idx=0
    ):
        method_id, prompt_id, arrays = prediction
        self.run.save_prompt(method_id, prompt_id, arrays)


class ImageProgress(Callback):
    """One bar on rank 0 in a terminal, counted in images, with ETA and images per second
    (closed on an error or Ctrl-C, so the message that follows starts a line)."""

    def __init__(self, images: int, items: int, label: str = "generating") -> None:
        self.images, self.items = images, items  # over every rank
        self.label = label
        self.bar = None

    def on_predict_start(self, trainer, pl_module) -> None:
        share = sum(trainer.num_predict_batches) / max(self.items, 1)  # this rank's
        self.bar = tqdm(
            total=round(self.images * share),
            desc=self.label,
            unit="img",
            dynamic_ncols=True,
            disable=not (trainer.is_global_zero and sys.stderr.isatty()),
        )

    def on_predict_batch_end(
        self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0
    ) -> None:
        self.bar.update(len(outputs[2]["images"]))

    def on_predict_end(self, trainer, pl_module) -> None:
        self.bar.close()

    def on_exception(self, trainer, pl_module, exception: BaseException) -> None:
        if self.bar is not None:
            self.bar.close()


def make_logger(kind: str, run: RunDir):
    from lightning.pytorch import loggers

    if kind == "none":
        return False
    if kind == "csv":
        return loggers.CSVLogger(run.path, name="logs", version="")
    if kind == "tensorboard":
        return loggers.TensorBoardLogger(run.path, name="logs", version="")
    if kind == "wandb":
        return loggers.WandbLogger(save_dir=run.path, name=run.path.name)
    raise BenchError(unknown_logger(kind))


def make_trainer(run: RunDir, launch: Launch, callbacks: list) -> L.Trainer:
    lightning_log = logging.getLogger("lightning.pytorch")  # its info lines are noise here
    lightning_log.setLevel(max(lightning_log.level, logging.WARNING))
    return L.Trainer(
        accelerator=launch.accelerator,
        devices=launch.devices,
        num_nodes=launch.num_nodes,
        strategy=launch.strategy,
        precision=launch.precision,
        logger=make_logger(launch.logger, run),
        callbacks=callbacks,
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
        inference_mode=False,
    )


def predict(trainer: L.Trainer, task: L.LightningModule, loader: DataLoader) -> None:
    """`trainer.predict`, except that Ctrl-C stays a KeyboardInterrupt: Lightning turns it
    into `sys.exit(1)` after its teardown (and ignores further Ctrl-C)."""
    try:
        trainer.predict(task, loader, return_predictions=False)
    except SystemExit:
        if not trainer.interrupted:
            raise
        signal.signal(signal.SIGINT, signal.default_int_handler)
        raise KeyboardInterrupt from None


def run_generation(
    run: RunDir,
    model: ModelAdapter,
    methods: list[DiversityMethod],
    prompts: list[Prompt],
    settings: SamplingSettings,
    samples: int,
    batch_size: int,
    seed: int,
    launch: Launch | None = None,
    progress: bool = True,
) -> int:
    """Generate every incomplete (method, prompt) item; returns how many this run did.

    Every rank computes the same to-do list (before any rank writes), and
    Lightning's unrepeated distributed sampler gives each item to one rank."""
    todo = [
        (m, p)
        for m, method in enumerate(methods)
        for p in prompts
        if not run.is_complete(method.id, p.id)
    ]
    if not todo:
        return 0
    task = GenerationTask(model, methods, settings, samples, batch_size, seed)
    images = sum(p.samples or samples for _, p in todo)
    callbacks = [SampleWriter(run)] + ([ImageProgress(images, len(todo))] if progress else [])
    trainer = make_trainer(run, launch or Launch(), callbacks)
    loader = DataLoader(WorkItems(todo), batch_size=1, collate_fn=_single)
    predict(trainer, task, loader)
    trainer.strategy.barrier()
    return len(todo) if trainer.is_global_zero else 0
