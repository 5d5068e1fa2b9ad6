"""A tiny Stable-Diffusion-shaped text-to-image model trained on captioned scenes.

Latent diffusion, as SD 1.x: a small VAE (64×64 pixels ↔ 16×16×4 latents, a factor of 4, not
SD's 8, so a small thing of ~15 pixels spans about 4×4 latent cells), then a UNet with
cross-attention and a CLIP text encoder trained together to predict the noise that SD 1.5's
own schedule (scaled-linear betas, 1,000 steps) adds, with one caption in ten left empty so that
classifier-free guidance works. Saved by diffusers' StableDiffusionPipeline, it loads through
`from_pretrained` and runs with every scheduler in engine.schedulers.

The fine-tune is the base trained on for a few hundred more steps on the same scenes drawn as
outlines: side by side (and blended 50/50) the model's part in a recipe shows.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import cast

import torch
import torch.nn.functional as F
from tqdm import tqdm

from engine.torch_compat import ensure_torchvision

ensure_torchvision()

from diffusers.schedulers.scheduling_ddpm import DDPMScheduler  # noqa: E402

from engine.scenes import LANGUAGES, scene_at  # noqa: E402
from engine.tiny_models import (  # noqa: E402
    SD15_SCHEDULER,
    AutoencoderKL,
    CLIPTextConfig,
    CLIPTextModel,
    PNDMScheduler,
    StableDiffusionPipeline,
    UNet2DConditionModel,
    _clip_tokenizer,
    _quiet_saving,
    build_atomically,
)
from engine.training.common import (  # noqa: E402
    deterministic,
    scene_pixels,
    step,
    tokenized,
    warmup_cosine,
)


@dataclass(frozen=True)
class DiffusionTraining:
    scenes: int = 20_000
    vae_steps: int = 2_000
    vae_batch_size: int = 16
    vae_learning_rate: float = 1e-3
    vae_kl_weight: float = 1e-6  # a nudge towards a smooth latent space, not a real prior
    # Pixels of the things count this many times more than the plain background, and an L1 term
    # joins MSE: with plain MSE a small star is a few % of the error and decodes as a soft blob
    # whose shape the CLIP cannot read (0.19 against 0.34 with these two).
    vae_foreground_weight: float = 10.0
    vae_l1_weight: float = 1.0
    unet_steps: int = 12_000
    unet_batch_size: int = 32
    unet_learning_rate: float = 1e-3
    warmup: int = 100
    empty_caption_rate: float = 0.1  # classifier-free guidance needs the unconditional case
    finetune_steps: int = 400
    seed: int = 0


def build_scenes_sd(
    base: Path, finetune: Path, plan: DiffusionTraining = DiffusionTraining()
) -> tuple[Path, Path]:
    """Train (once) the scenes model and its outline fine-tune; return both folders."""
    pixels = None

    def scenes() -> torch.Tensor:
        nonlocal pixels
        if pixels is None:
            pixels = torch.from_numpy(scene_pixels("train", plan.scenes))
        return pixels

    build_atomically(Path(base), "model_index.json", lambda tmp: _train_base(tmp, scenes(), plan))
    build_atomically(
        Path(finetune), "model_index.json", lambda tmp: _train_finetune(tmp, Path(base), plan)
    )
    return Path(base), Path(finetune)


def _vae() -> AutoencoderKL:
    return AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 3,
        up_block_types=("UpDecoderBlock2D",) * 3,
        block_out_channels=(16, 32, 32),
        layers_per_block=1,
        norm_num_groups=8,
        latent_channels=4,
        sample_size=64,
    )


def _unet() -> UNet2DConditionModel:
    return UNet2DConditionModel(
        sample_size=16,  # 64 pixels / the VAE's factor 4
        in_channels=4,
        out_channels=4,
        layers_per_block=1,
        # Attention (to itself and the prompt) at 8×8 only: at 16×16 it cost a third of the step.
        block_out_channels=(32, 64),
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        attention_head_dim=8,
        norm_num_groups=8,
        cross_attention_dim=64,
    )


def _text_encoder() -> CLIPTextModel:
    return CLIPTextModel(
        CLIPTextConfig(
            vocab_size=49408,
            hidden_size=64,
            intermediate_size=128,
            num_hidden_layers=2,
            num_attention_heads=4,
            max_position_embeddings=77,
            projection_dim=64,
            bos_token_id=49406,
            eos_token_id=49407,
            pad_token_id=49407,
        )
    )


def _as_model_input(pixels: torch.Tensor) -> torch.Tensor:
    """uint8 (n, h, w, 3) → float (n, 3, h, w) in [-1, 1], as the SD pipeline's VAE expects."""
    return pixels.permute(0, 3, 1, 2).float().div(127.5).sub(1.0)


def _captions(plan: DiffusionTraining) -> list[list[str]]:
    """Every caption variant of each training scene, English and Chinese."""
    scenes = [scene_at("train", index) for index in range(plan.scenes)]
    return [[c for language in LANGUAGES for c in scene.captions(language)] for scene in scenes]


def _train_base(target: Path, pixels: torch.Tensor, plan: DiffusionTraining) -> None:
    tokenizer = _clip_tokenizer()
    with deterministic(plan.seed):
        vae = _train_vae(pixels, plan)
    with deterministic(plan.seed + 1):
        latents = _latents(vae, pixels)
        tokens, empty = _tokens(tokenizer, _captions(plan))
        text_encoder, unet = _text_encoder(), _unet()
        _only_used_tokens(text_encoder, tokens, empty)
        _train_denoiser(unet, text_encoder, latents, tokens, empty, plan.unet_steps,
                        plan.unet_learning_rate, plan, desc="training UNet")  # fmt: skip
    _save(target, vae, text_encoder, unet, tokenizer)


def _train_finetune(target: Path, base: Path, plan: DiffusionTraining) -> None:
    vae, text_encoder, unet = _load_parts(base)
    tokenizer = _clip_tokenizer()
    outlines = torch.from_numpy(scene_pixels("train", plan.scenes, outline=True))
    with deterministic(plan.seed + 2):
        latents = _latents(vae, outlines)
        tokens, empty = _tokens(tokenizer, _captions(plan))
        text_encoder.requires_grad_(False)  # the fine-tune changes only the UNet
        _train_denoiser(unet, text_encoder, latents, tokens, empty,
                        plan.finetune_steps, plan.unet_learning_rate / 2, plan,
                        desc="fine-tuning UNet (outlines)")  # fmt: skip
    _save(target, vae, text_encoder, unet, tokenizer)


def _load_parts(base: Path) -> tuple[AutoencoderKL, CLIPTextModel, UNet2DConditionModel]:
    """The base model's parts, built as new and given its weights: a part loaded with
    from_pretrained would save the folder it came from in its config (diffusers'
    `_name_or_path`), and the fine-tune's bytes would depend on where the base was trained."""
    pipe = StableDiffusionPipeline.from_pretrained(base)
    vae, text_encoder, unet = _vae(), _text_encoder(), _unet()
    vae.load_state_dict(pipe.vae.state_dict())
    vae.register_to_config(scaling_factor=pipe.vae.config["scaling_factor"])
    text_encoder.load_state_dict(pipe.text_encoder.state_dict())
    unet.load_state_dict(pipe.unet.state_dict())
    for part in (vae, text_encoder, unet):
        part.eval()
    return vae, text_encoder, unet


def _train_vae(pixels: torch.Tensor, plan: DiffusionTraining) -> AutoencoderKL:
    vae = _vae()
    optimiser = torch.optim.AdamW(vae.parameters(), lr=plan.vae_learning_rate, weight_decay=0.0)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimiser, lambda step: warmup_cosine(step, steps=plan.vae_steps, warmup=plan.warmup)
    )
    vae.train()
    bar = tqdm(range(plan.vae_steps), desc="training VAE", unit="step")
    for _ in bar:
        images = _as_model_input(pixels[torch.randint(len(pixels), (plan.vae_batch_size,))])
        posterior = vae.encode(images).latent_dist
        reconstruction = vae.decode(posterior.sample()).sample
        loss = _reconstruction_loss(reconstruction, images, plan)
        loss = loss + plan.vae_kl_weight * posterior.kl().mean()
        step(loss, optimiser, schedule)
        bar.set_postfix(loss=f"{loss.item():.4f}", refresh=False)
    vae.eval()
    # SD's 0.18215: latents scaled to unit spread, which the noise schedule assumes.
    with torch.no_grad():
        sample = vae.encode(_as_model_input(pixels[:2048])).latent_dist.mean
    vae.register_to_config(scaling_factor=float(1.0 / sample.std()))
    return vae


def _reconstruction_loss(
    reconstruction: torch.Tensor, images: torch.Tensor, plan: DiffusionTraining
) -> torch.Tensor:
    """MSE + L1, each pixel weighted up where it differs from its scene's background.

    A scene is a plain background under things that cover less than half of it, so each
    channel's median is the background colour.
    """
    background = images.flatten(2).median(dim=2).values[:, :, None, None]
    foreground = (images - background).abs().amax(dim=1, keepdim=True) > 0.1
    weight = 1.0 + plan.vae_foreground_weight * foreground.float()
    error = reconstruction - images
    weighted = weight * (error.square() + plan.vae_l1_weight * error.abs())
    return weighted.mean() / weight.mean()


@dataclass(frozen=True)
class _Latents:
    mean: torch.Tensor
    std: torch.Tensor
    scale: float


def _latents(vae: AutoencoderKL, pixels: torch.Tensor) -> _Latents:
    """Each scene's latent distribution, once: the denoiser samples from it every step."""
    means, stds = [], []
    with torch.no_grad():
        for start in range(0, len(pixels), 256):
            posterior = vae.encode(_as_model_input(pixels[start : start + 256])).latent_dist
            means.append(posterior.mean)
            stds.append(posterior.std)
    return _Latents(torch.cat(means), torch.cat(stds), float(vae.config["scaling_factor"]))


def _tokens(tokenizer: object, captions: list[list[str]]) -> tuple[torch.Tensor, torch.Tensor]:
    """(scenes, variants, 77) token ids of every caption, and those of the empty prompt."""
    flat = [caption for variants in captions for caption in variants]

    def ids(texts: list[str]) -> torch.Tensor:
        return tokenizer(  # type: ignore[operator]
            texts, padding="max_length", max_length=77, truncation=True, return_tensors="pt"
        ).input_ids

    return tokenized(ids, flat).view(len(captions), -1, 77), ids([""])[0]


def _only_used_tokens(encoder: CLIPTextModel, tokens: torch.Tensor, empty: torch.Tensor) -> None:
    """As for the CLIP (engine.training.clip): rows no caption uses stay zero, so the saved
    text encoder compresses to almost nothing but what was learnt."""
    embedding = cast(torch.nn.Embedding, encoder.get_input_embeddings()).weight
    used = torch.zeros(embedding.shape[0], dtype=torch.bool)
    used[tokens.unique()] = True
    used[empty.unique()] = True
    with torch.no_grad():
        embedding[~used] = 0.0


def _train_denoiser(
    unet: UNet2DConditionModel,
    text_encoder: CLIPTextModel,
    latents: _Latents,
    tokens: torch.Tensor,
    empty: torch.Tensor,
    steps: int,
    learning_rate: float,
    plan: DiffusionTraining,
    *,
    desc: str,
) -> None:
    noise_schedule = DDPMScheduler.from_config(SD15_SCHEDULER)
    trained = [p for p in [*unet.parameters(), *text_encoder.parameters()] if p.requires_grad]
    optimiser = torch.optim.AdamW(trained, lr=learning_rate, weight_decay=0.0)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimiser, lambda step: warmup_cosine(step, steps=steps, warmup=plan.warmup)
    )
    unet.train()
    text_encoder.train()
    scenes, variants = tokens.shape[:2]
    bar = tqdm(range(steps), desc=desc, unit="step")
    for _ in bar:
        index = torch.randint(scenes, (plan.unet_batch_size,))
        variant = torch.randint(variants, (plan.unet_batch_size,))
        batch_tokens = tokens[index, variant]
        drop = torch.rand(plan.unet_batch_size) < plan.empty_caption_rate
        batch_tokens[drop] = empty
        clean = latents.mean[index] + latents.std[index] * torch.randn_like(latents.std[index])
        clean = clean * latents.scale
        noise = torch.randn_like(clean)
        timesteps = torch.randint(noise_schedule.config.num_train_timesteps, (len(index),))
        noisy = noise_schedule.add_noise(clean, noise, timesteps)
        context = text_encoder(batch_tokens)[0]
        predicted = unet(noisy, timesteps, encoder_hidden_states=context).sample
        loss = F.mse_loss(predicted, noise)
        step(loss, optimiser, schedule)
        bar.set_postfix(loss=f"{loss.item():.4f}", refresh=False)
    unet.eval()
    text_encoder.eval()


def _save(
    target: Path,
    vae: AutoencoderKL,
    text_encoder: CLIPTextModel,
    unet: UNet2DConditionModel,
    tokenizer: object,
) -> None:
    pipe = StableDiffusionPipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,  # type: ignore[arg-type]
        unet=unet,
        scheduler=PNDMScheduler.from_config(SD15_SCHEDULER),
        safety_checker=None,  # type: ignore[arg-type]
        feature_extractor=None,  # type: ignore[arg-type]
        requires_safety_checker=False,
    )
    with _quiet_saving():
        pipe.save_pretrained(target, safe_serialization=True)
