"""Feature extraction spread over processes, as generation is: Lightning `predict` over
(method-config, prompt) items and the prompts' reference sets, each rank filling the
feature caches (run and shared) that the scorer then reads. `bench run --devices N`
calls it between generation and scoring, so every rank extracts and rank 0 scores."""

from __future__ import annotations

from pathlib import Path

import lightning as L
from torch.utils.data import DataLoader, Dataset

from bench.loop import Launch, make_trainer, predict
from bench.run_dir import RunDir
from metrics.run_reader import method_dirs
from metrics.score import plan_spaces
from metrics.spaces import FeatureSpaces

Item = tuple[str, str]  # (method id, or "" for the reference set; prompt id)


class _Items(Dataset):
    def __init__(self, items: list[Item]) -> None:
        self.items = items

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> Item:
        return self.items[i]


class ExtractionTask(L.LightningModule):
    """Builds the extractors on its rank's device, then extracts one item per step."""

    def __init__(self, run: RunDir, extractors: list[str] | None, weights_dir: Path | None):
        super().__init__()
        self.run, self.names, self.weights_dir = run, extractors, weights_dir
        self.spaces: FeatureSpaces | None = None

    def on_predict_start(self) -> None:
        methods = method_dirs(self.run)
        plan = plan_spaces(self.run, methods, self.names)
        device = str(self.device)
        self.spaces = FeatureSpaces(
            self.run.path, plan.needed, plan.reference, self.weights_dir, device
        )
        self.methods = {m.method_id: m for m in methods}

    def transfer_batch_to_device(self, batch, device, dataloader_idx):
        return batch

    def predict_step(self, item: Item, batch_idx: int) -> None:
        method_id, prompt_id = item
        if method_id:
            method = self.methods[method_id]
            self.spaces.generated(method, method.load(prompt_id))
        else:
            self.spaces.reference_outputs(prompt_id)


def extraction_items(run: RunDir) -> list[Item]:
    methods = method_dirs(run)
    prompts = sorted({p for m in methods for p in m.prompt_ids()})
    items = [("", p) for p in prompts]
    return items + [(m.method_id, p) for m in methods for p in m.prompt_ids()]


def extract_features(
    run_dir: Path,
    launch: Launch,
    extractors: list[str] | None = None,
    weights_dir: Path | None = None,
) -> int:
    """Fill the feature caches of a generated run over `launch`'s processes; returns
    the items this rank extracted."""
    run = RunDir(run_dir)
    items = extraction_items(run)
    task = ExtractionTask(run, extractors, weights_dir)
    trainer = make_trainer(run, launch, [])
    loader = DataLoader(_Items(items), batch_size=1, collate_fn=lambda batch: batch[0])
    predict(trainer, task, loader)
    trainer.strategy.barrier()
    return len(items)
