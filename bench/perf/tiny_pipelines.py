"""Tiny, randomly initialised diffusers pipelines built from configs (no download).

Each builder seeds torch, so the components are the same on every call. Text
models get a character-level CLIP or BERT tokenizer written to a temporary folder.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from diffusers import (
    AutoencoderKL,
    DDIMScheduler,
    DiTPipeline,
    DiTTransformer2DModel,
    FlowMatchEulerDiscreteScheduler,
    LDMTextToImagePipeline,
    PNDMScheduler,
    SD3Transformer2DModel,
    StableDiffusion3Pipeline,
    StableDiffusionPipeline,
    UNet2DConditionModel,
)
from diffusers.pipelines.latent_diffusion.pipeline_latent_diffusion import (
    LDMBertConfig,
    LDMBertModel,
)
from transformers import (
    BertTokenizer,
    CLIPTextConfig,
    CLIPTextModel,
    CLIPTextModelWithProjection,
    CLIPTokenizer,
    T5Config,
    T5EncoderModel,
)

LETTERS = "abcdefghijklmnopqrstuvwxyz"
SIZE = 8  # latent side
TEXT_DIM = 16
MAX_TOKENS = 77
SD_BETAS = {"beta_start": 0.00085, "beta_end": 0.012, "beta_schedule": "scaled_linear"}
# DiT-XL-2-256's own schedule
DIT_BETAS = {
    "beta_start": 0.0001,
    "beta_end": 0.02,
    "beta_schedule": "linear",
    "num_train_timesteps": 1000,
}


def clip_tokenizer(folder: Path) -> CLIPTokenizer:
    """Byte-level BPE over single letters (no merges): one token per character."""
    folder.mkdir(parents=True, exist_ok=True)
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for suffix in ("", "</w>"):
        vocab.update({c + suffix: len(vocab) for c in LETTERS})
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text("#version: 0.2\n")
    return CLIPTokenizer(
        str(folder / "vocab.json"), str(folder / "merges.txt"), model_max_length=MAX_TOKENS
    )


def bert_tokenizer(folder: Path) -> BertTokenizer:
    folder.mkdir(parents=True, exist_ok=True)
    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *LETTERS, "a", "photo", "of", "dog"]
    (folder / "vocab.txt").write_text("\n".join(dict.fromkeys(words)) + "\n")
    return BertTokenizer(str(folder / "vocab.txt"))


def clip_config(**extra) -> CLIPTextConfig:
    """A CLIP text config over `clip_tokenizer`'s vocabulary; `extra` overrides the sizes."""
    sizes = dict(
        hidden_size=TEXT_DIM, intermediate_size=32, num_hidden_layers=2, num_attention_heads=2,
        max_position_embeddings=MAX_TOKENS,
    )
    return CLIPTextConfig(
        vocab_size=2 + 2 * len(LETTERS), bos_token_id=0, eos_token_id=1, pad_token_id=1,
        **{**sizes, **extra},
    )


def tiny_vae(latent_channels: int = 4, **extra) -> AutoencoderKL:
    return AutoencoderKL(
        in_channels=3, out_channels=3, block_out_channels=(8,), layers_per_block=1,
        down_block_types=("DownEncoderBlock2D",), up_block_types=("UpDecoderBlock2D",),
        latent_channels=latent_channels, norm_num_groups=4, sample_size=SIZE, **extra,
    )


def tiny_unet(cross_attention_dim: int = TEXT_DIM) -> UNet2DConditionModel:
    return UNet2DConditionModel(
        sample_size=SIZE, in_channels=4, out_channels=4, block_out_channels=(8, 16),
        layers_per_block=1, down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), cross_attention_dim=cross_attention_dim,
        attention_head_dim=4, norm_num_groups=4,
    )


def tiny_ldm(tmp: Path) -> LDMTextToImagePipeline:
    torch.manual_seed(0)
    tokenizer = bert_tokenizer(tmp / "bert")
    bert = LDMBertModel(LDMBertConfig(
        vocab_size=tokenizer.vocab_size, d_model=TEXT_DIM, encoder_layers=2, encoder_ffn_dim=32,
        encoder_attention_heads=2, head_dim=8, max_position_embeddings=77,
    ))
    scheduler = DDIMScheduler(**SD_BETAS, clip_sample=False, set_alpha_to_one=False)
    return ready(LDMTextToImagePipeline(
        vqvae=tiny_vae(), bert=bert.eval(), tokenizer=tokenizer, unet=tiny_unet(),
        scheduler=scheduler,
    ))


def tiny_sd15(tmp: Path) -> StableDiffusionPipeline:
    torch.manual_seed(0)
    # as SD 1.5's scheduler_config.json: clip_sample travels to DDIM built from it
    scheduler = PNDMScheduler.from_config({**SD_BETAS, "skip_prk_steps": True, "steps_offset": 1,
                                           "set_alpha_to_one": False, "clip_sample": False})
    return ready(StableDiffusionPipeline(
        vae=tiny_vae(scaling_factor=0.18215), text_encoder=CLIPTextModel(clip_config()).eval(),
        tokenizer=clip_tokenizer(tmp / "clip"), unet=tiny_unet(), scheduler=scheduler,
        safety_checker=None, feature_extractor=None, requires_safety_checker=False,
    ))


def tiny_sd3(tmp: Path, t5: bool = False) -> StableDiffusion3Pipeline:
    """Two CLIP encoders (pooled 2 x 16), joint width 40 (so CLIP states get padded)."""
    torch.manual_seed(0)
    joint = 40
    transformer = SD3Transformer2DModel(
        sample_size=SIZE, patch_size=2, in_channels=4, out_channels=4, num_layers=2,
        attention_head_dim=8, num_attention_heads=2, joint_attention_dim=joint,
        caption_projection_dim=16, pooled_projection_dim=2 * TEXT_DIM, pos_embed_max_size=SIZE,
    )
    tokenizer = clip_tokenizer(tmp / "clip")
    encoder_3 = None
    if t5:
        encoder_3 = T5EncoderModel(T5Config(
            vocab_size=tokenizer.vocab_size, d_model=joint, d_kv=8, d_ff=32, num_layers=1,
            num_heads=2, decoder_start_token_id=0,
        )).eval()
    return ready(StableDiffusion3Pipeline(
        transformer=transformer, scheduler=FlowMatchEulerDiscreteScheduler(shift=3.0),
        vae=tiny_vae(scaling_factor=1.5, shift_factor=0.06),
        text_encoder=CLIPTextModelWithProjection(clip_config(projection_dim=TEXT_DIM)).eval(),
        tokenizer=tokenizer,
        text_encoder_2=CLIPTextModelWithProjection(clip_config(projection_dim=TEXT_DIM)).eval(),
        tokenizer_2=tokenizer,
        text_encoder_3=encoder_3, tokenizer_3=tokenizer if t5 else None,
    ))


def tiny_dit() -> DiTPipeline:
    """Learned sigma (8 output channels for 4 latent ones); 1000 classes + null, as DiT.
    The per-block class tables are tied, as in the converted DiT checkpoints, and the
    scheduler is DiT's own (DIT_BETAS). On this random network they make the latents
    large (about 80 at 4 steps), so comparisons scale their tolerance with them."""
    torch.manual_seed(0)
    transformer = DiTTransformer2DModel(
        num_attention_heads=2, attention_head_dim=8, in_channels=4, out_channels=8,
        num_layers=2, sample_size=SIZE, patch_size=2, num_embeds_ada_norm=1000,
    )
    first = transformer.transformer_blocks[0].norm1.emb.class_embedder.embedding_table
    for block in transformer.transformer_blocks[1:]:
        block.norm1.emb.class_embedder.embedding_table.weight.data.copy_(first.weight.data)
    scheduler = DDIMScheduler(**DIT_BETAS, clip_sample=False)
    id2label = {i: f"thing {i}, item {i}" for i in range(1000)}
    return ready(DiTPipeline(transformer=transformer.eval(), vae=tiny_vae(), scheduler=scheduler,
                              id2label=id2label))


def ready(pipe):
    for component in pipe.components.values():
        if isinstance(component, torch.nn.Module):
            component.eval().requires_grad_(False)
    pipe.set_progress_bar_config(disable=True)
    return pipe
