"""The demo's add-on resources, (re)built beside the scene models (make models).

- seedbank-scenes-outline-lora: the outline fine-tune as a LoRA (engine.training.lora_extract).
- seedbank-scenes-vae-v1: the scene model's first VAE, from git history. It was trained apart
  from today's UNet, so its latent space does not match: as an override it keeps the layout but
  paints the wrong colours (a yellow background comes out red). The demo of a VAE that does not
  belong to its model.
- seedbank-scenes-vae-ft: today's VAE with only its decoder fine-tuned on new scenes, as SD's
  vae-ft-mse was: the same latent space, so any render of the scene model decodes with it.

A VAE override is a weights file loaded into the base model's VAE (its config, scaling factor
included, stays the base's), as A1111 does.
"""

from __future__ import annotations

import hashlib
import subprocess
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm import tqdm

from engine.torch_compat import ensure_torchvision

ensure_torchvision()

from safetensors.torch import save_file  # noqa: E402

from engine.tiny_models import AutoencoderKL, build_atomically  # noqa: E402
from engine.training.common import deterministic, scene_pixels, warmup_cosine  # noqa: E402
from engine.training.embedding import build_embedding  # noqa: E402
from engine.training.lora_extract import build_outline_lora  # noqa: E402
from engine.training.shipped import (  # noqa: E402
    EMBEDDING_FOLDER,
    OUTLINE_FOLDER,
    OUTLINE_LORA_FOLDER,
    RESOURCE_FOLDERS,
    SD_FOLDER,
    VAE_FT_FOLDER,
    VAE_V1_FOLDER,
)

VAE_V1_FILE = "scenes-vae-v1.safetensors"
VAE_FT_FILE = "scenes-vae-ft.safetensors"
# The commit that shipped the first trained scene model, and what its VAE file must hash to.
VAE_V1_COMMIT = "3bba90a"
VAE_V1_PATH = f"models/{SD_FOLDER}/vae/diffusion_pytorch_model.safetensors"
VAE_V1_SHA256 = "a38bd1bb474da5adff563679fd53e80d459087cf60e4591e46b8ec0827939a35"
REPOSITORY = Path(__file__).resolve().parents[2]
# Made from the trained models, so retraining (make models --force) makes them again.
TRAINED_RESOURCES = (OUTLINE_LORA_FOLDER, VAE_FT_FOLDER, EMBEDDING_FOLDER)


@dataclass(frozen=True)
class DecoderTuning:
    # Scenes the base VAE never saw (its training drew scenes 0 … 19,999 of the train split).
    first_scene: int = 20_000
    scenes: int = 4096
    steps: int = 400
    batch_size: int = 16
    learning_rate: float = 2e-4
    warmup: int = 20
    # As the base VAE's training: the drawn things' pixels count more than the plain
    # background, and L1 joins MSE (engine.training.diffusion explains why).
    foreground_weight: float = 10.0
    l1_weight: float = 1.0
    seed: int = 3


def build_resources(models: Path) -> dict[str, Path]:
    """Build (once each) the resource folders under `models`, from the scene model folders
    there; return {folder name: its weights file}."""
    models = Path(models)
    build_outline_lora(models / OUTLINE_LORA_FOLDER, models / SD_FOLDER, models / OUTLINE_FOLDER)
    build_vae_v1(models / VAE_V1_FOLDER)
    build_vae_ft(models / VAE_FT_FOLDER, models / SD_FOLDER)
    build_embedding(models, folder=EMBEDDING_FOLDER)
    return {name: resource_file(models / name) for name in RESOURCE_FOLDERS}


def resource_file(folder: Path) -> Path:
    """The one .safetensors file of a resource folder."""
    files = sorted(Path(folder).glob("*.safetensors"))
    if len(files) != 1:
        raise FileNotFoundError(f"{folder} should hold one .safetensors file, not {len(files)}")
    return files[0]


def build_vae_v1(folder: Path) -> Path:
    """Take (once) the first scene VAE's weights out of git history."""

    def write(target: Path) -> None:
        try:
            data = subprocess.run(
                ["git", "-C", str(REPOSITORY), "show", f"{VAE_V1_COMMIT}:{VAE_V1_PATH}"],
                capture_output=True, check=True,
            ).stdout  # fmt: skip
        except (OSError, subprocess.CalledProcessError) as error:
            raise RuntimeError(
                f"{folder.name} comes from git history ({VAE_V1_COMMIT}), which this checkout "
                f"cannot show ({error}); restore the folder from the repository instead."
            ) from None
        if hashlib.sha256(data).hexdigest() != VAE_V1_SHA256:
            raise RuntimeError(f"{VAE_V1_COMMIT}:{VAE_V1_PATH} is not the expected VAE file")
        (target / VAE_V1_FILE).write_bytes(data)

    return build_atomically(Path(folder), VAE_V1_FILE, write)


def build_vae_ft(folder: Path, base: Path, plan: DecoderTuning = DecoderTuning()) -> Path:
    """Fine-tune (once) the base model's VAE decoder; write only the VAE's weights."""

    def write(target: Path) -> None:
        vae = AutoencoderKL.from_pretrained(Path(base) / "vae")
        # One thread: reductions split by thread, and the same bytes need the same split.
        with deterministic(plan.seed, threads=1):
            _tune_decoder(vae, plan)
        state = {key: tensor.contiguous() for key, tensor in sorted(vae.state_dict().items())}
        save_file(state, str(target / VAE_FT_FILE))

    return build_atomically(Path(folder), VAE_FT_FILE, write)


def _tune_decoder(vae: AutoencoderKL, plan: DecoderTuning) -> None:
    """Train post_quant_conv and the decoder to rebuild scenes from their latents' means; the
    encoder stays as it is, so the latent space the UNet learnt is kept."""
    pixels = torch.from_numpy(
        scene_pixels("train", plan.scenes, start=plan.first_scene, desc="drawing VAE scenes")
    )
    images = pixels.permute(0, 3, 1, 2).float().div(127.5).sub(1.0)
    vae.eval()
    with torch.no_grad():
        latents = torch.cat([vae.encode(images[i : i + 256]).latent_dist.mean
                             for i in range(0, len(images), 256)])  # fmt: skip
    vae.requires_grad_(False)
    tuned = [*vae.decoder.parameters()]
    if vae.post_quant_conv is not None:  # with the decoder: it reads the latents first
        tuned += vae.post_quant_conv.parameters()
    for parameter in tuned:
        parameter.requires_grad_(True)
    optimiser = torch.optim.AdamW(tuned, lr=plan.learning_rate, weight_decay=0.0)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimiser, lambda step: warmup_cosine(step, steps=plan.steps, warmup=plan.warmup)
    )
    vae.decoder.train()
    bar = tqdm(range(plan.steps), desc="fine-tuning VAE decoder", unit="step")
    for _ in bar:
        index = torch.randint(len(images), (plan.batch_size,))
        loss = _loss(vae.decode(latents[index]).sample, images[index], plan)
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        schedule.step()
        bar.set_postfix(loss=f"{loss.item():.4f}", refresh=False)
    vae.eval()
    vae.requires_grad_(False)


def _loss(decoded: torch.Tensor, images: torch.Tensor, plan: DecoderTuning) -> torch.Tensor:
    # A scene is a plain background under things covering less than half of it, so each
    # channel's median is the background colour and what differs from it is foreground.
    background = images.flatten(2).median(dim=2).values[:, :, None, None]
    weight = (
        1.0
        + plan.foreground_weight
        * ((images - background).abs().amax(dim=1, keepdim=True) > 0.1).float()
    )
    error = decoded - images
    return (weight * (error.square() + plan.l1_weight * error.abs())).mean() / weight.mean()
