"""EDM2-style networks through `--model module:factory`.

An EDM2 network (NVlabs/edm2 pickles, EDM and most k-diffusion wrappers) is a
callable `net(x, sigma, class_labels) -> D(x; sigma)`: it takes the noisy image
in the variance-exploding form x = x0 + sigma * eps, does its own input/output
preconditioning and returns the denoised x0. The network code is the user's;
this adapter only calls it.

Sampling uses diffusers' EulerDiscreteScheduler on the EDM/Karras schedule
(sigma_min 0.002, sigma_max 80, rho 7, last step to sigma 0) with the
prediction type "sample", i.e. the deterministic Euler sampler of EDM with
S_churn = 0. CFG follows EDM2: D = D_guide + w (D - D_guide), where the guiding
network is a separate (usually unconditional) `guide_net`, or the same network
given the null label (all-zero one-hot) when there is none.

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
from collections.abc import Callable
from pathlib import Path

import torch
from diffusers import EulerDiscreteScheduler, SchedulerMixin

from bench.errors import BenchError
from bench.models.base import ModelAdapter, Prompt
from bench.models.pipelines import torch_dtype
from bench.schedules import scale_input

SIGMA_MIN = 0.002
SIGMA_MAX = 80.0
PATH_VAR = "SPELLBENCH_EDM2_PATH"
GUIDE_PATH_VAR = "SPELLBENCH_EDM2_GUIDE_PATH"


def edm_scheduler(sigma_min: float = SIGMA_MIN, sigma_max: float = SIGMA_MAX) -> SchedulerMixin:
    """Euler on the Karras schedule (rho 7), stepping towards a given x0."""
    return EulerDiscreteScheduler(
        use_karras_sigmas=True,
        sigma_min=sigma_min,
        sigma_max=sigma_max,
        prediction_type="sample",
        timestep_spacing="linspace",
        final_sigmas_type="zero",
    )


def to_unit(images: torch.Tensor) -> torch.Tensor:
    """uint8 [0, 255] or float [0, 1] images -> float [0, 1]."""
    if images.dtype == torch.uint8:
        return images.float() / 255.0
    return images.float().clamp(0, 1)


class EDM2Adapter(ModelAdapter):
    """Adapter for a denoiser `net(x, sigma, class_labels) -> x0`.

    The condition is the one-hot class vector (what CADS noises); the null
    condition is all zeros, and those rows go to `guide_net` when there is one.
    `decoder` maps the network's space to images (uint8 or [0, 1]); without one
    the space is pixels in [-1, 1]. Shape and label count default to the EDM2
    attributes `img_channels`, `img_resolution` and `label_dim`.
    """

    name = "edm2"
    prediction_type = "sample"
    default_steps = 50

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
        if kind not in ("native", "euler"):
            raise BenchError(f"unknown scheduler {kind!r} for an EDM2 network: use native (euler)")
        return edm_scheduler(self.sigma_min, self.sigma_max)

    def set_timesteps(self, scheduler: SchedulerMixin, steps: int) -> None:
        scheduler.set_timesteps(steps, device=self.device)
        # sigmas above the VP training range share one clamped timestep: index by position
        scheduler.set_begin_index(0)

    def condition(self, prompts: list[Prompt]) -> torch.Tensor:
        cond = torch.zeros(len(prompts), max(self.label_dim, 1), device=self.device)
        for row, prompt in enumerate(prompts):
            if prompt.label is not None and self.label_dim:
                cond[row, prompt.label] = 1.0
        return cond

    def null_condition(self, n: int) -> torch.Tensor:
        return torch.zeros(n, max(self.label_dim, 1), device=self.device)

    def x0(self, x_t, timestep, cond, scheduler, step_index):
        scale_input(scheduler, x_t, timestep)  # keeps the scheduler's bookkeeping only
        sigma = float(scheduler.sigmas[step_index])
        return self.predict(x_t, torch.full((x_t.shape[0],), sigma, device=self.device), cond)

    def predict(self, x_t, timestep, cond):
        """`timestep` is sigma here: EDM networks take the noise level itself."""
        labels = cond if self.label_dim else None
        if self.guide_net is None:
            return self._call(self.net, x_t, timestep, labels)
        null = (cond == 0).all(dim=1)
        out = torch.empty_like(x_t)
        for net, rows in ((self.net, ~null), (self.guide_net, null)):
            if rows.any():
                part = labels[rows] if labels is not None else None
                out[rows] = self._call(net, x_t[rows], timestep[rows], part)
        return out

    def _call(self, net, x, sigma, labels) -> torch.Tensor:
        return net(x, sigma, labels).to(x.dtype)

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
    source = model_path or os.environ.get(PATH_VAR)
    if not source or not Path(source).is_file():
        raise BenchError(
            f"EDM2 network pickle not found ({source or 'no path given'}): download "
            f"one from NVlabs/edm2 (e.g. edm2-img512-xs-2147483-0.135.pkl) and point "
            f"--model-path or {PATH_VAR} at it"
        )
    data = _unpickle(Path(source))
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
