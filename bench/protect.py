"""Protected sets: build them from images, and measure how well SPELL keeps out.

`build_protected_set` encodes images into the model's diffusion space (identity-ish
for pixel models, the VAE for latent models) and stores them as a shield index.
`evaluate_protection` is the analogue of the paper's Table 2: the share of
generated images within r of their nearest protected image (exact search after
generation), without SPELL and with it, for each search backend, with the time
per image.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from bench.errors import BenchError
from bench.models.base import ModelAdapter, Prompt
from bench.sampler import SamplingSettings, generate_prompt
from bench.shields import ShieldSet, ShieldWriter, load_vectors, make_shield_set
from methods.base import DiversityMethod
from methods.none import NoMethod
from methods.spell import Spell, SpellConfig

DATASETS = ("digits-train", "digits-held_out")
# SPELL with lambda = 1 puts a sample exactly on its shield's boundary, which float32
# rounding turns into r * (1 +- 1e-7): such a sample counts as outside.
BOUNDARY_RTOL = 1e-5
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


# --- image sources -------------------------------------------------------------------


def image_shape(model: ModelAdapter) -> tuple[int, int, int]:
    """(C, H, W) of the images `model.encode` takes: an adapter's `image_shape`; for a
    model with a VAE, RGB at the latent size times the VAE's downsampling; else its
    latent shape (pixel models diffuse in image space)."""
    shape = getattr(model, "image_shape", None)
    vae = getattr(model, "vae", None)
    if shape is None and vae is not None:
        factor = 2 ** (len(vae.config.block_out_channels) - 1)
        shape = (3, model.latent_shape[1] * factor, model.latent_shape[2] * factor)
    shape = shape or model.latent_shape
    if len(shape) != 3:
        raise BenchError(f"model {model.name} has no image shape (C, H, W): got {shape}")
    return tuple(shape)


def dataset_images(name: str) -> torch.Tensor:
    """A named dataset as (N, C, H, W) images in [0, 1]."""
    if name not in DATASETS:
        raise BenchError(f"unknown dataset {name!r}: use one of {', '.join(DATASETS)} or a folder")
    from bench.data.digits import load_split, to_unit_range

    return torch.from_numpy(to_unit_range(load_split(name.removeprefix("digits-")).images))


def folder_files(folder: Path) -> list[Path]:
    files = sorted(p for p in Path(folder).rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise BenchError(f"no PNG or JPG images in {folder}")
    return files


def load_image(path: Path, shape: tuple[int, int, int]) -> torch.Tensor:
    """One image file as (C, H, W) in [0, 1], resized to the model's image size."""
    from PIL import Image

    channels, height, width = shape
    mode = {1: "L", 3: "RGB"}.get(channels)
    if mode is None:
        raise BenchError(f"cannot load images for a model with {channels} channels")
    try:
        with Image.open(path) as img:
            img = img.convert(mode).resize((width, height), Image.Resampling.BICUBIC)
            array = np.asarray(img, dtype=np.float32) / 255.0
    except OSError as err:
        raise BenchError(f"cannot read image {path}: {err}") from err
    return torch.from_numpy(array.reshape(height, width, channels)).permute(2, 0, 1)


def image_batches(
    source: str | Path, model: ModelAdapter, batch_size: int
) -> tuple[Iterator[torch.Tensor], int]:
    """Batches of images in [0, 1] from a dataset name or a folder, and their count."""
    shape = image_shape(model)
    if str(source) in DATASETS:
        images = dataset_images(str(source))
        if tuple(images.shape[1:]) != shape:
            raise BenchError(f"{source} images are {tuple(images.shape[1:])}, model wants {shape}")
        return iter(images.split(batch_size)), len(images)
    folder = Path(source)
    if not folder.is_dir():
        raise BenchError(f"{source} is neither a dataset ({', '.join(DATASETS)}) nor a folder")
    files = folder_files(folder)
    batches = (
        torch.stack([load_image(f, shape) for f in files[i : i + batch_size]])
        for i in range(0, len(files), batch_size)
    )
    return batches, len(files)


# --- building ------------------------------------------------------------------------


def build_protected_set(
    model: ModelAdapter,
    images: str | Path | Iterable[torch.Tensor],
    out: Path,
    backend: str = "exact",
    dtype: torch.dtype = torch.float32,
    batch_size: int = 64,
    nlist: int | None = None,
    progress: bool = True,
) -> Path:
    """Encode images into `model`'s diffusion space and store them as an index at `out`.

    `images` is a dataset name (`digits-train`), a folder of PNG/JPG files, or any
    iterable of (n, C, H, W) batches in [0, 1]. `backend` `faiss-ivf` also trains and
    stores the IVF index. The index appears at `out` only once complete.
    """
    total = None
    if isinstance(images, str | Path):
        meta_source = str(images)
        images, total = image_batches(images, model, batch_size)
    else:
        meta_source = "iterable"
    meta = {"model": model.name, "source": meta_source}
    with ShieldWriter(out, dtype=dtype, backend=backend, nlist=nlist, meta=meta) as writer:
        bar = tqdm(total=total, unit="img", desc="encoding", disable=not progress)
        with torch.no_grad(), bar:
            for batch in images:
                latents = model.encode(batch.to(model.device, model.dtype))
                writer.append(latents.float())
                bar.update(len(batch))
    return Path(out)


# --- evaluation ----------------------------------------------------------------------


@dataclass(frozen=True)
class BackendSpec:
    """A search backend to evaluate; `nprobe` only for faiss-ivf."""

    name: str
    nprobe: int | None = None

    @property
    def label(self) -> str:
        return self.name if self.nprobe is None else f"{self.name}(nprobe={self.nprobe})"


DEFAULT_BACKENDS = (
    BackendSpec("exact"),
    BackendSpec("projected"),
    BackendSpec("faiss-ivf", 1),
    BackendSpec("faiss-ivf", 2),
    BackendSpec("faiss-ivf", 10),
)


def parse_backends(text: str) -> list[BackendSpec]:
    """`exact,projected,faiss-ivf:1,faiss-ivf:10` -> specs (for the command line)."""
    from bench.shields import BACKENDS

    specs = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, _, nprobe = item.partition(":")
        if name not in BACKENDS or (nprobe and not nprobe.isdigit()):
            raise BenchError(f"bad backend {item!r}: use {', '.join(BACKENDS)}, faiss-ivf:NPROBE")
        specs.append(BackendSpec(name, int(nprobe) if nprobe else None))
    if not specs:
        raise BenchError("no search backends given")
    return specs


# label -> SpellConfig fields besides radius and the static set.
DEFAULT_VARIANTS = {
    "spell-static": {"intra_batch": False, "inter_batch": False},
    "spell-intra": {"intra_batch": True, "inter_batch": True},
}


@dataclass
class ProtectionRow:
    method: str
    backend: str
    images: int
    within: float  # share of final latents within r of a protected vector
    within_decoded: float  # the same after decode -> encode (what is saved)
    median_nn_distance: float
    seconds_per_image: float


@dataclass
class ProtectionReport:
    model: str
    radius: float
    protected: int
    rows: list[ProtectionRow]

    def to_json(self) -> str:
        return json.dumps(
            {**{k: v for k, v in asdict(self).items() if k != "rows"},
             "rows": [asdict(r) for r in self.rows]},
            indent=2,
        )

    def to_markdown(self) -> str:
        head = (
            f"Protection on {self.model}: {self.protected} protected vectors, "
            f"r = {self.radius:.4g}\n\n"
            "| method | backend | images | within r | within r (decoded) "
            "| median NN dist | s / image |\n|---|---|---|---|---|---|---|\n"
        )
        lines = [
            f"| {r.method} | {r.backend} | {r.images} | {100 * r.within:.2f}% "
            f"| {100 * r.within_decoded:.2f}% | {r.median_nn_distance:.3f} "
            f"| {r.seconds_per_image:.4f} |"
            for r in self.rows
        ]
        return head + "\n".join(lines) + "\n"


def nearest_protected(latents: torch.Tensor, protected: torch.Tensor) -> np.ndarray:
    """Exact distance from each generated latent to its nearest protected vector."""
    from metrics.protection import nearest_distances

    return nearest_distances(latents.flatten(1), protected)


def pick_radius(distances: np.ndarray, share: float) -> float:
    """The radius that puts `share` of plain samples within r of a protected image."""
    if not 0 < share < 1:
        raise BenchError(f"target share must be in (0, 1), got {share}")
    return float(np.quantile(distances, share))


@dataclass(frozen=True)
class GenerationPlan:
    prompts: Sequence[Prompt]
    samples_per_prompt: int
    batch_size: int
    settings: SamplingSettings
    seed: int = 0


def generate_all(
    model: ModelAdapter, method: DiversityMethod, plan: GenerationPlan, progress: bool
) -> tuple[torch.Tensor, float]:
    """Final latents of every sample of every prompt, and the mean seconds per image."""
    latents, seconds = [], []
    for prompt in tqdm(plan.prompts, desc=method.id, disable=not progress, leave=False):
        out = generate_prompt(
            model, method, prompt, plan.samples_per_prompt, plan.batch_size, plan.seed,
            plan.settings,
        )
        latents.append(torch.from_numpy(out["latents"]))
        seconds.append(out["seconds"])
    return torch.cat(latents), float(np.concatenate(seconds).mean())


def evaluate_protection(
    model: ModelAdapter,
    protected: Path | torch.Tensor,
    radius: float | None = None,
    target_share: float = 0.1,
    variants: dict[str, dict] | None = None,
    backends: Sequence[BackendSpec] = DEFAULT_BACKENDS,
    prompts: Sequence[Prompt] | None = None,
    samples_per_prompt: int = 20,
    batch_size: int = 8,
    steps: int | None = None,
    guidance: float | None = None,
    scheduler: str = "native",
    overcompensation: float = 1.0,
    seed: int = 0,
    progress: bool = True,
) -> ProtectionReport:
    """Generate without SPELL, then with each SPELL variant and each search backend.

    `radius` None picks r so that `target_share` of the plain samples are within r of
    a protected image (see `pick_radius`). Rows are measured with exact search."""
    vectors = load_vectors(protected) if isinstance(protected, str | Path) else protected
    vectors = vectors.flatten(1).float()
    plan = GenerationPlan(
        prompts or model.prompts(),
        samples_per_prompt,
        batch_size,
        SamplingSettings(
            guidance if guidance is not None else model.default_guidance,
            steps or model.default_steps,
            scheduler,
        ),
        seed,
    )
    plain, plain_seconds = generate_all(model, NoMethod(), plan, progress)
    plain_nn = nearest_protected(plain, vectors)
    r = radius if radius is not None else pick_radius(plain_nn, target_share)
    rows = [_row(model, "none", "-", plain, plain_nn, vectors, r, plain_seconds)]
    for label, fields in (variants or DEFAULT_VARIANTS).items():
        config = SpellConfig(radius=r, overcompensation=overcompensation, **fields)
        for spec in backends:
            shields = _shield_set(vectors, spec, model.device)
            method = Spell(config, static=shields)
            latents, seconds = generate_all(model, method, plan, progress)
            nn = nearest_protected(latents, vectors)
            rows.append(_row(model, label, spec.label, latents, nn, vectors, r, seconds))
    return ProtectionReport(model.name, r, len(vectors), rows)


def _shield_set(vectors: torch.Tensor, spec: BackendSpec, device) -> ShieldSet:
    kwargs = {} if spec.nprobe is None else {"nprobe": spec.nprobe}
    return make_shield_set(vectors, spec.name, device=device, **kwargs)


def _row(model, method, backend, latents, nn, vectors, r, seconds) -> ProtectionRow:
    with torch.no_grad():
        decoded = model.encode(model.decode(latents.to(model.device, model.dtype)))
    nn_decoded = nearest_protected(decoded.float().cpu(), vectors)
    return ProtectionRow(
        method=method,
        backend=backend,
        images=len(latents),
        within=_share_within(nn, r),
        within_decoded=_share_within(nn_decoded, r),
        median_nn_distance=float(np.median(nn)),
        seconds_per_image=seconds,
    )


def _share_within(nn: np.ndarray, radius: float) -> float:
    return float((nn < radius * (1.0 - BOUNDARY_RTOL)).mean())


def share_within(latents: torch.Tensor, vectors: torch.Tensor, radius: float) -> float:
    """Share of latents whose nearest protected vector is closer than `radius`."""
    if not math.isfinite(radius) or radius <= 0:
        raise BenchError(f"protection radius must be positive, got {radius}")
    return _share_within(nearest_protected(latents, vectors), radius)
