"""What the command-line modules share: option and argument helpers."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def _opt(*names: str, help: str):
    return typer.Option(*names, help=help)


RunDirArg = Annotated[Path, typer.Argument(help="a run directory")]
