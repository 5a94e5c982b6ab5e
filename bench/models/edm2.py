"""EDM2-style networks through `--model module:factory`.

An EDM2 network (NVlabs/edm2 pickles, EDM and most k-diffusion wrappers) is a
callable `net(x, sigma, class_labels) -> D(x; sigma)`: it takes the noisy image
in the variance-exploding form x = x0 + sigma * eps, does its own input/output
preconditioning and returns the denoised x0. The network code is the user's;
this adapter only calls it.

Sampling follows EDM2's reference sampler: Heun's second-order method (diffusers'
HeunDiscreteScheduler, prediction type "sample") on the EDM/Karras schedule
(sigma_min 0.002, sigma_max 80, rho 7, last step to sigma 0, which is an Euler
step), S_churn = 0, 32 steps (63 network calls). `--scheduler euler` is the
first-order sampler. Guidance follows EDM2: D = D_guide + w (D - D_guide), where the
guiding network `guide_net` (autoguidance's smaller or less-trained model, or an
unconditional one) receives the same class labels as the main network; without a
guide the same network is given the null label (all-zero one-hot).

The condition methods see: for an EDM2 network (it has `unet.emb_label`) the class
embedding emb_label(one-hot * sqrt(label_dim)), which the adapter hands to the network
in place of its own lookup, so CADS noises what its paper noises; for any other
callable the one-hot label vector.

Example factory (`bench run --model mypkg.models:edm2_xs`):

    def edm2_xs(device="cpu", **_):
        data = pickle.load(open("edm2-img512-xs-2147483-0.135.pkl", "rb"))
        guide = pickle.load(open("edm2-img512-xs-uncond-2147483-0.045.pkl", "rb"))
        return EDM2Adapter(data["ema"], guide_net=guide["ema"],
                           decoder=data["encoder"].decode, device=device)
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import torch
from diffusers import EulerDiscreteScheduler, HeunDiscreteScheduler, SchedulerMixin

from bench.errors import BenchError
from bench.models.base import ModelAdapter, Prompt
from bench.models.local_files import local_file
from bench.models.pipelines import torch_dtype
from bench.schedules import scale_input

SIGMA_MIN = 0.002
SIGMA_MAX = 80.0
PATH_VAR = "SPELLBENCH_EDM2_PATH"
GUIDE_PATH_VAR = "SPELLBENCH_EDM2_GUIDE_PATH"


def edm_scheduler(
    sigma_min: float = SIGMA_MIN, sigma_max: float = SIGMA_MAX, kind: str = "heun"
) -> SchedulerMixin:
    """Heun (or Euler) on the Karras schedule (rho 7), stepping towards a given x0."""
    if kind == "euler":
        return EulerDiscreteScheduler(
            use_karras_sigmas=True,
            sigma_min=sigma_min,
            sigma_max=sigma_max,
            prediction_type="sample",
            timestep_spacing="linspace",
            final_sigmas_type="zero",
        )
    heun = HeunDiscreteScheduler(
        use_karras_sigmas=True, prediction_type="sample", timestep_spacing="linspace"
    )
    # Heun reads the Karras ramp's ends from these config keys when they exist
    heun.register_to_config(sigma_min=sigma_min, sigma_max=sigma_max)
    return heun


class _GivenEmbedding(torch.nn.Module):
    """Stands in for a network's label embedding: returns the vectors it was given."""

    def __init__(self, vectors: torch.Tensor) -> None:
        super().__init__()
        self.vectors = vectors

    def forward(self, *_args, **_kwargs) -> torch.Tensor:
        return self.vectors


def label_embedder(net) -> torch.nn.Module | None:
    """An EDM2 network's class-embedding layer (`unet.emb_label`), if it has one."""
    return getattr(getattr(net, "unet", None), "emb_label", None)


@contextmanager
def given_embedding(net, vectors: torch.Tensor) -> Iterator[None]:
    """Within the block, `net` uses `vectors` as its class embedding."""
    unet = net.unet
    original = unet.emb_label
    unet.emb_label = _GivenEmbedding(vectors)
    try:
        yield
    finally:
        unet.emb_label = original


def to_unit(images: torch.Tensor) -> torch.Tensor:
    """uint8 [0, 255] or float [0, 1] images -> float [0, 1]."""
    if images.dtype == torch.uint8:
        return images.float() / 255.0
    return images.float().clamp(0, 1)


class EDM2Adapter(ModelAdapter):
    """Adapter for a denoiser `net(x, sigma, class_labels) -> x0`.

    The condition is the class embedding of an EDM2 network, else the one-hot class
    vector; the null condition is all zeros (EDM2's embedding of the null label is zero).
    `guide_net` gets the prompt's own label, embedded by its own layer. `decoder` maps
    the network's space to images (uint8 or [0, 1]); without one the space is pixels
    in [-1, 1]. Shape and label count default to the EDM2
    attributes `img_channels`, `img_resolution` and `label_dim`.
    """

    name = "edm2"
    prediction_type = "sample"
    default_steps = 32

    def __init__(
        self,
        net: Callable[..., torch.Tensor],
        guide_net: Callable[..., torch.Tensor] | None = None,
        *,
        label_dim: int | None = None,
        latent_shape: tuple[int, ...] | None = None,
        decoder: Callable[[torch.Tensor], torch.Tensor] | None = None,
        encoder: Callable[[torch.Tensor], torch.Tensor] | None = None,
        sigma_min: float = SIGMA_MIN,
        sigma_max: float = SIGMA_MAX,
        device: str | torch.device = "cpu",
        dtype: str | torch.dtype = "float32",
    ) -> None:
        self.device = torch.device(device)
        self.dtype = torch_dtype(dtype)
        self.net = _prepare(net, self.device)
        self.guide_net = _prepare(guide_net, self.device) if guide_net is not None else None
        self.label_dim = label_dim if label_dim is not None else int(getattr(net, "label_dim", 0))
        self.latent_shape = latent_shape or _edm2_shape(net)
        self.decoder, self.encoder = decoder, encoder
        self.sigma_min, self.sigma_max = sigma_min, sigma_max
        self.default_guidance = 1.2 if self.guide_net is not None else 1.0

    def prompts(self) -> list[Prompt]:
        if self.label_dim == 0:
            return [Prompt(id="uncond", text="unconditional")]
        return [Prompt(id=str(c), text=f"class {c}", label=c) for c in range(self.label_dim)]

    def make_scheduler(self, kind: str = "native") -> SchedulerMixin:
        if kind not in ("native", "heun", "euler"):
            message = f"unknown scheduler {kind!r} for an EDM2 network: use heun (native) or euler"
            raise BenchError(message)
        return edm_scheduler(self.sigma_min, self.sigma_max, "euler" if kind == "euler" else "heun")

    def set_timesteps(self, scheduler: SchedulerMixin, steps: int) -> None:
        scheduler.set_timesteps(steps, device=self.device)
        # sigmas above the VP training range share one clamped timestep: index by position
        scheduler.set_begin_index(0)

    def _one_hot(self, prompts: list[Prompt]) -> torch.Tensor:
        labels = torch.zeros(len(prompts), max(self.label_dim, 1), device=self.device)
        for row, prompt in enumerate(prompts):
            if prompt.label is not None and self.label_dim:
                labels[row, prompt.label] = 1.0
        return labels

    def _embed(self, net, one_hot: torch.Tensor) -> torch.Tensor:
        """What `net` conditions on: its class embedding (EDM2 scales the one-hot by
        sqrt(label_dim) first), or the one-hot vector for a network without one."""
        embedder = label_embedder(net)
        if embedder is None or not self.label_dim:
            return one_hot
        return embedder(one_hot * self.label_dim**0.5).to(self.dtype)

    def condition(self, prompts: list[Prompt]) -> torch.Tensor:
        return self._embed(self.net, self._one_hot(prompts))

    def null_condition(self, n: int) -> torch.Tensor:
        return self._embed(self.net, self._one_hot([Prompt("null", "")] * n))

    def guide_condition(self, prompts: list[Prompt]) -> torch.Tensor:
        if self.guide_net is None:
            return self.null_condition(len(prompts))
        return self._embed(self.guide_net, self._one_hot(prompts))

    def _sigmas(self, x_t, timestep, scheduler, step_index) -> torch.Tensor:
        scale_input(scheduler, x_t, timestep)  # keeps the scheduler's bookkeeping only
        sigma = float(scheduler.sigmas[step_index])
        return torch.full((x_t.shape[0],), sigma, device=self.device)

    def x0(self, x_t, timestep, cond, scheduler, step_index):
        return self.predict(x_t, self._sigmas(x_t, timestep, scheduler, step_index), cond)

    def x0_pair(self, x_t, timestep, guide, cond, scheduler, step_index) -> tuple:
        if self.guide_net is None:
            return super().x0_pair(x_t, timestep, guide, cond, scheduler, step_index)
        sigmas = self._sigmas(x_t, timestep, scheduler, step_index)
        return self._call(self.guide_net, x_t, sigmas, guide), self.predict(x_t, sigmas, cond)

    def abilities(self) -> frozenset[str]:
        return frozenset({"weak"}) if self.guide_net is not None else frozenset()

    def weak_x0(self, x_t, timestep, cond, guide, scheduler, step_index) -> torch.Tensor:
        """The guide network on the guide condition (its own embedding of the prompt's
        label): the guiding half of `x0_pair`, so autoguidance equals `none` here."""
        if self.guide_net is None:
            return super().weak_x0(x_t, timestep, cond, guide, scheduler, step_index)
        sigmas = self._sigmas(x_t, timestep, scheduler, step_index)
        return self._call(self.guide_net, x_t, sigmas, guide)

    def predict(self, x_t, timestep, cond):
        """`timestep` is sigma here: EDM networks take the noise level itself."""
        return self._call(self.net, x_t, timestep, cond)

    def _call(self, net, x, sigma, cond) -> torch.Tensor:
        if not self.label_dim:
            return net(x, sigma, None).to(x.dtype)
        if label_embedder(net) is None:
            return net(x, sigma, cond).to(x.dtype)
        placeholder = torch.zeros(x.shape[0], self.label_dim, device=x.device)
        with given_embedding(net, cond):
            return net(x, sigma, placeholder).to(x.dtype)

    def decode(self, x0: torch.Tensor) -> torch.Tensor:
        if self.decoder is None:
            return super().decode(x0)
        return to_unit(self.decoder(x0))

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        if self.encoder is None:
            return super().encode(images)
        return self.encoder(images)


def _prepare(net, device: torch.device):
    if isinstance(net, torch.nn.Module):
        return net.to(device).eval().requires_grad_(False)
    return net


def _edm2_shape(net) -> tuple[int, ...]:
    try:
        return (int(net.img_channels), int(net.img_resolution), int(net.img_resolution))
    except AttributeError as err:
        message = "the network has no img_channels/img_resolution: pass latent_shape"
        raise BenchError(message) from err


def _unpickle(path: Path) -> dict:
    """An EDM2 network pickle; unpickling needs the NVlabs/edm2 code on PYTHONPATH."""
    try:
        with open(path, "rb") as f:
            return pickle.load(f)
    except ModuleNotFoundError as err:
        raise BenchError(
            f"cannot unpickle {path}: put a checkout of NVlabs/edm2 on PYTHONPATH ({err})"
        ) from err


def load_edm2(model_path=None, guide_path=None, dtype="float32", device="cpu", **_) -> EDM2Adapter:
    """The factory for `--model bench.models.edm2:load_edm2`: an EDM2 pickle from
    `model_path` or $SPELLBENCH_EDM2_PATH, optionally a guiding network pickle from
    `guide_path` or $SPELLBENCH_EDM2_GUIDE_PATH; its encoder decodes latents."""
    source = local_file(
        model_path,
        PATH_VAR,
        lambda tried: f"EDM2 network pickle not found ({tried}): download one from "
        f"NVlabs/edm2 (e.g. edm2-img512-xs-2147483-0.135.pkl) and point --model-path or "
        f"{PATH_VAR} at it",
    )
    data = _unpickle(source)
    guide = guide_path or os.environ.get(GUIDE_PATH_VAR)
    guide_net = _unpickle(Path(guide))["ema"] if guide else None
    encoder = data.get("encoder")
    return EDM2Adapter(
        data["ema"],
        guide_net,
        decoder=getattr(encoder, "decode", None),
        device=device,
        dtype=dtype,
    )
