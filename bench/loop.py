"""Generation as Lightning `Trainer.predict` over prompts.

One work item is one (method-config, prompt) pair with all its samples, so a
prompt's batches run in order on one rank (SPELL's inter-batch shields need
that). The writer callback saves each finished item atomically.
"""

from __future__ import annotations

import logging

import lightning as L
from lightning.pytorch.callbacks import BasePredictionWriter
from torch.utils.data import DataLoader, Dataset

from bench.models.base import ModelAdapter, Prompt
from bench.run_dir import RunDir, atomic_save_npz
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

    def predict_step(self, item: tuple[int, Prompt], batch_idx: int):
        method_index, prompt = item
        method = self.methods[method_index]
        arrays = generate_prompt(
            self.adapter, method, prompt, self.samples, self.sample_batch_size, self.seed,
            self.settings,
        )
        return method.id, prompt.id, arrays


class SampleWriter(BasePredictionWriter):
    def __init__(self, run: RunDir) -> None:
        super().__init__(write_interval="batch")
        self.run = run

    def write_on_batch_end(self, trainer, pl_module, prediction, batch_indices, batch, batch_idx,
                           dataloader_idx=0):
        method_id, prompt_id, arrays = prediction
        atomic_save_npz(self.run.sample_file(method_id, prompt_id), arrays)


def run_generation(
    run: RunDir,
    model: ModelAdapter,
    methods: list[DiversityMethod],
    prompts: list[Prompt],
    settings: SamplingSettings,
    samples: int,
    batch_size: int,
    seed: int,
    progress: bool = True,
) -> int:
    """Generate every incomplete (method, prompt) item; returns how many ran."""
    todo = [
        (m, p)
        for m, method in enumerate(methods)
        for p in prompts
        if not run.is_complete(method.id, p.id)
    ]
    if not todo:
        return 0
    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)
    task = GenerationTask(model, methods, settings, samples, batch_size, seed)
    trainer = L.Trainer(
        accelerator="cpu" if model.device.type == "cpu" else "auto",
        devices=1,
        logger=False,
        callbacks=[SampleWriter(run)],
        enable_progress_bar=progress,
        enable_model_summary=False,
        inference_mode=False,
    )
    loader = DataLoader(WorkItems(todo), batch_size=1, collate_fn=_single)
    trainer.predict(task, loader, return_predictions=False)
    return len(todo)
