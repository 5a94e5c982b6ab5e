"""The model-adapter protocol that the sampler drives (DESIGN.md, "The sampling core").

An adapter hides how one family of networks is called. The sampler only needs:
the latent shape, conditioning tensors for prompts and for the null prompt, one
network call turned into an x0 prediction, a fresh native diffusers scheduler,
and decode (latents -> images in [0, 1]).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import torch
from diffusers import SchedulerMixin

from bench.errors import BenchError
from bench.schedules import noise_level, scale_input
from methods.base import ConditionPart


@dataclass(frozen=True)
class Prompt:
    """One work item's condition: a class label, a caption, or both."""

    id: str
    text: str
    label: int | None = None
    samples: int | None = None  # this prompt's sample count, when the run's varies


class ModelAdapter(ABC):
    """Subclass per model family. `prediction_type` is the network's output:
    "epsilon", "v_prediction", "sample" (x0) or "flow" (velocity eps - x0)."""

    name: str = "model"
    latent_shape: tuple[int, ...] = ()
    prediction_type: str = "epsilon"
    default_guidance: float = 1.0
    default_steps: int = 50
    default_scheduler: str = "native"
    device: torch.device = torch.device("cpu")
    dtype: torch.dtype = torch.float32

    @abstractmethod
    def prompts(self) -> list[Prompt]:
        """Every prompt the model offers by default (classes for class models)."""

    @abstractmethod
    def make_scheduler(self, kind: str = "native") -> SchedulerMixin:
        """A fresh scheduler (schedulers are stateful: one per batch)."""

    @abstractmethod
    def condition(self, prompts: list[Prompt]) -> torch.Tensor:
        """Conditioning tensor for a batch of prompts (methods may change it)."""

    @abstractmethod
    def null_condition(self, n: int) -> torch.Tensor:
        """Conditioning tensor of the null prompt, batch of n."""

    def condition_parts(self, cond: torch.Tensor) -> tuple[ConditionPart, ...]:
        """How a condition tensor of this model splits into parts (empty: one part)."""
        return ()

    def guide_condition(self, prompts: list[Prompt]) -> torch.Tensor:
        """The condition of the guiding prediction that CFG pushes away from: the null
        prompt by default; an autoguided model keeps the prompt's own label."""
        return self.null_condition(len(prompts))

    @abstractmethod
    def predict(
        self, x_t: torch.Tensor, timestep: torch.Tensor, cond: torch.Tensor
    ) -> torch.Tensor:
        """One network call; returns the raw output in `prediction_type`."""

    def to(self, device: torch.device | str) -> ModelAdapter:
        """Move the networks (attributes that are modules) to `device`."""
        self.device = torch.device(device)
        for value in vars(self).values():
            if isinstance(value, torch.nn.Module):
                value.to(self.device)
        return self

    def set_timesteps(self, scheduler: SchedulerMixin, steps: int) -> None:
        """Prepare a fresh scheduler for `steps` steps, as the model's pipeline would."""
        scheduler.set_timesteps(steps, device=self.device)

    def decode(self, x0: torch.Tensor) -> torch.Tensor:
        """Latents -> images in [0, 1], (N, C, H, W). Pixel models: [-1, 1] -> [0, 1]."""
        return ((x0 + 1.0) / 2.0).clamp(0.0, 1.0)

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """Images in [0, 1] -> the space the model diffuses in."""
        return images * 2.0 - 1.0

    def x0(
        self,
        x_t: torch.Tensor,
        timestep: torch.Tensor,
        cond: torch.Tensor,
        scheduler: SchedulerMixin,
        step_index: int,
    ) -> torch.Tensor:
        """One network call converted to an x0 prediction."""
        out = self.predict(scale_input(scheduler, x_t, timestep), timestep, cond)
        alpha, sigma = noise_level(scheduler, step_index, timestep)
        return output_to_x0(out, x_t, alpha, sigma, self.prediction_type)

    def x0_pair(self, x_t, timestep, guide, cond, scheduler, step_index) -> tuple:
        """(x0 of the guiding prediction, x0 of the conditional one), in one network call
        on the doubled batch (as the pipelines do)."""
        both = self.x0(
            torch.cat([x_t, x_t]), timestep, torch.cat([guide, cond]), scheduler, step_index
        )
        return both.chunk(2)

    def guidance_weight(self, w: float, timestep, step_index: int, num_steps: int) -> float:
        """The CFG weight this model applies at a step, given the run's (or the method's)
        weight w: w itself, unless the model's own sampler schedules it (MDT)."""
        return w

    def abilities(self) -> frozenset[str]:
        """The optional predictions this model can make (methods' `requires`): "weak"
        (`weak_x0`) and "attention" (`perturbable`)."""
        return frozenset()

    def weak_x0(self, x_t, timestep, cond, guide, scheduler, step_index) -> torch.Tensor:
        """x0 of the model's weaker network (autoguidance's guide) on the prompt's
        condition `cond`; `guide` is the guide condition, for adapters whose weak network
        conditions differently (EDM2's guide embeds the label itself)."""
        raise BenchError(
            f"model {self.name!r} has no weaker network for autoguidance "
            "(digits, toy2d and an edm2 network with a guide pickle have one)"
        )

    def denoiser(self) -> torch.nn.Module | None:
        """The main network (what `--channels-last` and `--compile` apply to)."""
        for name in ("network", "net"):
            net = getattr(self, name, None)
            if isinstance(net, torch.nn.Module):
                return net
        return None

    def perturbable(self) -> torch.nn.Module:
        """The network whose attention layers perturbed-forward guidance hooks into."""
        raise BenchError(f"model {self.name!r} has no attention network to perturb")

    def perturbed_x0(self, method, x_t, timestep, cond, scheduler, step_index) -> torch.Tensor:
        """x0 of the conditional prediction with the network inside `method.perturb`."""
        with method.perturb(self.perturbable()):
            return self.x0(x_t, timestep, cond, scheduler, step_index)


def output_to_x0(out, x_t, alpha, sigma, prediction_type: str) -> torch.Tensor:
    if prediction_type == "epsilon":
        return (x_t - sigma * out) / alpha
    if prediction_type == "v_prediction":
        return alpha * x_t - sigma * out
    if prediction_type == "sample":
        return out
    if prediction_type == "flow":
        return x_t - sigma * out
    raise ValueError(f"unknown prediction type {prediction_type!r}")


def x0_to_output(x0, x_t, alpha, sigma, prediction_type: str) -> torch.Tensor:
    """Inverse of `output_to_x0` for fixed x_t (affine, so CFG commutes with it)."""
    if prediction_type == "epsilon":
        return (x_t - alpha * x0) / sigma
    if prediction_type == "v_prediction":
        eps = (x_t - alpha * x0) / sigma
        return alpha * eps - sigma * x0
    if prediction_type == "sample":
        return x0
    if prediction_type == "flow":
        return (x_t - x0) / sigma
    raise ValueError(f"unknown prediction type {prediction_type!r}")
