"""How generation and feature extraction are launched: Lightning's process settings,
kept apart from bench.loop so that reading them (and failing on them) imports no
Lightning."""

from __future__ import annotations

from dataclasses import dataclass

from bench.errors import BenchError


@dataclass
class Launch:
    """Lightning's own process settings: one CPU, many GPUs or a SLURM cluster."""

    accelerator: str = "auto"
    devices: int | str = 1
    num_nodes: int = 1
    strategy: str = "auto"
    precision: str | None = None
    logger: str = "csv"

    def __post_init__(self) -> None:
        if self.logger not in LOGGERS:
            raise BenchError(unknown_logger(self.logger))

    @property
    def parallel(self) -> bool:
        """More than one process or device may take part (Lightning decides `auto`)."""
        return self.devices not in (1, "1") or self.num_nodes != 1


LOGGERS = ("csv", "tensorboard", "wandb", "none")


def unknown_logger(kind: str) -> str:
    return f"unknown logger {kind!r}: use {', '.join(LOGGERS[:-1])} or {LOGGERS[-1]}"
