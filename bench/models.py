"""How well the scene models follow their prompts: trained against random weights, same run.

    .venv/bin/python bench/models.py [--models models] [--scenes 1000] [--renders 128]
                                     [--steps 20] [--guidance 2 7.5 …]

CLIP (engine.training.evaluate.clip_quality) on held-out scenes: zero-shot colour and shape
accuracy and text→image recall@10 for English and Chinese captions; the cosines a relevance
bound is chosen from. Generation: `--renders` held-out captions (English and Chinese in turn)
rendered at 64×64 with PNDM (20 steps unless `--steps`), one seed each, at each `--guidance`
scale (the shipped models' own, engine.training.shipped.GUIDANCE, and SD's usual 7.5); judged
by the trained CLIP's zero-shot classifiers and, for colour, by pixels; so are the same scenes
passed through the SD model's VAE alone (encoded and decoded), which bounds what its UNet can
draw. The baseline, measured in the same run, is the random-weight pair that tests use
(engine.tiny_models); chance is 1 in 8 for colour and for shape.

Words people type (issue #27; `--words-only` runs just the CLIP and these): each of the 8 thing
and 8 colour words, in English and Chinese, searched among held-out scenes (precision@8: the
share of its top 8 that show it; a colour's pull: how often its word's top 8 shows it over how
often the other colour word that shows it most does), and among `--word-renders` pictures the
SD model rendered from held-out captions, half English and half Chinese, each language's query
against each language's renders (cross-language: "猫" among English-prompted cats). Then the
nonsense bound: the best cosine random-letter strings and words no caption has reach, beside
what real one- and two-word queries reach.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from engine import embedder  # noqa: E402
from engine.scenes import COLOURS, SHAPES, scene_at  # noqa: E402
from engine.tiny_models import StableDiffusionPipeline, build_tiny_clip, build_tiny_sd  # noqa: E402
from engine.training.evaluate import (  # noqa: E402
    OUT_OF_VOCABULARY,
    WORDS_TOP,
    clip_quality,
    generation_quality,
    nonsense_cosines,
    render_captions,
    thing_word,
    word_search,
)
from engine.training.shipped import CLIP_FOLDER, GUIDANCE, OUTLINE_FOLDER, SD_FOLDER  # noqa: E402


def reconstructed(sd: Path, count: int) -> tuple[list, list]:
    """Held-out scenes through the model's VAE alone (encode, decode): the sharpest pictures
    its UNet could ever make, so the CLIP's judgement of them bounds the generation's."""
    import numpy as np
    import torch
    from PIL import Image

    pipe = StableDiffusionPipeline.from_pretrained(sd)
    scenes = [scene_at("heldout", index) for index in range(count)]
    pixels = torch.from_numpy(np.stack([np.asarray(scene.render()) for scene in scenes]))
    with torch.no_grad():
        images = pixels.permute(0, 3, 1, 2).float().div(127.5).sub(1.0)
        decoded = pipe.vae.decode(pipe.vae.encode(images).latent_dist.mean).sample
    rgb = decoded.clamp(-1, 1).add(1).mul(127.5).round().byte().permute(0, 2, 3, 1).numpy()
    return [Image.fromarray(picture) for picture in rgb], scenes


def _clip_table(trained, baseline, scenes: int) -> None:
    print(f"{'':28}{'trained':>10}{'random':>10}{'ratio':>8}")
    for field in ("colour_accuracy", "shape_accuracy", "recall_at_10"):
        for language in ("en", "zh"):
            ours = getattr(trained, field)[language]
            theirs = getattr(baseline, field)[language]
            ratio = ours / max(theirs, 1e-9)
            print(f"{field + ' ' + language:28}{ours:10.3f}{theirs:10.3f}{ratio:7.1f}×")
    print(f"chance: colour and shape {1 / len(COLOURS):.3f}, recall@10 {10 / scenes:.3f}")
    print(
        f"cosine of a caption to its own picture: 5th percentile "
        f"{trained.matching_cosine_p05:.3f}; to others: 95th percentile "
        f"{trained.other_cosine_p95:.3f}"
    )


def _word_row(label: str, found) -> None:
    things = " ".join(f"{found.thing_precision[name]:5.2f}" for name in SHAPES)
    colours = " ".join(f"{found.colour_precision[name]:5.2f}" for name in COLOURS)
    print(f"{label:26}{things}  {found.mean_thing:5.3f} │ {colours}  {found.mean_colour:5.3f}"
          f"  {found.least_pull:5.2f}")  # fmt: skip


def words_bench(clip: Path, sd: Path, scenes: int, renders: int) -> None:
    import numpy as np

    print(f"\nwords people type: precision@{WORDS_TOP} of each thing and colour word")
    header = " ".join(f"{name[:5]:>5}" for name in SHAPES) + "   mean │ "
    header += " ".join(f"{name[:5]:>5}" for name in COLOURS) + "   mean  least pull"
    print(f"{'query → pictures':26}{header}")
    held_out = [scene_at("heldout", index) for index in range(scenes)]
    images = embedder.embed_images(str(clip), [scene.render() for scene in held_out])
    for language in ("en", "zh"):
        found = word_search(clip, images, held_out, language)
        _word_row(f"{language} → {scenes} drawn scenes", found)
    pipe = StableDiffusionPipeline.from_pretrained(sd)
    pipe.set_progress_bar_config(disable=True)
    half = renders // 2
    pools = {}
    for n, language in enumerate(("en", "zh")):
        chosen = [scene_at("heldout", scenes + n * half + index) for index in range(half)]
        prompts = [scene.caption(language) for scene in chosen]
        pictures = render_captions(pipe, prompts, guidance=GUIDANCE, steps=20)
        pools[language] = (chosen, embedder.embed_images(str(clip), pictures))
    for query in ("en", "zh"):
        for pool, (chosen, pictures) in pools.items():
            label = f"{query} → {half} {pool}-prompted"
            _word_row(label, word_search(clip, pictures, chosen, query))
    both = np.concatenate([pools["en"][1], pools["zh"][1]])
    labels = [(scene.shape, "en") for scene in pools["en"][0]]
    labels += [(scene.shape, "zh") for scene in pools["zh"][0]]
    for language in ("en", "zh"):
        word = thing_word("cat", language)
        top = np.argsort(-(embedder.embed_texts(str(clip), [word])[0] @ both.T))[:WORDS_TOP]
        cats = [labels[i][1] for i in top if labels[i][0] == "cat"]
        print(
            f'"{word}" among all {2 * half} renders: top {WORDS_TOP} has {cats.count("en")} '
            f"English-prompted and {cats.count('zh')} Chinese-prompted cats"
        )

    nonsense, real = nonsense_cosines(clip, images[:400])
    bound = json.loads((clip / "open_clip_config.json").read_text())["seedbank"]
    florbin = embedder.embed_texts(str(clip), ["qwxzv florbin gnark"])[0] @ images[:400].T
    words = len(OUT_OF_VOCABULARY)
    print(
        f"\nnonsense, best cosine among 400 held-out scenes: {len(nonsense) - words} random-letter "
        f"queries p50 {np.percentile(nonsense[:-words], 50):.3f} p99 "
        f"{np.percentile(nonsense[:-words], 99):.3f} max {nonsense[:-words].max():.3f}; "
        f"{words} words no caption has: max {nonsense[-words:].max():.3f}; "
        f'"qwxzv florbin gnark" {florbin.max():.3f}'
    )
    print(
        f"real one- and two-word queries ({len(real)}, both languages): min {real.min():.3f} "
        f"p5 {np.percentile(real, 5):.3f}; stored bounds: nonsense "
        f"{bound.get('nonsense_cosine')}, relevance {bound.get('relevance_cosine')}; "
        f"real queries under the nonsense bound: "
        f"{(real < bound.get('nonsense_cosine', -1)).sum()}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--models", type=Path, default=ROOT / "models")
    parser.add_argument("--scenes", type=int, default=1000)
    parser.add_argument("--renders", type=int, default=128)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--guidance", type=float, nargs="+", default=[GUIDANCE, 7.5])
    parser.add_argument("--word-renders", type=int, default=256)
    parser.add_argument("--words-only", action="store_true", help="the CLIP and words only")
    args = parser.parse_args()
    clip = args.models / CLIP_FOLDER
    with tempfile.TemporaryDirectory() as scratch:
        random_clip = build_tiny_clip(Path(scratch) / "clip")
        random_sd = build_tiny_sd(Path(scratch) / "sd")
        started = time.perf_counter()
        trained = clip_quality(clip, args.scenes)
        baseline = clip_quality(random_clip, args.scenes)
        print(f"CLIP on {args.scenes} held-out scenes ({time.perf_counter() - started:.0f} s)")
        _clip_table(trained, baseline, args.scenes)
        words_bench(clip, args.models / SD_FOLDER, args.scenes, args.word_renders)
        if args.words_only:
            return

        scenes = [scene_at("heldout", index) for index in range(args.renders)]
        prompts = [scene.caption("en" if n % 2 == 0 else "zh") for n, scene in enumerate(scenes)]
        print(
            f"\ngeneration: {args.renders} held-out captions (half Chinese), PNDM {args.steps} "
            "steps, judged by the CLIP"
        )
        header = ("CLIP colour", "CLIP shape", "pixel colour", "background", "s")
        print(f"{'model, guidance':36}" + "".join(f"{name:>14}" for name in header))
        models = [
            (SD_FOLDER, args.models / SD_FOLDER),
            (OUTLINE_FOLDER, args.models / OUTLINE_FOLDER),
            ("random tiny-sd (baseline)", random_sd),
        ]
        for name, sd in models:
            pipe = StableDiffusionPipeline.from_pretrained(sd)
            pipe.set_progress_bar_config(disable=True)
            for guidance in args.guidance:
                started = time.perf_counter()
                pictures = render_captions(pipe, prompts, guidance=guidance, steps=args.steps)
                quality = asdict(generation_quality(pictures, scenes, clip))
                cells = [quality[key] for key in ("clip_colour", "clip_shape", "pixel_colour")]
                cells += [quality["pixel_background"], time.perf_counter() - started]
                label = f"{name}, {guidance:g}"
                print(f"{label:36}" + "".join(f"{cell:14.3f}" for cell in cells))
        pictures, originals = reconstructed(args.models / SD_FOLDER, args.renders)
        bound = generation_quality(pictures, originals, clip)
        print(
            f"{'VAE reconstructions (bound)':36}{bound.clip_colour:14.3f}"
            f"{bound.clip_shape:14.3f}{bound.pixel_colour:14.3f}{bound.pixel_background:14.3f}"
        )
        chance = 1 / len(COLOURS)
        print(
            f"chance: colour {chance:.3f} (target 3× = {3 * chance:.3f}), "
            f"shape {1 / len(SHAPES):.3f} (target 2× = {2 / len(SHAPES):.3f})"
        )


if __name__ == "__main__":
    main()
