"""`mdm`: Apple ml-mdm's single-resolution pixel UNet (the SPELL paper's "Simple Diffusion").

The network is ml-mdm's own `UNet` (apple/ml-mdm, `ml-mdm-matryoshka/ml_mdm/models/unet.py`)
built from the `cc12m_64x64.yaml` settings (or a config file of that format) and the
checkpoint's weights; it predicts v on 64x64 RGB pixels in [-1, 1]. Text conditions are
ml-mdm's: its own trie tokenizer over `data/t5.vocab` (a leading space, EOS appended, at
most 128 tokens, a CFG pair padded with <pad> to the longer of the two), then the
flan-t5-xl encoder's last hidden states, zeroed at padding, with the padding mask.

Schedule and sampler, as ml-mdm's `Sampler`: 1000 discrete steps of the `squaredcos_cap_v2`
("DEEPFLOYD") alpha-bar, gamma_0 = 1 for clean images, the network fed t - 1 for noise
level gamma_t; K inference steps at t_k = round(k (N + 1) / (K + 1)), k = K .. 0 (its
`resample_steps`); x0 clipped to [-1, 1] after CFG (which ml-mdm applies to v: the same
as CFG on x0, both being affine in the output at fixed x_t). `native`/`ddpm` is the DDPM
posterior step (ml-mdm's `ddim_eta=None`, equal to its eta = 1, the default of its
batch generator); `ddim` is its deterministic DDIM step (eta = 0, the web demo's
default), which derives epsilon from the clipped x0.

The condition methods see one tensor: the (L, D) token states, then ceil(L / D) rows
holding the mask; `condition_parts` names the caption's own tokens only, so CADS leaves
the padding and the mask alone.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from diffusers import DDPMScheduler, SchedulerMixin
from diffusers.schedulers.scheduling_ddpm import DDPMSchedulerOutput

from bench.errors import BenchError
from bench.models.base import ModelAdapter, Prompt
from bench.models.local_files import local_file
from bench.models.pipelines import batch_timestep, caption_prompts, torch_dtype
from methods.base import ConditionPart

PATH_VAR = "SPELLBENCH_MDM_PATH"
T5_VAR = "SPELLBENCH_MDM_T5_PATH"
VOCAB_VAR = "SPELLBENCH_MDM_VOCAB_PATH"
CONFIG_VAR = "SPELLBENCH_MDM_CONFIG"
T5_ID = "google/flan-t5-xl"
REPO = "https://github.com/apple/ml-mdm"
INSTALL = (
    f'pip install --no-deps "git+{REPO}#subdirectory=ml-mdm-matryoshka" '
    'einops torchinfo "simple-parsing==0.1.5" "dataclass-wizard<0.23" mlx-data boto3'
)
CHECKPOINT_URL = (
    "https://docs-assets.developer.apple.com/ml-research/models/mdm/flickr64/vis_model.pth"
)
THRESHOLDS = {  # ml-mdm's threshold functions as diffusers scheduler settings
    "clip": {"clip_sample": True},
    "dynamic": {
        "thresholding": True,
        "dynamic_thresholding_ratio": 0.995,
        "sample_max_value": 100.0,
    },
    "dynamic_if": {
        "thresholding": True,
        "dynamic_thresholding_ratio": 0.95,
        "sample_max_value": 1.5,
    },
    "none": {},
}
PREDICTIONS = {"v_prediction": "v_prediction", "ddpm": "epsilon", "ddim": "epsilon"}

# configs/models/cc12m_64x64.yaml of apple/ml-mdm: the single-resolution UNet
UNET_64 = {
    "num_resnets_per_resolution": [2, 2, 2],
    "attention_levels": [1, 2],
    "num_attention_layers": [0, 1, 5],
    "conditioning_feature_proj_dim": 2048,
    "num_lm_head_layers": 0,
    "masked_cross_attention": 0,
    "resolution_channels": [256, 512, 768],
    "skip_mid_blocks": False,
    "skip_cond_emb": False,
    "nesting": False,
    "micro_conditioning": "scale:64",
    "resnet_config": {"num_groups_norm": 32, "dropout": 0.0, "use_attention_ffn": True},
}
SAMPLER_64 = {
    "num_diffusion_steps": 1000,
    "prediction_type": "V_PREDICTION",
    "schedule_type": "DEEPFLOYD",
}


@dataclass(frozen=True)
class MDMSchedule:
    """ml-mdm's `SamplerConfig` fields that set the noise levels."""

    kind: str = "deepfloyd"  # cosine | ddpm | deepfloyd
    train_steps: int = 1000
    beta_start: float = 1e-4
    beta_end: float = 0.02
    rescale: float = 1.0  # rescale_schedule: SNR divided by rescale ** power
    power: float = 1.0


def _alpha_bar(t: float) -> float:
    return math.cos((t + 0.008) / 1.008 * math.pi / 2) ** 2


def base_gammas(schedule: MDMSchedule) -> np.ndarray:
    """gamma_0 .. gamma_N (alpha-bar, gamma_0 = 1) in float64, before any rescaling."""
    n = schedule.train_steps
    if schedule.kind == "cosine":  # log-SNR from 5 to -5, cosine in between
        b = np.arctan(np.exp(-2.5))
        a = np.arctan(np.exp(2.5)) - b
        logsnr = -2.0 * np.log(np.tan(a * np.linspace(0.0, 1.0, n) + b))
        return np.concatenate(([1.0], 1.0 / (1.0 + np.exp(-logsnr))))
    if schedule.kind == "ddpm":
        betas = np.concatenate(([0.0], np.linspace(schedule.beta_start, schedule.beta_end, n)))
    elif schedule.kind == "deepfloyd":
        steps = [min(1 - _alpha_bar((i + 1) / n) / _alpha_bar(i / n), 0.999) for i in range(n)]
        betas = np.asarray([0.0, *steps])
    else:
        raise BenchError(
            f"unknown ml-mdm schedule {schedule.kind!r}: use cosine, ddpm or deepfloyd"
        )
    return np.exp(np.cumsum(np.log(1.0 - betas)))


def mdm_gammas(schedule: MDMSchedule) -> torch.Tensor:
    """gamma_0 .. gamma_N as ml-mdm's sampler holds them (float32, then rescaled)."""
    gammas = torch.tensor(base_gammas(schedule)).float()
    if schedule.rescale > 1:
        snr = gammas / (1 - gammas) / schedule.rescale**schedule.power
        gammas = 1 / (1 + 1 / snr)
    return gammas


def mdm_timesteps(train_steps: int, steps: int) -> np.ndarray:
    """The network's timesteps t_k - 1 for k = K .. 1 (ml-mdm's resampled steps)."""
    if not 1 <= steps <= train_steps:
        raise BenchError(f"ml-mdm samples with 1 to {train_steps} steps, not {steps}")
    ratio = (train_steps + 1) / (steps + 1)
    levels = (np.arange(0, steps + 1) * ratio).round()[::-1].astype(np.int64)
    return levels[:-1] - 1


class MDMDDIMScheduler(DDPMScheduler):
    """ml-mdm's deterministic DDIM step (ddim_eta = 0) on DDPMScheduler's custom timesteps.

    diffusers' DDIMScheduler cannot take these rounded timesteps (its previous timestep is
    t - T // K) and keeps the unclipped epsilon; ml-mdm derives epsilon from the clipped x0."""

    def step(self, model_output, timestep, sample, generator=None, return_dict=True):
        t, prev = int(timestep), int(self.previous_timestep(timestep))
        g = self.alphas_cumprod[t]
        g_prev = self.alphas_cumprod[prev] if prev >= 0 else self.one
        if self.config.prediction_type == "v_prediction":
            x0 = g**0.5 * sample - (1 - g) ** 0.5 * model_output
        else:
            x0 = (sample - (1 - g) ** 0.5 * model_output) / g**0.5
        if self.config.thresholding:
            x0 = self._threshold_sample(x0)
        elif self.config.clip_sample:
            x0 = x0.clamp(-self.config.clip_sample_range, self.config.clip_sample_range)
        eps = (sample - g**0.5 * x0) / (1 - g) ** 0.5
        prev_sample = g_prev**0.5 * x0 + (1 - g_prev) ** 0.5 * eps
        if not return_dict:
            return prev_sample, x0
        return DDPMSchedulerOutput(prev_sample=prev_sample, pred_original_sample=x0)


SCHEDULERS: dict[str, type[DDPMScheduler]] = {"ddpm": DDPMScheduler, "ddim": MDMDDIMScheduler}


def mdm_scheduler(
    gammas: torch.Tensor, prediction_type: str, kind: str = "ddpm", threshold: str = "clip"
) -> DDPMScheduler:
    """A scheduler on ml-mdm's noise levels (alphas_cumprod[t - 1] = gamma_t, exactly)."""
    g = gammas.double()
    betas = (1 - g[1:] / g[:-1]).tolist()
    scheduler = SCHEDULERS[kind](
        num_train_timesteps=len(betas),
        trained_betas=betas,
        prediction_type=prediction_type,
        variance_type="fixed_small",
        **{"clip_sample": False, **THRESHOLDS[threshold]},
    )
    scheduler.alphas_cumprod = gammas[1:].clone()
    return scheduler


@dataclass(frozen=True)
class TextEncoder:
    """ml-mdm's text side: `tokenize` gives each caption's token ids (EOS included, not
    padded), `embed(tokens, mask)` the encoder's hidden states (B, L, dim)."""

    tokenize: Callable[[list[str]], list[list[int]]]
    embed: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    pad_id: int
    dim: int
    max_tokens: int = 128


def pack(states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(B, L, D) states + (B, L) mask -> (B, L + ceil(L / D), D)."""
    n, length, width = states.shape
    rows = math.ceil(length / width)
    padded = torch.nn.functional.pad(mask.to(states.dtype), (0, rows * width - length))
    return torch.cat([states, padded.reshape(n, rows, width)], dim=1)


def unpack(cond: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Inverse of `pack`: L + ceil(L / D) = rows has one solution."""
    total, width = cond.shape[1], cond.shape[2]
    length = next(n for n in range(total, 0, -1) if n + math.ceil(n / width) == total)
    return cond[:, :length], cond[:, length:].flatten(1)[:, :length]


class MDMAdapter(ModelAdapter):
    """Adapter around an ml-mdm `UNet` called as net(x_t, t, states, mask, micros)."""

    name = "mdm"
    default_guidance = 5.5
    default_steps = 50

    def __init__(
        self,
        net: torch.nn.Module,
        text: TextEncoder,
        *,
        image_size: int = 64,
        schedule: MDMSchedule = MDMSchedule(),
        prediction_type: str = "v_prediction",
        threshold: str = "clip",
        sampler: str = "ddpm",
        output_scale: float = 0.0,
        device: str | torch.device = "cpu",
        dtype: str | torch.dtype = "float32",
    ) -> None:
        if threshold not in THRESHOLDS:
            raise BenchError(f"unknown threshold {threshold!r}: use {', '.join(THRESHOLDS)}")
        if sampler not in SCHEDULERS:
            raise BenchError(f"unknown ml-mdm sampler {sampler!r}: use ddpm or ddim")
        self.device, self.dtype = torch.device(device), torch_dtype(dtype)
        self.net = net.to(self.device, self.dtype).eval().requires_grad_(False)
        self.text = text
        self.latent_shape = (3, image_size, image_size)
        self.schedule, self.gammas = schedule, mdm_gammas(schedule)
        self.prediction_type = prediction_type
        self.threshold, self.sampler, self.output_scale = threshold, sampler, output_scale

    def prompts(self) -> list[Prompt]:
        return caption_prompts()

    def make_scheduler(self, kind: str = "native") -> SchedulerMixin:
        kind = self.sampler if kind == "native" else kind
        if kind not in SCHEDULERS:
            raise BenchError(f"unknown scheduler {kind!r} for model mdm: use native, ddpm, ddim")
        return mdm_scheduler(self.gammas, self.prediction_type, kind, self.threshold)

    def set_timesteps(self, scheduler: SchedulerMixin, steps: int) -> None:
        # a from_config copy recomputes alphas_cumprod in float32 from the betas
        scheduler.alphas_cumprod = self.gammas[1:].clone()
        timesteps = mdm_timesteps(self.schedule.train_steps, steps).tolist()
        scheduler.set_timesteps(timesteps=timesteps, device=self.device)

    def _length(self, texts: list[str]) -> int:
        """The padded length of a CFG pair: its longer member, at most max_tokens."""
        ids = self.text.tokenize([*texts, ""])
        return min(max(len(t) for t in ids), self.text.max_tokens)

    def _encode(self, texts: list[str], length: int) -> torch.Tensor:
        rows = [t[:length] for t in self.text.tokenize(texts)]
        tokens = torch.full((len(rows), length), self.text.pad_id, dtype=torch.long)
        for i, row in enumerate(rows):
            tokens[i, : len(row)] = torch.tensor(row, dtype=torch.long)
        tokens = tokens.to(self.device)
        mask = (tokens != self.text.pad_id).float()
        states = self.text.embed(tokens, mask).float() * mask.unsqueeze(-1)
        return pack(states, mask).to(self.dtype)

    def condition(self, prompts: list[Prompt]) -> torch.Tensor:
        texts = [p.text for p in prompts]
        return self._encode(texts, self._length(texts))

    def null_condition(self, n: int) -> torch.Tensor:
        return self._encode([""] * n, self._length([""]))

    def guide_condition(self, prompts: list[Prompt]) -> torch.Tensor:
        """The empty caption padded to the prompts' length, as ml-mdm pads a CFG pair."""
        return self._encode([""] * len(prompts), self._length([p.text for p in prompts]))

    def condition_parts(self, cond: torch.Tensor) -> tuple[ConditionPart, ...]:
        states, mask = unpack(cond)
        tokens = int(mask.sum(dim=1).max().item())
        return (ConditionPart("tokens", 0, tokens * states.shape[2]),)

    def predict(self, x_t, timestep, cond):
        states, mask = unpack(cond)
        times = batch_timestep(timestep, x_t.shape[0], self.device)
        out = self.net(x_t, times, states, mask, {})
        if self.output_scale:
            out = torch.tanh(out / self.output_scale) * self.output_scale
        return out


def _upstream() -> dict[str, Any]:
    """ml-mdm's modules, or a one-line error saying how to install them."""
    try:
        from ml_mdm import reader
        from ml_mdm.language_models import tokenizer
        from ml_mdm.models import unet
        from ml_mdm.utils import fix_old_checkpoints
    except ModuleNotFoundError as err:
        missing = (err.name or "ml_mdm").split(".")[0]
        what = "ml_mdm is not installed" if missing == "ml_mdm" else f"ml_mdm needs {missing}"
        raise BenchError(
            f"model 'mdm': {what}; the PyPI package ml-mdm is an empty stub, install "
            f"apple/ml-mdm from the repository: {INSTALL}"
        ) from None
    return {"reader": reader, "tokenizer": tokenizer, "unet": unet, "fix": fix_old_checkpoints}


def _file(given: str | os.PathLike | None, var: str, what: str, how: str) -> Path:
    flag = "--model-path or " if var == PATH_VAR else ""
    return local_file(
        given,
        var,
        lambda tried: (
            f"model 'mdm': {what} not found ({tried}): {how}, and point {flag}{var} at it"
        ),
    )


def _config(path: str | os.PathLike | None) -> dict[str, Any]:
    """unet/sampler settings: cc12m_64x64's, or those of an ml-mdm model config file."""
    if not path:
        return {
            "unet": UNET_64,
            "sampler": SAMPLER_64,
            "image_size": 64,
            "reader": {},
            "scale": 0.0,
        }
    import yaml

    data = yaml.safe_load(Path(path).read_text())
    if data.get("vision_model", data.get("model", "unet")) != "unet":
        raise BenchError(f"model 'mdm' takes the single-resolution unet, not {path}'s nested one")
    diffusion = data.get("diffusion_config", {})
    return {
        "unet": data["unet_config"],
        "sampler": diffusion.get("sampler_config", {}),
        "image_size": int(data.get("sample_image_size", 64)),
        "reader": data.get("reader_config", {}),
        "scale": float(diffusion.get("model_output_scale", 0.0)),
    }


def _schedule(sampler: dict[str, Any]) -> tuple[MDMSchedule, str]:
    """(schedule, prediction type) of an ml-mdm sampler_config."""
    prediction = str(sampler.get("prediction_type", "DDPM")).lower()
    if prediction not in PREDICTIONS:
        raise BenchError(f"model 'mdm': unsupported prediction type {prediction!r}")
    if sampler.get("rescale_signal") not in (None, 0, 1, 1.0):
        raise BenchError("model 'mdm': rescale_signal (nested models' setting) is not supported")
    schedule = MDMSchedule(
        kind=str(sampler.get("schedule_type", "DDPM")).lower(),
        train_steps=int(sampler.get("num_diffusion_steps", 32)),
        beta_start=float(sampler.get("beta_start", 1e-4)),
        beta_end=float(sampler.get("beta_end", 0.02)),
        rescale=float(sampler.get("rescale_schedule", 1.0)),
        power=float(sampler.get("schedule_shifted_power", 1.0)),
    )
    return schedule, PREDICTIONS[prediction]


def _text_encoder(up: dict, vocab: Path, t5: str, reader_settings: dict, device) -> TextEncoder:
    """ml-mdm's tokenizer and reader settings, and the T5 encoder from local files only."""
    from transformers import T5EncoderModel

    try:
        model = T5EncoderModel.from_pretrained(t5, local_files_only=True, dtype=torch.float32)
    except (OSError, ValueError):
        raise BenchError(
            f"model 'mdm': text encoder {T5_ID} not found at {t5!r}: `hf download {T5_ID}` "
            f"or point {T5_VAR} at a local copy"
        ) from None
    model = model.to(device).eval().requires_grad_(False)
    settings = {"max_token_length": 128, "max_caption_length": 512, **reader_settings}
    fields = up["reader"].ReaderConfig.__dataclass_fields__
    config = up["reader"].ReaderConfig(**{k: v for k, v in settings.items() if k in fields})
    tok = up["tokenizer"].Tokenizer(str(vocab), mode="t5")

    def tokenize(texts: list[str]) -> list[list[int]]:
        return [list(up["reader"].process_text([t], tok, config)[0]) for t in texts]

    def embed(tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return model(input_ids=tokens, attention_mask=mask).last_hidden_state

    pad = tok.token_id(config.padding_token)
    return TextEncoder(tokenize, embed, pad, model.config.d_model, config.max_token_length)


def _unet(up: dict, settings: dict, text_dim: int, checkpoint: Path) -> torch.nn.Module:
    """ml-mdm's UNet from the config, with the checkpoint's weights (all of them)."""
    unet = up["unet"]
    values = {k: v for k, v in settings.items() if k != "resnet_config"}
    config = unet.UNetConfig(**values, resnet_config=unet.ResNetConfig(**settings["resnet_config"]))
    config.conditioning_feature_dim = text_dim
    net = unet.UNet(3, 3, config)
    up["fix"].mimic_old_modules()  # old checkpoints pickle objects of renamed modules
    state = torch.load(checkpoint, map_location="cpu", weights_only=False)["state_dict"]
    own = net.state_dict()
    missing = [k for k in own if k not in state]
    if missing:
        raise BenchError(
            f"model 'mdm': {checkpoint} does not fit the UNet config ({len(missing)} "
            f"weights missing, e.g. {missing[0]}): pass the config file it was trained with"
        )
    net.load_state_dict({k: v for k, v in state.items() if k in own})
    return net


def load_mdm(
    device: str | torch.device = "cpu",
    model_path: str | os.PathLike | None = None,
    dtype: str | torch.dtype = "float32",
    *,
    text_encoder_path: str | None = None,
    vocab_path: str | None = None,
    config_path: str | None = None,
    sampler: str = "ddpm",
    threshold: str | None = None,
    **_,
) -> MDMAdapter:
    """The factory for `mdm`: ml-mdm's UNet with weights from `model_path` or
    $SPELLBENCH_MDM_PATH, its tokenizer vocabulary (`data/t5.vocab` of the repository)
    from `vocab_path` or $SPELLBENCH_MDM_VOCAB_PATH, flan-t5-xl from `text_encoder_path`,
    $SPELLBENCH_MDM_T5_PATH or the HF cache, and the cc12m_64x64 settings unless
    `config_path` / $SPELLBENCH_MDM_CONFIG names an ml-mdm model config."""
    up = _upstream()
    how = f"download it (curl {CHECKPOINT_URL} -o vis_model_64x64.pth)"
    checkpoint = _file(model_path, PATH_VAR, "ml-mdm checkpoint", how)
    vocab = _file(
        vocab_path,
        VOCAB_VAR,
        "tokenizer vocabulary t5.vocab",
        f"take data/t5.vocab from {REPO} (ml-mdm-matryoshka/data)",
    )
    settings = _config(config_path or os.environ.get(CONFIG_VAR))
    schedule, prediction = _schedule(settings["sampler"])
    t5 = text_encoder_path or os.environ.get(T5_VAR) or T5_ID
    text = _text_encoder(up, vocab, t5, settings["reader"], device)
    net = _unet(up, settings["unet"], text.dim, checkpoint)
    clip = str(settings["sampler"].get("threshold_function", "CLIP")).lower()
    return MDMAdapter(
        net,
        text,
        image_size=settings["image_size"],
        schedule=schedule,
        prediction_type=prediction,
        threshold=threshold or clip,
        sampler=sampler,
        output_scale=settings["scale"],
        device=device,
        dtype=dtype,
    )
