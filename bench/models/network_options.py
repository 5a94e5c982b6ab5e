"""Speed options of the denoiser: channels-last memory format and `torch.compile`, in
place on the adapter's network, before the first step (they change no formula; a
compiled network may round differently in the last bits)."""

from __future__ import annotations

import torch

from bench.errors import BenchError
from bench.models.base import ModelAdapter


def prepare_network(model: ModelAdapter, channels_last: bool, backend: str | None) -> None:
    if not channels_last and backend is None:
        return
    net = model.denoiser()
    if net is None:
        raise BenchError(
            f"model {model.name!r} has no denoiser network for --channels-last / --compile"
        )
    if backend is not None:
        if backend not in torch._dynamo.list_backends(exclude_tags=()):
            choices = ", ".join(torch._dynamo.list_backends())  # the non-debug ones
            raise BenchError(f"unknown --compile backend {backend!r}: use one of {choices}")
    if channels_last:
        net.to(memory_format=torch.channels_last)
    if backend is not None:
        net.compile(backend=backend)
