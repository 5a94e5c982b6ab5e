"""`ldm`: CompVis text-to-image latent diffusion 256 (LDMTextToImagePipeline components).

LDM-BERT encodes the caption padded to 77 tokens; the UNet predicts epsilon on
32x32x4 latents; the native scheduler is DDIM (eta = 0, as the pipeline).
"""

from __future__ import annotations

import torch
from diffusers import LDMTextToImagePipeline

from bench.models.pipelines import UNetTextPipelineAdapter, Weights, load_pipeline

WEIGHTS = Weights("ldm", "CompVis/ldm-text2im-large-256", "SPELLBENCH_LDM_PATH")
MAX_LENGTH = 77  # the pipeline pads every caption to 77 tokens


class LDMAdapter(UNetTextPipelineAdapter):
    name = "ldm"
    default_guidance = 5.0
    default_steps = 50

    @property
    def vae(self) -> torch.nn.Module:
        return self.pipe.vqvae

    def _embed(self, texts: list[str]) -> torch.Tensor:
        ids = self.pipe.tokenizer(
            texts, padding="max_length", max_length=MAX_LENGTH, truncation=True, return_tensors="pt"
        ).input_ids
        return self.pipe.bert(ids.to(self.device))[0]

    def predict(self, x_t, timestep, cond):
        return self.pipe.unet(x_t, timestep, encoder_hidden_states=cond).sample


def load_ldm(model_path=None, dtype="float32", device="cpu", **_) -> LDMAdapter:
    return LDMAdapter(load_pipeline(LDMTextToImagePipeline, WEIGHTS, model_path, dtype, device))
