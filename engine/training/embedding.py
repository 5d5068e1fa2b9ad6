"""A textual-inversion embedding: the shipped scene model learns a word for a shape it never saw.

The scene SD model (engine.training.diffusion) knows eight shapes. Textual inversion teaches it
a ninth without changing a weight of it: one new token, `<sbk-diamond>`, whose input embedding
(64 numbers, started from "square"'s) is all that trains, on diamonds drawn as engine.scenes
draws its shapes (same colours, backgrounds, sizes, places and jitter) under captions in English
and Chinese, with the noise-prediction loss the model itself learnt with.

Why a diamond: a textual inversion can only steer what the frozen UNet can already draw. A short
trial of each thing in UNSEEN (400 steps, 32 held-out prompts, judged by `evaluate`) found
diamonds in 25 % of renders, against at most 9 % for any known shape's word; hearts 6 % (as
often as known words give them), rings and moons 0 %, the model drawing them as round blobs.

Saved as A1111 saves an embedding, a safetensors file with one tensor `emb_params` of shape
[1, hidden] (A1111 names the token after the file: `sbk-diamond`). In diffusers:

    pipe = StableDiffusionPipeline.from_pretrained("models/seedbank-scenes-sd", safety_checker=None)
    pipe.load_textual_inversion(
        "models/seedbank-scenes-diamond-embedding/sbk-diamond.safetensors", token="<sbk-diamond>"
    )

    python -m engine.training.embedding [--thing diamond] [--force] [--check] [--evaluate]

trains it (about 5 CPU-minutes on one thread), compares a second training's digest (--check),
and judges renders by the drawn shape each matches best (--evaluate).
"""

from __future__ import annotations

import argparse
import hashlib
import math
import random
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import cast

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw
from tqdm import tqdm

from engine.torch_compat import ensure_torchvision

ensure_torchvision()

from diffusers.schedulers.scheduling_ddpm import DDPMScheduler  # noqa: E402
from safetensors.torch import load_file, save_file  # noqa: E402

from engine import scenes  # noqa: E402
from engine.scenes import COLOURS, LANGUAGES, SIZE, SIZES, Scene, scene_at  # noqa: E402
from engine.tiny_models import (  # noqa: E402
    SD15_SCHEDULER,
    CLIPTextModel,
    StableDiffusionPipeline,
    build_atomically,
)
from engine.training.common import deterministic, step, tokenized, warmup_cosine  # noqa: E402
from engine.training.diffusion import _as_model_input, _Latents, _latents  # noqa: E402
from engine.training.evaluate import render_captions  # noqa: E402
from engine.training.shipped import GUIDANCE, SD_FOLDER  # noqa: E402

A1111_KEY = "emb_params"
# Bit-identical only at one thread count (engine.training.common.THREADS says why); the shared
# machines this trains on give each job one core, and the digest was made with one.
THREADS = 1


@dataclass(frozen=True)
class EmbeddingTraining:
    scenes: int = 2_000  # layouts of the training split, each drawn with the new thing
    # About 5 CPU-minutes (314 s measured). The held-out loss was flat after ~1,000 steps of 16
    # at 3e-2 (heart); twice the samples per step here, for a steadier last stretch.
    steps: int = 1_200
    batch_size: int = 32
    learning_rate: float = 2e-2
    warmup: int = 50
    seed: int = 0


# --- the new shape, drawn as engine.scenes draws its own ----------------------------------------


def _heart(draw: ImageDraw.ImageDraw, x: float, y: float, r: float, c: int, _: int) -> None:
    """The classic heart curve (x = 16 sin³t, y = 13 cos t − 5 cos 2t − 2 cos 3t − cos 4t), as
    wide as the circle of radius r and centred on its height."""
    corners = []
    for k in range(96):
        t = 2 * math.pi * k / 96
        across = 16 * math.sin(t) ** 3
        up = 13 * math.cos(t) - 5 * math.cos(2 * t) - 2 * math.cos(3 * t) - math.cos(4 * t)
        corners.append((x + across * r / 16, y - (up + 2.5) * r / 16))  # spans −17 … 12: centred
    draw.polygon(corners, fill=c)


def _ring(draw: ImageDraw.ImageDraw, x: float, y: float, r: float, c: int, h: int) -> None:
    draw.ellipse((x - r, y - r, x + r, y + r), fill=c)
    hole = r * 0.55
    draw.ellipse((x - hole, y - hole, x + hole, y + hole), fill=h)


def _moon(draw: ImageDraw.ImageDraw, x: float, y: float, r: float, c: int, h: int) -> None:
    """A crescent: a disc less a smaller one pushed towards its upper right."""
    draw.ellipse((x - r, y - r, x + r, y + r), fill=c)
    bx, by, bite = x + r * 0.45, y - r * 0.2, r * 0.85
    draw.ellipse((bx - bite, by - bite, bx + bite, by + bite), fill=h)


def _diamond(draw: ImageDraw.ImageDraw, x: float, y: float, r: float, c: int, _: int) -> None:
    draw.polygon([(x, y - r), (x + r * 0.7, y), (x, y + r), (x - r * 0.7, y)], fill=c)


DrawShape = Callable[[ImageDraw.ImageDraw, float, float, float, int, int], None]


@dataclass(frozen=True)
class Thing:
    """A shape the scene model never saw, and the word it is to learn for it."""

    name: str  # the English word; the model never met it either
    draw: DrawShape
    # Where the learnt row starts: the known word for the nearest thing the model can draw.
    initialiser: str

    @property
    def token(self) -> str:
        return f"<sbk-{self.name}>"

    @property
    def file_name(self) -> str:
        return f"sbk-{self.name}.safetensors"  # A1111 prompts it by the file's stem

    @property
    def folder(self) -> str:
        return f"seedbank-scenes-{self.name}-embedding"


# Drawn as engine.scenes draws its shapes: centred on (x, y), fitting the circle of radius r.
UNSEEN = {
    thing.name: thing
    for thing in (
        Thing("heart", _heart, "circle"),
        Thing("ring", _ring, "circle"),
        Thing("moon", _moon, "circle"),
        Thing("diamond", _diamond, "square"),
    )
}
SHIPPED = UNSEEN["diamond"]


def draw_scene(scene: Scene, shape: str) -> Image.Image:
    """`scene`'s layout with `shape` (known or unseen) as its things: Scene.render's canvas,
    placements and downscale, with any drawing function."""
    canvas = SIZE * scenes._SCALE
    mask = Image.new("L", (canvas, canvas), 0)
    draw = ImageDraw.Draw(mask)
    for cx, cy, radius in scene._placements(random.Random(scene.jitter)):
        _drawing(shape)(draw, cx * canvas, cy * canvas, radius * canvas, 255, 0)
    picture = Image.composite(
        Image.new("RGB", mask.size, COLOURS[scene.colour][0]),
        Image.new("RGB", mask.size, COLOURS[scene.background][0]),
        mask,
    )
    return picture.resize((SIZE, SIZE), Image.Resampling.LANCZOS)


def _drawing(shape: str) -> DrawShape:
    return UNSEEN[shape].draw if shape in UNSEEN else scenes._DRAW[shape]


def captions(scene: Scene, word: str, languages: Sequence[str] = LANGUAGES) -> list[str]:
    """Every caption variant of `scene` with its things called `word`, English then Chinese.

    A circle scene's captions with the circle's words swapped: the token takes the noun's place
    in both languages, and stands for the plural too, as a learnt name usually does.
    """
    circle = replace(scene, shape="circle")
    plural, chinese, _ = scenes.SHAPES["circle"]
    return [
        caption.replace(plural, word).replace("circle", word).replace(chinese, word)
        for language in languages
        for caption in circle.captions(language)
    ]


# --- training -----------------------------------------------------------------------------------


class _PlaceholderEmbedding(torch.nn.Module):
    """The text encoder's token table, frozen, plus one trainable row for the new token: only
    the 64 numbers that get saved can change, whatever the optimiser does."""

    def __init__(self, table: torch.nn.Embedding, token_id: int, initial: torch.Tensor) -> None:
        super().__init__()
        self.table = table
        self.token_id = token_id
        self.vector = torch.nn.Parameter(initial.detach().clone().reshape(1, -1))

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        known = self.table(ids.clamp(max=self.table.num_embeddings - 1))
        return torch.where((ids == self.token_id)[..., None], self.vector, known)


def build_embedding(
    models: Path,
    thing: Thing = SHIPPED,
    plan: EmbeddingTraining = EmbeddingTraining(),
    *,
    folder: str | None = None,
) -> Path:
    """Train (once) `thing`'s embedding for models/seedbank-scenes-sd; return its file."""
    base = models / SD_FOLDER
    build = build_atomically(
        models / (folder or thing.folder),
        thing.file_name,
        lambda tmp: _train(tmp, base, thing, plan),
    )
    return build / thing.file_name


def _train(target: Path, base: Path, thing: Thing, plan: EmbeddingTraining) -> None:
    pipe = StableDiffusionPipeline.from_pretrained(base, safety_checker=None)
    tokenizer, text_encoder = pipe.tokenizer, cast(CLIPTextModel, pipe.text_encoder)
    layouts = [scene_at("train", index) for index in range(plan.scenes)]
    pixels = np.stack([np.asarray(draw_scene(scene, thing.name)) for scene in layouts])
    tokenizer.add_tokens([thing.token])  # this process's copy only: the file is the vector
    token_id = tokenizer.convert_tokens_to_ids(thing.token)
    (initialiser,) = tokenizer(thing.initialiser, add_special_tokens=False).input_ids

    def ids(texts: list[str]) -> torch.Tensor:
        return tokenizer(  # type: ignore[no-any-return]
            texts, padding="max_length", max_length=77, truncation=True, return_tensors="pt"
        ).input_ids

    variants = [captions(scene, thing.token) for scene in layouts]
    tokens = tokenized(ids, [c for v in variants for c in v]).view(len(layouts), -1, 77)
    for part in (pipe.vae, text_encoder, pipe.unet):
        part.requires_grad_(False)
        part.eval()
    table = cast(torch.nn.Embedding, text_encoder.get_input_embeddings())
    placeholder = _PlaceholderEmbedding(table, token_id, table.weight[initialiser])
    text_encoder.set_input_embeddings(placeholder)
    with deterministic(plan.seed):
        torch.set_num_threads(THREADS)  # deterministic() puts the caller's count back after
        latents = _latents(pipe.vae, torch.from_numpy(pixels))
        _fit(placeholder.vector, pipe.unet, text_encoder, latents, tokens, plan,
             desc=f"training {thing.token}")  # fmt: skip
    save_a1111(placeholder.vector.detach(), target / thing.file_name)


def _fit(
    vector: torch.nn.Parameter,
    unet: torch.nn.Module,
    text_encoder: CLIPTextModel,
    latents: _Latents,
    tokens: torch.Tensor,
    plan: EmbeddingTraining,
    *,
    desc: str,
) -> None:
    """Noise-prediction MSE on SD 1.5's schedule, as the model itself was trained, back
    through the frozen text encoder and UNet into the one vector."""
    noise_schedule = DDPMScheduler.from_config(SD15_SCHEDULER)
    optimiser = torch.optim.AdamW([vector], lr=plan.learning_rate, weight_decay=0.0)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimiser, lambda n: warmup_cosine(n, steps=plan.steps, warmup=plan.warmup)
    )
    layouts, variants = tokens.shape[:2]
    bar = tqdm(range(plan.steps), desc=desc, unit="step")
    for _ in bar:
        index = torch.randint(layouts, (plan.batch_size,))
        batch_tokens = tokens[index, torch.randint(variants, (plan.batch_size,))]
        std = latents.std[index]
        clean = (latents.mean[index] + std * torch.randn_like(std)) * latents.scale
        noise = torch.randn_like(clean)
        timesteps = torch.randint(noise_schedule.config.num_train_timesteps, (plan.batch_size,))
        noisy = noise_schedule.add_noise(clean, noise, timesteps)
        context = text_encoder(batch_tokens)[0]
        loss = F.mse_loss(unet(noisy, timesteps, encoder_hidden_states=context).sample, noise)
        step(loss, optimiser, schedule)
        bar.set_postfix(loss=f"{loss.item():.4f}", norm=f"{vector.norm().item():.2f}",
                        refresh=False)  # fmt: skip


def save_a1111(vector: torch.Tensor, path: Path) -> None:
    """A1111's safetensors layout: `emb_params`, [vectors, hidden], float32."""
    save_file({A1111_KEY: vector.reshape(1, -1).to(torch.float32).contiguous()}, str(path))


def load_vector(path: Path) -> torch.Tensor:
    return load_file(str(path))[A1111_KEY]


def file_digest(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def scene_pipeline(
    models: Path, embedding: Path | None = None, thing: Thing = SHIPPED
) -> StableDiffusionPipeline:
    """The shipped scene model, with the embedding loaded as anyone would load it."""
    pipe = StableDiffusionPipeline.from_pretrained(models / SD_FOLDER, safety_checker=None)
    if embedding is not None:
        pipe.load_textual_inversion(str(embedding), token=thing.token)
    pipe.set_progress_bar_config(disable=True)
    return pipe


# --- judging renders: which drawn shape does the picture's thing match best? -------------------

_TEMPLATE_SCALE = 4  # drawn at 4× like the scenes, so small templates keep their outline


def foreground(picture: Image.Image) -> np.ndarray:
    """Pixels far from the background colour (each channel's median: things cover less than
    half a scene): at least half as far as the farthest, so soft edges count as a drawn edge."""
    pixels = np.asarray(picture.convert("RGB"), dtype=np.float32)
    background = np.median(pixels.reshape(-1, 3), axis=0)
    distance = np.linalg.norm(pixels - background, axis=-1)
    if distance.max() < 60:  # nothing stands out: no thing was drawn
        return np.zeros(distance.shape, dtype=bool)
    return cast(np.ndarray, distance > 0.5 * distance.max())


def _template(shape: str, x: float, y: float, r: float) -> np.ndarray:
    canvas, s = SIZE * _TEMPLATE_SCALE, _TEMPLATE_SCALE
    mask = Image.new("L", (canvas, canvas), 0)
    _drawing(shape)(ImageDraw.Draw(mask), x * s, y * s, r * s, 255, 0)
    return np.asarray(mask.resize((SIZE, SIZE), Image.Resampling.BOX)) >= 128


def _unit_area(shape: str) -> float:
    return float(_template(shape, SIZE / 2, SIZE / 2, SIZE / 4).sum()) / (SIZE / 4) ** 2


def shape_ious(mask: np.ndarray, shapes: Sequence[str]) -> dict[str, float]:
    """IoU of the mask with each shape drawn as large and where it is (same area, same
    centroid): wherever and however large the model put its thing, only outlines compare."""
    area = float(mask.sum())
    if area < 4:
        return dict.fromkeys(shapes, 0.0)
    rows, cols = np.nonzero(mask)
    cy, cx = rows.mean() + 0.5, cols.mean() + 0.5
    ious = {}
    for shape in shapes:
        r = math.sqrt(area / _unit_area(shape))
        first = _template(shape, cx, cy, r)
        t_rows, t_cols = np.nonzero(first)
        # Moved by the template's own centroid offset: a heart's weight sits above its middle.
        dy, dx = cy - (t_rows.mean() + 0.5), cx - (t_cols.mean() + 0.5)
        template = _template(shape, cx + dx, cy + dy, r)
        union = float((template | mask).sum())
        ious[shape] = float((template & mask).sum()) / union if union else 0.0
    return ious


@dataclass(frozen=True)
class ShapeJudgement:
    thing_rate: float  # fraction whose best match of the nine shapes is the unseen thing
    circle_rate: float  # … is the circle
    thing_over_circle: float  # fraction matching the thing better than the circle
    mean_thing_iou: float
    mean_circle_iou: float
    empty_rate: float  # fraction with no thing found at all


def judge(pictures: Sequence[Image.Image], thing: Thing = SHIPPED) -> ShapeJudgement:
    shapes = [*scenes.SHAPES, thing.name]
    scores = [shape_ious(foreground(p), shapes) for p in pictures]
    best = [max(s, key=s.__getitem__) if max(s.values()) > 0 else "" for s in scores]
    return ShapeJudgement(
        thing_rate=float(np.mean([b == thing.name for b in best])),
        circle_rate=float(np.mean([b == "circle" for b in best])),
        thing_over_circle=float(np.mean([s[thing.name] > s["circle"] for s in scores])),
        mean_thing_iou=float(np.mean([s[thing.name] for s in scores])),
        mean_circle_iou=float(np.mean([s["circle"] for s in scores])),
        empty_rate=float(np.mean([b == "" for b in best])),
    )


def evaluation_layouts(count: int) -> list[Scene]:
    """Held-out layouts with one thing each (a shape is clearest alone), small and large."""
    layouts = [replace(scene_at("heldout", index), count=1) for index in range(count)]
    return [replace(s, size=list(SIZES)[n % 2]) for n, s in enumerate(layouts)]


def evaluation_prompts(layouts: Sequence[Scene], word: str) -> list[str]:
    """Each layout's canonical caption, English and Chinese in turn, the thing called `word`."""
    return [captions(s, word, [LANGUAGES[n % 2]])[0] for n, s in enumerate(layouts)]


def evaluate(
    models: Path,
    embedding: Path,
    thing: Thing = SHIPPED,
    count: int = 64,
    grid: Path | None = None,
) -> dict[str, ShapeJudgement]:
    """Judge held-out prompts rendered with the token (embedding loaded), with "circle" instead,
    with the token but no embedding (plain text the model never learnt) and with the English
    word; beside them the drawn truth, straight and through the model's VAE (the ceiling)."""
    layouts = evaluation_layouts(count)
    rows = {"drawn": [draw_scene(s, thing.name) for s in layouts]}
    plain = scene_pipeline(models)
    with torch.no_grad():
        x = _as_model_input(torch.from_numpy(np.stack([np.asarray(p) for p in rows["drawn"]])))
        rows["through the VAE"] = _pictures(
            plain.vae.decode(plain.vae.encode(x).latent_dist.mean).sample
        )
    taught = scene_pipeline(models, embedding, thing)
    renders = {
        f"{thing.token}, embedding loaded": (taught, thing.token),
        '"circle"': (taught, "circle"),
        f"{thing.token}, no embedding": (plain, thing.token),
        f'"{thing.name}" (a word it never learnt)': (plain, thing.name),
    }
    for name, (pipe, word) in renders.items():
        prompts = evaluation_prompts(layouts, word)
        rows[name] = render_captions(pipe, prompts, guidance=GUIDANCE, steps=20)
    judged = {name: judge(pictures, thing) for name, pictures in rows.items()}
    judged["drawn circles"] = judge([draw_scene(s, "circle") for s in layouts], thing)
    columns = (thing.name[:6], "circle", ">circ", f"IoU{thing.name[:3]}", "IoUcir", "empty")
    print(f"{'best match / IoU':<36} " + " ".join(f"{c:>6}" for c in columns))
    for name, j in judged.items():
        figures = (j.thing_rate, j.circle_rate, j.thing_over_circle, j.mean_thing_iou,
                   j.mean_circle_iou, j.empty_rate)  # fmt: skip
        print(f"{name:<36} " + " ".join(f"{f:6.2f}" for f in figures))
    for n, prompt in enumerate(evaluation_prompts(layouts[:4], thing.token)):
        print(f"  prompt {n} (seed {n}): {prompt}")
    if grid is not None:
        _grid(rows, 16).save(grid)
        print(f"grid in {grid}: rows {'; '.join(rows)}; columns prompts 0…15")
    return judged


def _pictures(decoded: torch.Tensor) -> list[Image.Image]:
    array = ((decoded.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1)
    return [Image.fromarray(a) for a in array.numpy()]


def _grid(rows: dict[str, list[Image.Image]], columns: int, zoom: int = 2) -> Image.Image:
    grid = Image.new("RGB", (columns * SIZE, len(rows) * SIZE), "white")
    for r, pictures in enumerate(rows.values()):
        for c, picture in enumerate(pictures[:columns]):
            grid.paste(picture, (c * SIZE, r * SIZE))
    return grid.resize((grid.width * zoom, grid.height * zoom), Image.Resampling.NEAREST)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--models", type=Path, default=Path("models"))
    parser.add_argument("--thing", choices=list(UNSEEN), default=SHIPPED.name)
    parser.add_argument("--force", action="store_true", help="train again over the file there")
    parser.add_argument("--check", action="store_true", help="train again elsewhere, compare")
    parser.add_argument("--evaluate", action="store_true", help="judge renders with it")
    parser.add_argument("--prompts", type=int, default=64, help="held-out prompts judged")
    default_grid = Path(tempfile.gettempdir()) / "embedding_grid.png"
    parser.add_argument("--grid", type=Path, default=default_grid)
    args = parser.parse_args()
    torch.set_num_threads(THREADS)  # loading and rendering too: the machine's cores are shared
    thing = UNSEEN[args.thing]
    target = args.models / thing.folder / thing.file_name
    if args.force and target.is_file():
        target.unlink()
        target.parent.rmdir()  # build_atomically renames only onto an absent or empty folder
    started, cpu = time.perf_counter(), time.process_time()
    path = build_embedding(args.models, thing)
    took = f"{time.perf_counter() - started:.0f} s, {time.process_time() - cpu:.0f} CPU-s"
    print(f"{file_digest(path)}  {path}  ({took})")
    if args.check:
        with tempfile.TemporaryDirectory(prefix="seedbank-embedding-check-") as scratch:
            elsewhere = Path(scratch)
            (elsewhere / SD_FOLDER).symlink_to((args.models / SD_FOLDER).resolve())
            again = file_digest(build_embedding(elsewhere, thing))
        print(f"{'same' if again == file_digest(path) else 'DIFFERS'}  {again}")
        if again != file_digest(path):
            return 1
    if args.evaluate:
        evaluate(args.models, path, thing, count=args.prompts, grid=args.grid)
    return 0


if __name__ == "__main__":
    sys.exit(main())
