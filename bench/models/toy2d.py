"""`toy2d`, `toy2d-exact`, `toy2d-weak`: the 2-D ground-truth testbed.

The true distribution (after the construction of Karras et al. 2024, "Guiding a
diffusion model with a bad version of itself", Sec. 3): four classes in the plane,
each a mixture of 17 thin anisotropic Gaussian "beads" (aspect about 3:1) laid along a
tree. Class c's tree is rooted in its own corner (radius 1.2, at 45 + 90c degrees) and
grows towards the centre: a trunk of 3 heavy beads, two branches that split off and
curl back outwards, two twigs at the end of each branch. The twigs of neighbouring
classes meet half way between their corners, so the classes overlap there (in light
components only; about 6-9% of a class's mass lies where another class is at least 1%
as likely), and the trunks, the heaviest and densest beads, are class-exclusive and lie
farthest from the other classes. Bead masses fall geometrically along trunk, branch and
twig, with a seeded log-normal jitter: from about 25% of the class down to about 1%, so
mode coverage is not trivial. The construction is fixed and seeded (`TOY_SEED`).

Guidance therefore behaves as in the paper: CFG pushes samples away from the other
classes onto the trunks, so the exact log-density of the samples rises while mode
coverage and entropy fall; the learned MLP scatters outliers at w = 1 that guidance
removes (the curve measured on the committed weights is in bench/train_toy2d.py).
`DEFAULT_GUIDANCE` = 3 sits where CFG has visibly collapsed
diversity (coverage about half that of w = 1) with clean samples: the regime that
diversity methods are meant to repair.

Three adapters of the same distribution, one conditioning form:
- `toy2d-exact`: the closed-form posterior mean E[x0 | x_t, class] of the mixture;
- `toy2d`: a small MLP denoiser trained with label dropout (bench/train_toy2d.py);
- `toy2d-weak`: a smaller, shorter-trained MLP (autoguidance's bad guide).

Conditioning: an (N, C + 1) row of class weights, as digits-gmm. A one-hot row selects
a class, column C is the null condition (the class-marginal mixture), negative entries
count as zero and rows are renormalised, so noise added to the condition (CADS) moves
the target smoothly between classes. The MLPs embed the normalised row linearly (a
one-hot row picks its class's learned embedding, column C the null embedding learned
with label dropout).

Diffusion: x_t = alpha x0 + sigma eps on a VP schedule (diffusers DDPMScheduler with
`trained_betas`) whose noise-to-signal ratio sigma/alpha is log-linear in t, from
`S_MIN` to `S_MAX` over 1000 training steps: uniform steps in t are uniform in log-noise,
which suits thin 2-D structure far better than the image schedules (linear and cosine
spend almost no steps below sigma = 0.1 here). No x0 clipping (the data extend past
+-1). The networks output x0 (EDM preconditioning), so `prediction_type` is "sample".

Samples: `latents` are the 2-D points. `decode` renders each point as a 16x16 grey
image (a Gaussian spot of `RENDER_BLUR` pixels on the window [-RENDER_HALF_WIDTH,
+RENDER_HALF_WIDTH]^2; points outside are drawn at the nearest window edge) so that
image grids and image feature extractors work; the exact metrics use the latents.
`encode` maps such images back to points (the spot's intensity centroid; approximate).
"""

from __future__ import annotations

import json
import math
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from diffusers import DDIMScheduler, DDPMScheduler, SchedulerMixin
from safetensors.torch import load_file

from bench.errors import BenchError
from bench.models.base import ModelAdapter, Prompt
from bench.models.digits_gmm import ClassMixtures, GaussianMixture
from bench.models.ground_truth import GroundTruth

WEIGHTS_DIR = Path(__file__).resolve().parent.parent / "weights"
WEIGHTS = WEIGHTS_DIR / "toy2d.safetensors"
WEAK_WEIGHTS = WEIGHTS_DIR / "toy2d_weak.safetensors"
SETTINGS = WEIGHTS_DIR / "toy2d.json"  # architectures and training settings of both

NUM_CLASSES = 4
NULL_CLASS = NUM_CLASSES
CLASS_NAMES = ("north-east", "north-west", "south-west", "south-east")
TOY_SEED = 3
BEAD_SD = 0.2
BEAD_ASPECT = 0.35
BEAD_MIN_SD = 0.008

# Noise schedule: s = sigma / alpha log-linear over the training timesteps.
NUM_TRAIN_TIMESTEPS = 1000
S_MIN = 2e-3
S_MAX = 40.0
SIGMA_DATA = 0.6  # about the std of the data per coordinate (EDM preconditioning)

DEFAULT_STEPS = 50
DEFAULT_GUIDANCE = 3.0

IMAGE_SIZE = 16
RENDER_HALF_WIDTH = 1.6
RENDER_BLUR = 0.8  # std of the rendered spot, in pixels


# --- the true distribution ------------------------------------------------------------


def _arm(rng, comps, label, start, angle, curl, n, seg, w0, decay):
    """n beads along a curve from `start` heading `angle`, turning `curl` rad per unit
    length; bead j has length seg * 0.9^j and mass w0 * decay^j (both jittered). A bead's
    long-axis std is `BEAD_SD` of its length, its short-axis std `BEAD_ASPECT` of that
    (at least `BEAD_MIN_SD`). Returns the end point and heading."""
    p = np.asarray(start, dtype=np.float64)
    for j in range(n):
        length = seg * 0.9**j * (1.0 + 0.1 * rng.standard_normal())
        d = np.array([math.cos(angle), math.sin(angle)])
        normal = np.array([-d[1], d[0]])
        sd_long = BEAD_SD * length
        sd_short = max(BEAD_ASPECT * sd_long, BEAD_MIN_SD)
        cov = sd_long**2 * np.outer(d, d) + sd_short**2 * np.outer(normal, normal)
        mass = w0 * decay**j * math.exp(0.3 * rng.standard_normal())
        comps.append((label, mass, p + d * length / 2.0, cov))
        p = p + d * length
        angle += curl * length
    return p, angle


def build_toy2d_mixture(seed: int = TOY_SEED) -> ClassMixtures:
    """The class-conditional mixture (deterministic for a seed); classes equally likely.

    Each class is a tree rooted in its own corner of the plane (radius 1.2) and growing
    towards the centre: a straight trunk of 3 heavy beads, two branches of 3 beads that
    split off it (+-1.1 rad) and curl back outwards, and two twigs of 2 light beads at
    the end of each branch: 17 components. The twigs of neighbouring classes meet half
    way between their corners, so the classes overlap there, in light components only;
    the trunks (the heaviest and densest beads) are class-exclusive and lie farthest
    from the other classes, where classifier-free guidance pushes samples."""
    rng = np.random.default_rng(seed)
    comps: list = []
    for c in range(NUM_CLASSES):
        a0 = math.pi / 4 + c * 2 * math.pi / NUM_CLASSES + 0.1 * rng.standard_normal()
        root = 1.2 * np.array([math.cos(a0), math.sin(a0)])
        p, a = _arm(rng, comps, c, root, a0 + math.pi, 0.0, 3, 0.22, 1.0, 0.85)
        for sign in (1, -1):
            heading = a + sign * 1.1 * (1.0 + 0.15 * rng.standard_normal())
            q, b = _arm(rng, comps, c, p, heading, sign * 1.5, 3, 0.18, 0.3, 0.7)
            for sign2 in (1, -1):
                twig = b + sign2 * 0.88 * (1.0 + 0.15 * rng.standard_normal())
                _arm(rng, comps, c, q, twig, 0.0, 2, 0.14, 0.1, 0.7)
    labels = np.array([c[0] for c in comps])
    mass = np.array([c[1] for c in comps])
    for c in range(NUM_CLASSES):  # within-class weights sum to 1
        mass[labels == c] /= mass[labels == c].sum()
    mixture = GaussianMixture.from_covariances(
        mass, np.stack([c[2] for c in comps]), np.stack([c[3] for c in comps])
    )
    return ClassMixtures(mixture, labels, np.full(NUM_CLASSES, 1.0 / NUM_CLASSES))


@lru_cache(maxsize=4)
def toy2d_ground_truth(seed: int = TOY_SEED) -> GroundTruth:
    return GroundTruth("toy2d", build_toy2d_mixture(seed), CLASS_NAMES)


# --- noise schedule -------------------------------------------------------------------


def toy2d_alphas_cumprod() -> np.ndarray:
    """alpha_t^2 per training timestep: s_t = sigma_t / alpha_t from S_MIN to S_MAX,
    log-linear; alpha^2 = 1 / (1 + s^2)."""
    t = np.arange(NUM_TRAIN_TIMESTEPS) / (NUM_TRAIN_TIMESTEPS - 1)
    s = np.exp(np.log(S_MIN) + t * (np.log(S_MAX) - np.log(S_MIN)))
    return 1.0 / (1.0 + s**2)


def toy2d_betas() -> list[float]:
    abar = toy2d_alphas_cumprod()
    alphas = abar / np.concatenate([[1.0], abar[:-1]])
    return (1.0 - alphas).tolist()


def toy2d_scheduler_config() -> dict:
    return {
        "num_train_timesteps": NUM_TRAIN_TIMESTEPS,
        "trained_betas": toy2d_betas(),
        "prediction_type": "epsilon",
        "clip_sample": False,
    }


def make_toy2d_scheduler(kind: str = "native") -> SchedulerMixin:
    """DDPM ancestral (native) or DDIM (deterministic, eta = 0) on the toy schedule."""
    if kind in ("native", "ddpm"):
        return DDPMScheduler(**toy2d_scheduler_config())
    if kind == "ddim":
        return DDIMScheduler(**toy2d_scheduler_config())
    raise BenchError(f"unknown scheduler {kind!r} for the toy2d models: use ddpm or ddim")


# --- conditioning -----------------------------------------------------------------------


def normalise_condition(cond: torch.Tensor) -> torch.Tensor:
    """(N, C + 1) rows -> non-negative rows summing to 1; an all-non-positive row becomes
    the null condition (the torch twin of digits_gmm.class_weights_from_condition, before
    the null column is spread over the classes)."""
    cond = cond.clamp_min(0.0)
    total = cond.sum(dim=1, keepdim=True)
    null = torch.zeros_like(cond)
    null[:, -1] = 1.0
    return torch.where(total > 0, cond / total.clamp_min(1e-30), null)


# --- the learned denoiser ---------------------------------------------------------------


class Toy2DDenoiser(torch.nn.Module):
    """An MLP x0-predictor with EDM preconditioning, for x_t = alpha x0 + sigma eps.

    With x = x_t / alpha and s = sigma / alpha (the EDM noise level):
    D(x) = c_skip x + c_out F([c_in x, fourier(log s), E row]), E the class embedding
    (a bias-free linear map of the normalised condition row)."""

    def __init__(
        self,
        hidden: int = 128,
        layers: int = 4,
        embed_dim: int = 32,
        frequencies: int = 6,
        sigma_data: float = SIGMA_DATA,
        num_classes: int = NUM_CLASSES,
    ) -> None:
        super().__init__()
        self.sigma_data = sigma_data
        self.class_embedding = torch.nn.Linear(num_classes + 1, embed_dim, bias=False)
        self.register_buffer(
            "freqs", 2.0 ** torch.arange(frequencies, dtype=torch.float32) / 8.0, persistent=False
        )
        dims = [2 + 2 * frequencies + embed_dim] + [hidden] * layers
        blocks: list[torch.nn.Module] = []
        for a, b in zip(dims[:-1], dims[1:], strict=True):
            blocks += [torch.nn.Linear(a, b), torch.nn.SiLU()]
        self.body = torch.nn.Sequential(*blocks)
        self.out = torch.nn.Linear(hidden, 2)

    def forward(self, x_t, alpha, sigma, cond) -> torch.Tensor:
        alpha = torch.as_tensor(alpha, dtype=x_t.dtype, device=x_t.device).reshape(-1, 1)
        sigma = torch.as_tensor(sigma, dtype=x_t.dtype, device=x_t.device).reshape(-1, 1)
        x, s = x_t / alpha, sigma / alpha
        sd = self.sigma_data
        norm = (s**2 + sd**2).sqrt()
        c_in, c_skip, c_out = 1.0 / norm, sd**2 / norm**2, s * sd / norm
        angles = s.log() * self.freqs
        h = torch.cat(
            [c_in * x, angles.sin(), angles.cos(), self.class_embedding(normalise_condition(cond))],
            dim=1,
        )
        return c_skip * x + c_out * self.out(self.body(h))


def read_settings(path: Path = SETTINGS) -> dict:
    if not path.exists():
        return {}
    return json.loads(path.read_text())


def load_toy2d_denoiser(path: Path, arch: dict | None = None) -> Toy2DDenoiser:
    if not path.exists():
        raise BenchError(
            f"toy2d weights missing at {path}: run `python -m bench.train_toy2d` to make them"
        )
    if arch is None:
        arch = read_settings().get(path.stem, {}).get("architecture", {})
    net = Toy2DDenoiser(**arch)
    net.load_state_dict(load_file(str(path)))
    return net.eval().requires_grad_(False)


# --- rendering --------------------------------------------------------------------------


def _pixel_centres(size: int, half_width: float) -> torch.Tensor:
    step = 2.0 * half_width / size
    return -half_width + step * (torch.arange(size, dtype=torch.float64) + 0.5)


def render_points(
    points: torch.Tensor,
    size: int = IMAGE_SIZE,
    half_width: float = RENDER_HALF_WIDTH,
    blur: float = RENDER_BLUR,
) -> torch.Tensor:
    """(N, 2) points -> (N, 1, size, size) images in [0, 1]: a Gaussian spot (peak 1)
    at each point; x runs along the columns, y up the rows (row 0 is the top)."""
    p = points.detach().double().reshape(len(points), 2).cpu()
    p = p.clamp(-half_width, half_width)
    centres = _pixel_centres(size, half_width)
    width = blur * 2.0 * half_width / size
    gx = torch.exp(-0.5 * ((centres[None, :] - p[:, :1]) / width) ** 2)  # (N, W)
    gy = torch.exp(-0.5 * ((centres.flip(0)[None, :] - p[:, 1:]) / width) ** 2)  # (N, H)
    img = gy[:, :, None] * gx[:, None, :]
    img = img / img.flatten(1).amax(1).clamp_min(1e-30)[:, None, None]
    return img[:, None].to(device=points.device, dtype=torch.float32)


def centroid_points(images: torch.Tensor, half_width: float = RENDER_HALF_WIDTH) -> torch.Tensor:
    """Approximate inverse of `render_points`: each image's intensity centroid."""
    img = images.detach().double().mean(dim=1)  # (N, H, W)
    size = img.shape[-1]
    centres = _pixel_centres(size, half_width)
    total = img.flatten(1).sum(1).clamp_min(1e-30)
    x = (img.sum(1) * centres[None]).sum(1) / total
    y = (img.sum(2) * centres.flip(0)[None]).sum(1) / total
    return torch.stack([x, y], dim=1).float()


# --- adapters -----------------------------------------------------------------------------


class Toy2DClasses(ModelAdapter):
    """What the three toy2d models share: classes, schedule, conditioning, rendering."""

    latent_shape = (2,)
    image_shape = (1, IMAGE_SIZE, IMAGE_SIZE)
    default_steps = DEFAULT_STEPS
    default_guidance = DEFAULT_GUIDANCE

    def __init__(self, device: str = "cpu") -> None:
        self.device = torch.device(device)
        self.truth = toy2d_ground_truth()
        # the scheduler's own (float32) table, so x0 and the sampler's alpha/sigma agree
        abar = make_toy2d_scheduler().alphas_cumprod.double().numpy()
        self.alphas = np.sqrt(abar)
        self.sigmas = np.sqrt(1.0 - abar)

    def ground_truth(self) -> GroundTruth:
        return self.truth

    def prompts(self) -> list[Prompt]:
        return [Prompt(id=str(c), text=CLASS_NAMES[c], label=c) for c in range(NUM_CLASSES)]

    def make_scheduler(self, kind: str = "native") -> SchedulerMixin:
        return make_toy2d_scheduler(kind)

    def condition(self, prompts: list[Prompt]) -> torch.Tensor:
        labels = torch.tensor([p.label for p in prompts], device=self.device)
        if len(labels) and (labels.min() < 0 or labels.max() >= NUM_CLASSES):
            raise BenchError(f"toy2d classes are 0..{NUM_CLASSES - 1}, got {labels.tolist()}")
        return self._one_hot(labels)

    def null_condition(self, n: int) -> torch.Tensor:
        return self._one_hot(torch.full((n,), NULL_CLASS, device=self.device))

    def _one_hot(self, labels: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.one_hot(labels, NUM_CLASSES + 1).to(self.dtype)

    def _noise_levels(self, timestep, n: int) -> tuple[np.ndarray, np.ndarray]:
        t = torch.as_tensor(timestep).detach().cpu().long().reshape(-1).numpy()
        return np.broadcast_to(self.alphas[t], (n,)), np.broadcast_to(self.sigmas[t], (n,))

    def _check(self, x_t: torch.Tensor, cond: torch.Tensor) -> None:
        n = x_t.shape[0]
        if tuple(x_t.shape[1:]) != (2,) or tuple(cond.shape) != (n, NUM_CLASSES + 1):
            raise BenchError(
                f"{self.name}: x_t must be (N, 2) and the condition (N, {NUM_CLASSES + 1}), "
                f"got {tuple(x_t.shape)} and {tuple(cond.shape)}"
            )

    def decode(self, x0: torch.Tensor) -> torch.Tensor:
        return render_points(x0)

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        return centroid_points(images).to(self.device)


class Toy2DExactAdapter(Toy2DClasses):
    name = "toy2d-exact"
    prediction_type = "sample"

    def predict(self, x_t: torch.Tensor, timestep, cond: torch.Tensor) -> torch.Tensor:
        self._check(x_t, cond)
        alpha, sigma = self._noise_levels(timestep, x_t.shape[0])
        x0 = self.truth.posterior_mean(
            x_t.detach().cpu().double().numpy(), alpha, sigma, cond.detach().cpu().double().numpy()
        )
        return torch.from_numpy(x0).to(device=x_t.device, dtype=x_t.dtype)


class Toy2DAdapter(Toy2DClasses):
    """A learned denoiser; `net` defaults to the committed `toy2d` weights."""

    name = "toy2d"
    prediction_type = "sample"
    _weak: Toy2DWeakAdapter | None = None  # the guide of `weak_x0`, made on first use

    def __init__(
        self, net: Toy2DDenoiser | None = None, device: str = "cpu", path: Path = WEIGHTS
    ) -> None:
        super().__init__(device)
        self.net = (net or load_toy2d_denoiser(path)).to(self.device)

    def predict(self, x_t: torch.Tensor, timestep, cond: torch.Tensor) -> torch.Tensor:
        self._check(x_t, cond)
        alpha, sigma = self._noise_levels(timestep, x_t.shape[0])
        a = torch.from_numpy(np.ascontiguousarray(alpha)).to(x_t.device, x_t.dtype)
        s = torch.from_numpy(np.ascontiguousarray(sigma)).to(x_t.device, x_t.dtype)
        return self.net(x_t, a, s, cond)

    def abilities(self) -> frozenset[str]:
        return frozenset({"weak"})

    def weak_x0(self, x_t, timestep, cond, guide, scheduler, step_index) -> torch.Tensor:
        """x0 of the committed `toy2d-weak` MLP, loaded once on first use. Both MLPs
        embed the same class-weight rows themselves, so `cond` passes straight through."""
        weak = self._weak
        if weak is None:
            weak = self._weak = Toy2DWeakAdapter(device=str(self.device))
        elif weak.device != self.device:
            weak.to(self.device)
        return weak.x0(x_t, timestep, cond, scheduler, step_index)


class Toy2DWeakAdapter(Toy2DAdapter):
    name = "toy2d-weak"
    weak_x0 = ModelAdapter.weak_x0  # the weak MLP is the bottom: no weaker one to guide it
    abilities = ModelAdapter.abilities

    def __init__(self, net: Toy2DDenoiser | None = None, device: str = "cpu") -> None:
        super().__init__(net, device, WEAK_WEIGHTS)


# --- factories (registered in bench/models/registry.py) -----------------------------------

DESCRIPTIONS = {
    "toy2d": "2-D class-conditional Gaussian mixture, learned MLP denoiser (ground truth known)",
    "toy2d-exact": "2-D class-conditional Gaussian mixture, exact closed-form denoiser",
    "toy2d-weak": "2-D mixture, a smaller and shorter-trained MLP (autoguidance's guide)",
}


def load_toy2d(device: str = "cpu", **kw) -> Toy2DAdapter:
    return Toy2DAdapter(device=device)


def load_toy2d_exact(device: str = "cpu", **kw) -> Toy2DExactAdapter:
    return Toy2DExactAdapter(device=device)


def load_toy2d_weak(device: str = "cpu", **kw) -> Toy2DWeakAdapter:
    return Toy2DWeakAdapter(device=device)
