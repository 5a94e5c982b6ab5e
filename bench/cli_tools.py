"""`bench train`, `bench protect` and `bench data`: the commands that build things
(weights, protected sets, datasets) rather than run the benchmark."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from bench.cli_common import _opt
from bench.errors import BenchError

train_app = typer.Typer(no_args_is_help=True, help="Train the embedded models.")
protect_app = typer.Typer(no_args_is_help=True, help="Protected sets: build and evaluate.")


@protect_app.command("build")
def protect_build(
    images: Annotated[str, _opt("--images", help="digits-train, digits-held_out or a folder")],
    out: Annotated[Path, _opt("--out", help="index directory to write")],
    model: Annotated[str, _opt("--model", help="model whose space the shields live in")] = "digits",
    model_path: Annotated[str | None, _opt("--model-path", help="local weights")] = None,
    backend: Annotated[str, _opt("--backend", help="exact or faiss-ivf")] = "exact",
    nlist: Annotated[int | None, _opt("--nlist", help="IVF cells (default sqrt(N))")] = None,
    device: Annotated[str, _opt("--device", help="cpu, cuda ...")] = "cpu",
    dtype: Annotated[
        str, _opt("--dtype", help="storage: float32, or float16 (half the disk; rounding printed)")
    ] = "float32",
):
    """Encode images into the model's diffusion space and save them as a protected set."""
    from bench.models.registry import load_model
    from bench.protect import build_protected_set
    from bench.shields import describe_shields
    from bench.shields.store import DISK_DTYPES

    if dtype not in DISK_DTYPES:
        raise BenchError(f"unknown --dtype {dtype!r}: use {' or '.join(DISK_DTYPES)}")
    kwargs = {"device": device} | ({"model_path": model_path} if model_path else {})
    path = build_protected_set(
        load_model(model, **kwargs),
        images,
        out,
        backend=backend,
        nlist=nlist,
        dtype=DISK_DTYPES[dtype],
    )
    typer.echo(describe_shields(path))


@protect_app.command("eval")
def protect_eval(
    index: Annotated[Path, typer.Argument(help="a protected set (bench protect build)")],
    model: Annotated[str, _opt("--model", help="model")] = "digits",
    radius: Annotated[float | None, _opt("--radius", help="r (default: 10% of plain hit)")] = None,
    backends: Annotated[str, _opt("--backends", help="exact,projected,faiss-ivf:1 ...")] = (
        "exact,faiss-ivf:1,faiss-ivf:2,faiss-ivf:10"
    ),
    samples: Annotated[int, _opt("--samples", help="samples per prompt")] = 20,
    seed: Annotated[int, _opt("--seed", help="seed")] = 0,
    out: Annotated[Path | None, _opt("--out", help="write protection.json/.md here")] = None,
):
    """Table 2: share of images within r of a protected image, with and without SPELL."""
    from bench.atomic import atomic_write_text
    from bench.models.registry import load_model
    from bench.protect import evaluate_protection, parse_backends

    report_ = evaluate_protection(
        load_model(model),
        index,
        radius=radius,
        backends=parse_backends(backends),
        samples_per_prompt=samples,
        seed=seed,
    )
    typer.echo(report_.to_markdown())
    if out is not None:
        atomic_write_text(out / "protection.md", report_.to_markdown())
        atomic_write_text(out / "protection.json", report_.to_json())


data_app = typer.Typer(no_args_is_help=True, help="Build prompt/reference datasets.")


@data_app.command("build")
def data_build(
    kind: Annotated[str, typer.Argument(help="cc12m")],
    tsv: Annotated[Path, _opt("--tsv", help="CC12M TSV (url, caption)")],
    images: Annotated[Path, _opt("--images", help="img2dataset output folder")],
    out: Annotated[Path, _opt("--out", help="dataset folder to write")],
    seed: Annotated[int, _opt("--seed", help="split seed")] = 0,
    force: Annotated[bool, _opt("--force", help="replace an existing dataset")] = False,
):
    """Build the paper's CC12M soft-label split (Appendix E) from local files."""
    import json

    if kind != "cc12m":
        raise BenchError(f"unknown dataset {kind!r}: the builder knows cc12m")
    from bench.data.cc12m import build_cc12m

    summary = build_cc12m(tsv, images, out, seed=seed, force=force)
    typer.echo(json.dumps(summary, indent=2))


@train_app.command("digits")
def train_digits(
    out: Annotated[Path | None, _opt("--out", help="weights file")] = None,
    seed: Annotated[int, _opt("--seed", help="training seed")] = 0,
    weak: Annotated[
        bool, _opt("--weak", help="the weak UNet, autoguidance's guide (+ a .json beside it)")
    ] = False,
):
    """Retrain the embedded digits UNet (the committed weights come from this)."""
    from bench.models.digits import WEAK_WEIGHTS, WEIGHTS
    from bench.train_digits import train_digits_unet, train_weak_digits_unet

    if weak:
        summary = train_weak_digits_unet(out or WEAK_WEIGHTS, seed=seed)
        typer.echo(f"trained the weak digits UNet: {summary}")
        return
    typer.echo(f"trained digits UNet: {train_digits_unet(out or WEIGHTS, seed=seed)}")


@train_app.command("toy2d")
def train_toy2d(
    which: Annotated[str, _opt("--which", help="toy2d, toy2d-weak or both")] = "both",
    threads: Annotated[int, _opt("--threads", help="torch threads")] = 1,
):
    """Retrain the toy2d MLP denoisers (the committed weights come from this)."""
    import torch

    from bench.train_toy2d import RECIPES
    from bench.train_toy2d import train_toy2d as train

    names = list(RECIPES) if which == "both" else [which]
    if any(n not in RECIPES for n in names):
        raise BenchError(f"unknown toy2d model {which!r}: use {', '.join(RECIPES)} or both")
    torch.set_num_threads(threads)
    for name in names:
        summary = train(name)
        typer.echo(f"trained {name}: loss {summary['final_loss']:.4f} in {summary['seconds']} s")


@train_app.command("digits-features")
def train_digits_features(
    out: Annotated[Path | None, _opt("--out", help="weights file")] = None,
    seed: Annotated[int, _opt("--seed", help="training seed")] = 0,
):
    """Retrain the digits feature extractor / classifier used for scoring."""
    from metrics.train_digits import WEIGHTS, train_digits_classifier

    accuracy = train_digits_classifier(out or WEIGHTS, seed=seed)
    typer.echo(f"trained digits classifier: held-out accuracy {accuracy}")
