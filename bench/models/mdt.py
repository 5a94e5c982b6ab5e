"""`mdt`: MDTv2-XL/2 (Gao et al., "Masked Diffusion Transformer"; sail-sg/MDT),
class-conditional ImageNet 256 in the SD VAE's latent space (4 x 32 x 32).

The network is upstream's own `masked_diffusion.models.MDTv2` (a clone of
github.com/sail-sg/MDT on PYTHONPATH), called in inference mode (no masking) as
`net(x, t, y) -> (N, 8, H, W)`: channels 0-3 epsilon, 4-7 the learned variance
v in [-1, 1]. What this adapter reproduces of MDT's sampling (scripts/image_sample.py
with --cfg_cond True, its FID script):

- Scheduler: ancestral DDPM (`p_sample_loop`) on the 1000-step linear betas
  (1e-4 to 0.02) respaced to `steps` timesteps by `space_timesteps(1000, str(steps))`
  (round(i (T - 1) / (steps - 1)), 0, 20, 41, ..., 999 for 50), with the learned-range
  variance exp(f log beta_t + (1 - f) log beta~_t), f = (v + 1) / 2, of the respaced
  betas, taken from the conditional prediction. Here: diffusers' DDPMScheduler on those
  custom timesteps (its step on a custom timestep list is the respaced step), the
  adapter handing it the variance channels.
- CFG (MDTv2.forward_with_cfg): only epsilon channels 0-2 are guided; channel 3 and
  the variance are the conditional prediction's. The weight follows a power-cosine
  ramp over the timestep t in [0, 1000): w_t = 1 + (w - 1) (1 - cos(pi (1 - t/1000)^p)) / 2,
  so w_t is about 1 at t = 999 and w at t = 0; p = `scale_pow` (4, image_sample.py's
  default; infer_mdt.py uses 0.01). The adapter applies w_t through
  `guidance_weight`, and hands the loop a guiding prediction whose channel 3 is the
  conditional one, so any u + w (c - u) leaves that channel unguided.
- The condition handed to methods is the class-embedding vector (as `dit`), fed to
  the network in place of its label lookup; the null class is 1000.
- Decoding: `stabilityai/sd-vae-ft-ema` (image_sample.py's default `--vae_decoder
  ema`), latents / 0.18215.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import math
import os
import warnings
from collections.abc import Iterator
from pathlib import Path

import torch
from diffusers import AutoencoderKL, DDPMScheduler, SchedulerMixin

from bench.errors import BenchError
from bench.models.base import ModelAdapter, Prompt, output_to_x0
from bench.models.local_files import local_file
from bench.models.pipelines import VP_SCHEDULERS, torch_dtype
from bench.schedules import noise_level, scale_input

UPSTREAM = "masked_diffusion.models"
PATH_VAR = "SPELLBENCH_MDT_PATH"
VAE_PATH_VAR = "SPELLBENCH_MDT_VAE_PATH"
VAE_ID = "stabilityai/sd-vae-ft-ema"
CHECKPOINT = "mdt_xl2_v2_ckpt.pt"
LATENT_SCALE = 0.18215
TRAIN_STEPS = 1000
SCALE_POW = 4.0
GUIDED_CHANNELS = 3


def respaced_timesteps(steps: int, train_steps: int = TRAIN_STEPS) -> list[int]:
    """MDT's `space_timesteps(train_steps, str(steps))`, descending (same float
    accumulation and rounding, so the same integers)."""
    if not 1 <= steps <= train_steps:
        raise BenchError(f"mdt samples 1 to {train_steps} steps, not {steps}")
    stride = 1 if steps == 1 else (train_steps - 1) / (steps - 1)
    taken, position = [], 0.0
    for _ in range(steps):
        taken.append(round(position))
        position += stride
    return sorted(set(taken), reverse=True)


def guidance_schedule(
    w: float, timestep: float, scale_pow: float = SCALE_POW, train_steps: int = TRAIN_STEPS
) -> float:
    """MDT's power-cosine CFG weight at timestep t: 1 + (w - 1) (1 - cos(pi s^p)) / 2,
    s = 1 - t / T."""
    ramp = (1.0 - math.cos(math.pi * (1.0 - timestep / train_steps) ** scale_pow)) / 2.0
    return (w - 1.0) * ramp + 1.0


class LearnedRangeDDPM(DDPMScheduler):
    """DDPM with learned-range variance whose variance channels the adapter sets
    (`predicted_variance`) before each step; the loop hands step() epsilon only."""

    predicted_variance: torch.Tensor | None = None
    variance_index: int | None = None

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        # alpha-bar in float64, as MDT's diffusion keeps it: the step's respaced beta
        # 1 - abar_t / abar_prev loses digits in float32 (1.3e-5 relative at 50 steps)
        c = self.config
        betas = self.betas.double()
        if c.beta_schedule == "linear":
            betas = torch.linspace(
                c.beta_start, c.beta_end, c.num_train_timesteps, dtype=torch.float64
            )
        self.alphas_cumprod = torch.cumprod(1.0 - betas, dim=0)

    # the full signature: the loop passes per-sample generators only to a step() that
    # names `generator`
    def step(self, model_output, timestep, sample, generator=None, return_dict: bool = True):
        variance = self.predicted_variance
        if variance is None:
            raise RuntimeError("LearnedRangeDDPM.step without the network's variance")
        if model_output.shape[1] == sample.shape[1]:
            model_output = torch.cat([model_output, variance.to(model_output.dtype)], dim=1)
        self.predicted_variance = self.variance_index = None
        return super().step(model_output, timestep, sample, generator, return_dict)


def mdt_scheduler(train_steps: int = TRAIN_STEPS) -> LearnedRangeDDPM:
    return LearnedRangeDDPM(
        num_train_timesteps=train_steps,
        beta_start=0.0001 * 1000 / train_steps,
        beta_end=0.02 * 1000 / train_steps,
        beta_schedule="linear",
        variance_type="learned_range",
        prediction_type="epsilon",
        clip_sample=False,
    )


class _GivenVectors(torch.nn.Module):
    """Stands in for MDT's LabelEmbedder: returns the class vectors it is handed."""

    def forward(self, vectors: torch.Tensor, train=False, force_drop_ids=None) -> torch.Tensor:
        return vectors


@contextlib.contextmanager
def given_class_vectors(net: torch.nn.Module) -> Iterator[None]:
    """Within the block, the `y` passed to the network are class-embedding vectors."""
    original = net.y_embedder
    net.y_embedder = _GivenVectors()
    try:
        yield
    finally:
        net.y_embedder = original


def _latent_shape(net: torch.nn.Module) -> tuple[int, int, int]:
    side = math.isqrt(int(net.x_embedder.num_patches)) * int(net.patch_size)
    return (int(net.in_channels), side, side)


class MDTAdapter(ModelAdapter):
    """Adapter around an MDTv2 network (upstream's class or one with its interface:
    `forward(x, t, y)`, `y_embedder.embedding_table`, `in_channels`, `patch_size`,
    `x_embedder.num_patches`) and an SD VAE (`None`: the default pixel decode, for tests)."""

    name = "mdt"
    prediction_type = "epsilon"
    default_guidance = 3.8  # image_sample.py's cfg_scale
    default_steps = 50

    def __init__(
        self,
        net: torch.nn.Module,
        vae: torch.nn.Module | None = None,
        *,
        scale_pow: float = SCALE_POW,
        device: str | torch.device = "cpu",
        dtype: str | torch.dtype = "float32",
    ) -> None:
        self.device, self.dtype = torch.device(device), torch_dtype(dtype)
        self.net = net.to(self.device, self.dtype).eval().requires_grad_(False)
        self.vae = vae.to(self.device).eval().requires_grad_(False) if vae is not None else None
        self.scale_pow = float(scale_pow)
        self.latent_shape = _latent_shape(net)
        self.channels = self.latent_shape[0]
        self.num_classes = int(net.y_embedder.num_classes)
        if net.y_embedder.embedding_table.num_embeddings <= self.num_classes:
            raise BenchError("this MDT network has no null-class embedding: it cannot run CFG")
        if int(net.out_channels) != 2 * self.channels:
            raise BenchError("the mdt adapter needs an MDT network with learned sigma")

    def prompts(self) -> list[Prompt]:
        if self.num_classes == 1000:
            from bench.data.imagenet import imagenet_prompts

            return imagenet_prompts(labels=True)
        return [Prompt(id=str(c), text=f"class {c}", label=c) for c in range(self.num_classes)]

    def make_scheduler(self, kind: str = "native") -> SchedulerMixin:
        native = mdt_scheduler()
        if kind == "native":
            return native
        if kind not in VP_SCHEDULERS:
            kinds = ", ".join(["native", *VP_SCHEDULERS])
            raise BenchError(f"unknown scheduler {kind!r} for model mdt: use {kinds}")
        # the alternatives get epsilon only: no learned variance
        return VP_SCHEDULERS[kind].from_config({**native.config, "variance_type": "fixed_small"})

    def set_timesteps(self, scheduler: SchedulerMixin, steps: int) -> None:
        if isinstance(scheduler, LearnedRangeDDPM):
            scheduler.set_timesteps(timesteps=respaced_timesteps(steps), device=self.device)
        else:
            scheduler.set_timesteps(steps, device=self.device)

    def condition(self, prompts: list[Prompt]) -> torch.Tensor:
        return self._vectors([p.label for p in prompts])

    def null_condition(self, n: int) -> torch.Tensor:
        return self._vectors([self.num_classes] * n)

    def _vectors(self, labels: list[int]) -> torch.Tensor:
        table = self.net.y_embedder.embedding_table
        return table(torch.tensor(labels, device=self.device))

    def _forward(self, x_t: torch.Tensor, timestep, cond: torch.Tensor) -> torch.Tensor:
        t = torch.as_tensor(timestep, device=self.device).reshape(-1).expand(x_t.shape[0])
        with given_class_vectors(self.net):
            return self.net(x_t.to(self.dtype), t, cond.to(self.dtype)).to(x_t.dtype)

    def predict(self, x_t, timestep, cond):
        return self._forward(x_t, timestep, cond)[:, : self.channels]

    def _x0_and_variance(self, x_t, timestep, cond, scheduler, step_index) -> tuple:
        out = self._forward(scale_input(scheduler, x_t, timestep), timestep, cond)
        alpha, sigma = noise_level(scheduler, step_index, timestep)
        eps, variance = out[:, : self.channels], out[:, self.channels :]
        return output_to_x0(eps, x_t, alpha, sigma, "epsilon"), variance

    @staticmethod
    def _keep_variance(scheduler, step_index: int, variance: torch.Tensor) -> None:
        """The step's variance is that of its first conditional prediction (the loop
        makes it first; weak or perturbed predictions come later)."""
        if isinstance(scheduler, LearnedRangeDDPM) and scheduler.variance_index != step_index:
            scheduler.predicted_variance, scheduler.variance_index = variance, step_index

    def x0(self, x_t, timestep, cond, scheduler, step_index):
        x0, variance = self._x0_and_variance(x_t, timestep, cond, scheduler, step_index)
        self._keep_variance(scheduler, step_index, variance)
        return x0

    def x0_pair(self, x_t, timestep, guide, cond, scheduler, step_index) -> tuple:
        """(guide, cond) x0 in one doubled call; the guide's unguided channels (3) are
        the conditional ones, as MDT guides epsilon channels 0-2 only."""
        both, variance = self._x0_and_variance(
            torch.cat([x_t, x_t]), timestep, torch.cat([guide, cond]), scheduler, step_index
        )
        self._keep_variance(scheduler, step_index, variance.chunk(2)[1])
        x0_guide, x0_cond = both.chunk(2)
        x0_guide = torch.cat([x0_guide[:, :GUIDED_CHANNELS], x0_cond[:, GUIDED_CHANNELS:]], 1)
        return x0_guide, x0_cond

    def guidance_weight(self, w: float, timestep, step_index: int, num_steps: int) -> float:
        return guidance_schedule(w, float(timestep), self.scale_pow)

    def decode(self, x0: torch.Tensor) -> torch.Tensor:
        if self.vae is None:
            return super().decode(x0)
        images = self.vae.decode((x0 / LATENT_SCALE).to(self.vae.dtype)).sample
        return (images.float() / 2 + 0.5).clamp(0, 1)

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """Images in [0, 1] -> latents (the posterior mean times 0.18215)."""
        if self.vae is None:
            return super().encode(images)
        out = self.vae.encode((images * 2 - 1).to(self.device, self.vae.dtype))
        return out.latent_dist.mean * LATENT_SCALE


def _upstream_models():
    """`masked_diffusion.models` of a sail-sg/MDT clone, imported quietly."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return importlib.import_module(UPSTREAM)
    except ImportError as err:
        raise BenchError(
            f"model 'mdt' needs the MDT code ({err}): clone github.com/sail-sg/MDT and put "
            "the clone on PYTHONPATH (it needs timm: `pip install timm`)"
        ) from err


def _checkpoint(model_path) -> Path:
    return local_file(
        model_path,
        PATH_VAR,
        lambda tried: f"MDTv2 checkpoint not found ({tried}): download {CHECKPOINT} from "
        f"huggingface.co/shgao/MDT-XL2 (`hf download shgao/MDT-XL2 {CHECKPOINT}`) and point "
        f"--model-path or {PATH_VAR} at it",
    )


def _state_dict(path: Path) -> dict:
    """Upstream's checkpoint is a plain state dict; training checkpoints keep the EMA
    weights under "ema"."""
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many kinds for a non-checkpoint file
        raise BenchError(f"cannot read the MDTv2 checkpoint {path}: {err}".split("\n")[0]) from err
    for key in ("ema", "model", "state_dict"):
        if isinstance(data, dict) and isinstance(data.get(key), dict):
            return data[key]
    return data


def _vae(vae_path) -> AutoencoderKL:
    local = vae_path or os.environ.get(VAE_PATH_VAR)
    source = str(local or VAE_ID)
    message = (
        f"the SD VAE for model 'mdt' was not found at {source!r}: download it with "
        f"`hf download {VAE_ID}`, or point {VAE_PATH_VAR} at a local copy"
    )
    if local and not Path(source).is_dir():
        raise BenchError(message)
    try:
        return AutoencoderKL.from_pretrained(source, local_files_only=True)
    except (OSError, ValueError) as err:
        raise BenchError(message) from err


def build_network(models, state: dict) -> torch.nn.Module:
    """Upstream's MDTv2_XL_2 as infer_mdt.py builds it (32 x 32 latents, 4 decoder
    layers), with the checkpoint's weights."""
    quiet = contextlib.redirect_stdout(io.StringIO())  # it prints its mask ratio
    with quiet, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # and torch.meshgrid's indexing warning
        net = models.MDTv2_XL_2(input_size=32, decode_layer=4)
    try:
        net.load_state_dict(state)
    except RuntimeError as err:
        first = str(err).split("\n")[0]
        raise BenchError(f"the checkpoint is not an MDTv2-XL/2 state dict: {first}") from err
    return net


def load_mdt(
    model_path=None,
    dtype="float32",
    device="cpu",
    vae_path=None,
    scale_pow: float = SCALE_POW,
    **_,
) -> MDTAdapter:
    """The `mdt` factory: an MDTv2-XL/2 checkpoint from `model_path` or
    $SPELLBENCH_MDT_PATH, the SD VAE from `vae_path`, $SPELLBENCH_MDT_VAE_PATH or the
    Hugging Face cache, upstream's network class from a sail-sg/MDT clone."""
    models = _upstream_models()
    path = _checkpoint(model_path)
    vae = _vae(vae_path)
    net = build_network(models, _state_dict(path))
    return MDTAdapter(net, vae, scale_pow=scale_pow, device=device, dtype=dtype)
