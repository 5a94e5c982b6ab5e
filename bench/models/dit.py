"""`dit`: DiT-XL/2 256, class-conditional ImageNet (DiTPipeline components).

The condition handed to methods is the class-embedding vector (what CADS
noises), not the label: `predict` feeds it to the transformer in place of its
label-embedding lookup. The converted checkpoints hold one embedding table per
block, all copies of DiT's single `y_embedder`; we require that they agree.
The transformer learns its variance: the first half of its output channels is
epsilon, the rest is ignored (as the pipeline does). The null class is 1000.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from diffusers import DiTPipeline

from bench.errors import BenchError
from bench.models.base import Prompt
from bench.models.pipelines import PipelineAdapter, Weights, batch_timestep, load_pipeline

WEIGHTS = Weights("dit", "facebook/DiT-XL-2-256", "SPELLBENCH_DIT_PATH")


class _GivenVectors(torch.nn.Module):
    """Stands in for a LabelEmbedding: returns the class vectors it is handed."""

    def forward(self, vectors: torch.Tensor, force_drop_ids=None) -> torch.Tensor:
        return vectors


@contextmanager
def given_class_vectors(transformer: torch.nn.Module) -> Iterator[None]:
    """Within the block, `class_labels` passed to the transformer are embedding vectors."""
    embedders = [block.norm1.emb for block in transformer.transformer_blocks]
    originals = [e.class_embedder for e in embedders]
    given = _GivenVectors()
    for e in embedders:
        e.class_embedder = given
    try:
        yield
    finally:
        for e, original in zip(embedders, originals, strict=True):
            e.class_embedder = original


def class_names(pipe: DiTPipeline) -> dict[int, str]:
    """ImageNet class id -> its names, from the pipeline's id2label (empty without one)."""
    names: dict[int, list[str]] = {}
    for label, class_id in pipe.labels.items():
        names.setdefault(int(class_id), []).append(label)
    return {i: ", ".join(sorted(n)) for i, n in names.items()}


class DiTAdapter(PipelineAdapter):
    name = "dit"
    default_guidance = 4.0
    default_steps = 50

    def __init__(self, pipe: DiTPipeline) -> None:
        super().__init__(pipe)
        config = pipe.transformer.config
        self.channels = config.in_channels
        self.latent_shape = (config.in_channels, config.sample_size, config.sample_size)
        self.embedder = pipe.transformer.transformer_blocks[0].norm1.emb.class_embedder
        self.num_classes = self.embedder.num_classes
        self._check_shared_table()

    def _check_shared_table(self) -> None:
        table = self.embedder.embedding_table.weight
        if table.shape[0] <= self.num_classes:
            raise BenchError("this DiT has no null-class embedding: it cannot run with CFG")
        for block in self.pipe.transformer.transformer_blocks[1:]:
            other = block.norm1.emb.class_embedder.embedding_table.weight
            if not torch.equal(other, table):
                raise BenchError(
                    "DiT blocks hold different class-embedding tables; the dit "
                    "adapter expects one shared table (as in facebook/DiT-XL-2-*)"
                )

    @property
    def network(self) -> torch.nn.Module:
        return self.pipe.transformer

    def prompts(self) -> list[Prompt]:
        names = class_names(self.pipe)
        return [
            Prompt(id=str(c), text=names.get(c, f"class {c}"), label=c)
            for c in range(self.num_classes)
        ]

    def condition(self, prompts: list[Prompt]) -> torch.Tensor:
        return self._vectors([p.label for p in prompts])

    def null_condition(self, n: int) -> torch.Tensor:
        return self._vectors([self.num_classes] * n)

    def _vectors(self, labels: list[int]) -> torch.Tensor:
        return self.embedder.embedding_table(torch.tensor(labels, device=self.device))

    def predict(self, x_t, timestep, cond):
        with given_class_vectors(self.pipe.transformer):
            out = self.pipe.transformer(
                x_t,
                timestep=batch_timestep(timestep, x_t.shape[0], self.device),
                class_labels=cond,
            ).sample
        if out.shape[1] == 2 * self.channels:
            return out[:, : self.channels]
        return out


def load_dit(model_path=None, dtype="float32", device="cpu", **_) -> DiTAdapter:
    return DiTAdapter(load_pipeline(DiTPipeline, WEIGHTS, model_path, dtype, device))
