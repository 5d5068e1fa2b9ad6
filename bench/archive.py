"""A synthetic-but-realistic archive of N records, written with COPY, for the scale benchmarks.

    from bench.archive import archive_load
    info = archive_load(rows=1_000_000, directory=Path("var/bench/search-1000000"))

Needs a configured Django (the caller's settings point at a scratch database). Writes, in bulk:
- N public records (plus ~0.5 % hidden ones) of one model, with Lexica-like prompts composed
  from Zipf-weighted subjects, settings and style modifiers (30 % end in "trending on
  artstation", 5 % are Chinese), the keyword vector the app computes, and realistic column
  mixes. Filters of known selectivity: scheduler "K-LMS" 1 %, "DDIM" 10 %, "Euler a" 25 %,
  NSFW 2 % (independent of the scheduler);
- one environment row per record (~1.4 KB, as a real render stores);
- clustered 512-d unit vectors (a Gaussian mixture with a decaying noise spectrum, so the data
  has a low intrinsic dimension like real CLIP embeddings), COPYed in binary, and the HNSW index
  built once over all of them with parallel workers and enough maintenance memory;
- ids.npy / vectors.npy beside it (for recall against brute force) and load.json (timings).

Records go through a staging table and one INSERT ... SELECT, so the search vector is computed by
Postgres from the same weighted english + simple configuration as the app's keyword_vector.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import asdict, dataclass, replace
from datetime import timedelta
from pathlib import Path

import numpy as np
from django.db import connection
from django.utils import timezone
from pgvector.psycopg.vector import register_vector_info
from psycopg.types import TypeInfo
from tqdm import tqdm

from engine.keywords import segment
from generator.models import Image
from generator.selectors.recipes import model_version_default
from search.models import CHINESE_HNSW_INDEX, EMBEDDING_DIM, HNSW_EF_CONSTRUCTION, HNSW_INDEX
from search.selectors import active_embedding_model
from search.services import (
    embedding_graph_sql,
    embedding_model_ensure_registered,
    hnsw_build_session,
    image_sketches_update,
)

CENTRES = 200
CHUNK = 20_000
SEED = 0

SUBJECTS = """a lighthouse at dusk|a red fox in the snow|portrait of a cyberpunk samurai|a bowl of
ramen|an astronaut riding a horse|a cozy reading nook|a castle on a cliff|a koi pond|a steampunk
airship|a cat wearing a wizard hat|a futuristic city skyline|an old fisherman|a dragon made of
clouds|a field of sunflowers|a robot barista|a mountain lake at sunrise|a haunted victorian
house|a tiny house in the forest|a portrait of an elf queen|a neon-lit alley in the rain|a
still life of lemons|a whale in the sky|a treehouse village|an ancient library|a desert caravan|a
knight in golden armor|a glass greenhouse|a snowy cabin|a coral reef|a space station interior|a
corgi astronaut|a watercolor hummingbird|a medieval market|a samurai under cherry blossoms|a
gothic cathedral|a retro diner at night|a polar bear on an ice floe|a floating island|a jazz
musician|a fantasy map""".replace("\n", " ").split("|")
SETTINGS = """in the rain|at golden hour|under a full moon|in a misty forest|on mars|in the style
of a 1950s postcard|at night|in winter|underwater|in a cyberpunk city|on a quiet beach|in a
snow globe|at sunset|in autumn|in the desert""".replace("\n", " ").split("|")
STYLES = """oil painting|watercolor|digital art|concept art|octane render|unreal engine|studio
ghibli|highly detailed|8k|cinematic lighting|by greg rutkowski|by alphonse mucha|matte
painting|volumetric light|sharp focus|illustration|photorealistic|35mm film|isometric|pixel
art|ukiyo-e|art nouveau|low poly|bokeh|dramatic lighting""".replace("\n", " ").split("|")
CHINESE = [
    "古老的长城在雪中", "水墨山水画", "熊猫在竹林里吃竹子", "江南水乡的清晨", "敦煌壁画风格的飞天",
    "夜晚的上海外滩", "雨中的西湖断桥", "故宫的红墙与落雪", "桂林山水倒影", "少女与锦鲤",
]  # fmt: skip
CHINESE_STYLES = "国画|工笔|油画|赛博朋克|电影感|高清细节".split("|")
NEGATIVES = ["", "", "blurry, low quality", "watermark, text", "deformed hands, extra fingers"]
SIZES = [(512, 512)] * 15 + [(768, 512)] * 2 + [(512, 768)] * 2 + [(1024, 1024)]


@dataclass
class LoadInfo:
    rows: int
    records_s: float
    environments_s: float
    vectors_s: float
    hnsw_build_s: float
    maintenance_work_mem: str
    ef_construction: int = 64  # archives loaded before it was recorded were built with 64


def _zipf(rng: np.random.Generator, size: int, count: int) -> np.ndarray:
    """Indices 0..size-1 with frequency ~ 1/(rank+1): a few subjects dominate, as on Lexica."""
    weights = 1.0 / np.arange(1, size + 1)
    return rng.choice(size, count, p=weights / weights.sum())


def _prompts(rng: np.random.Generator, start: int, count: int) -> list[tuple[str, str, str]]:
    """(prompt, negative prompt, the prompt's segmented words) for rows start..start+count-1."""
    subjects, settings_ = _zipf(rng, len(SUBJECTS), count), _zipf(rng, len(SETTINGS), count)
    styles = _zipf(rng, len(STYLES), (count, 3))
    style_counts, has_setting = rng.integers(1, 4, count), rng.random(count) < 0.6
    out = []
    for i in range(count):
        g = start + i
        if g % 20 == 7:  # 5 % Chinese
            parts = [CHINESE[subjects[i] % len(CHINESE)], CHINESE_STYLES[styles[i, 0] % 6]]
        else:
            parts = [SUBJECTS[subjects[i]]]
            if has_setting[i]:
                parts[0] += " " + SETTINGS[settings_[i]]
            parts += [STYLES[s] for s in dict.fromkeys(styles[i, : style_counts[i]])]
            if g % 10 < 3:
                parts.append("trending on artstation")
        prompt = ", ".join(parts)
        out.append((prompt, NEGATIVES[g % len(NEGATIVES)], " ".join(_segment(p) for p in parts)))
    return out


_SEGMENTS: dict[str, str] = {}


def _segment(part: str) -> str:
    # jieba per prompt part, memoised: parts repeat, and a million jieba calls take minutes.
    if part not in _SEGMENTS:
        _SEGMENTS[part] = segment(part)
    return _SEGMENTS[part]


def _scheduler(g: int) -> str:
    bucket = g % 100
    if bucket == 0:
        return "K-LMS"  # 1 %
    if bucket <= 10:
        return "DDIM"  # 10 %
    if bucket <= 35:
        return "Euler a"  # 25 %
    return "DPM++ 2M Karras" if bucket <= 55 else "PNDM"


def mixture(rng: np.random.Generator, centres: np.ndarray, count: int) -> np.ndarray:
    scale = np.arange(1, EMBEDDING_DIM + 1, dtype=np.float64) ** -0.5
    scale /= np.linalg.norm(scale)
    vectors = centres[rng.integers(0, len(centres), count)]
    vectors = vectors + rng.standard_normal((count, EMBEDDING_DIM)) * scale
    return (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)


def mixture_centres() -> np.ndarray:
    rng = np.random.default_rng(SEED)
    centres = rng.standard_normal((CENTRES, EMBEDDING_DIM))
    return centres / np.linalg.norm(centres, axis=1, keepdims=True)


def _records(rows: int) -> np.ndarray:
    """COPY the recipes into a staging table, then one INSERT ... SELECT into the image table."""
    model_version = model_version_default()
    assert model_version is not None, "run build_tiny_models first"
    rng = np.random.default_rng(SEED + 1)
    now = timezone.now()
    raw = connection.connection
    with raw.cursor() as cursor:
        cursor.execute(
            "CREATE TEMP TABLE staging (g int, prompt text, negative text, words text, "
            "scheduler text, width int, height int, seed bigint, nsfw bool, hidden bool, "
            "created_at timestamptz)"
        )
        with cursor.copy("COPY staging FROM STDIN") as copy:
            progress = tqdm(total=rows, desc="recipes", unit=" rows", unit_scale=True)
            for start in range(0, rows, CHUNK):
                count = min(CHUNK, rows - start)
                progress.update(count)
                seeds = rng.integers(0, 2**32, count)
                for i, (prompt, negative, words) in enumerate(_prompts(rng, start, count)):
                    g = start + i
                    width, height = SIZES[(g * 31) % len(SIZES)]
                    copy.write_row((
                        g, prompt, negative, words, _scheduler(g), width, height, int(seeds[i]),
                        (g * 7919) % 50 == 3, g % 200 == 199,
                        now - timedelta(minutes=g),
                    ))  # fmt: skip
        cursor.execute(
            """
            INSERT INTO generator_image (
                model_name, model_digest, mode, prompt, negative_prompt, seed, scheduler, steps,
                guidance, width, height, precision, batch_size, batch_index, status, image_file,
                thumbnail, thumbnail_large, pixel_sha256, hidden, nsfw, featured, created_at,
                finished_at, model_version_id, search_vector)
            SELECT %s, %s, 'txt2img', prompt, negative, seed, scheduler, 20 + g %% 31,
                7.5, width, height, 'fp32', 1, 0, 'ready', 'images/archive.png',
                'thumbnails/archive.webp', '', md5(g::text) || md5(seed::text), hidden, nsfw,
                g %% 997 = 0, created_at, created_at, %s,
                setweight(to_tsvector('english', prompt), 'A')
                || setweight(to_tsvector('simple', words), 'A')
                || setweight(to_tsvector('english', negative), 'D')
                || setweight(to_tsvector('simple', lower(negative)), 'D')
            FROM staging ORDER BY g DESC
            RETURNING id
            """,
            [str(model_version), model_version.weights_digest, model_version.pk],
        )
        ids = np.array([row[0] for row in cursor.fetchall()], dtype=np.int64)
        cursor.execute("DROP TABLE staging")
    return ids


def _environments() -> None:
    """One ~1.4 KB environment per record, as a render stores (its own table)."""
    environment = {
        "python": "3.12.3", "platform": "Linux-6.8.0-x86_64-with-glibc2.39",
        "machine": "x86_64", "torch": "2.5.1+cpu", "diffusers": "0.32.2",
        "transformers": "4.47.1", "numpy": "2.2.1", "pillow": "11.1.0", "device": "cpu",
        "device_name": "AMD EPYC 7B13", "cpu_capability": "AVX2", "precision": "fp32",
        "dtype": "float32", "torch_threads": 1, "pipeline_class": "StableDiffusionPipeline",
        "determinism": {"deterministic_algorithms": True, "cudnn_benchmark": False},
        "scheduler_config": {"_class_name": "PNDMScheduler", "beta_end": 0.012,
                             "beta_schedule": "scaled_linear", "beta_start": 0.00085,
                             "num_train_timesteps": 1000, "set_alpha_to_one": False,
                             "skip_prk_steps": True, "steps_offset": 1,
                             "timestep_spacing": "leading", "prediction_type": "epsilon"},
        "attention_processors": {"unet": ["AttnProcessor2_0"], "vae": ["AttnProcessor2_0"]},
        "model_path": "/srv/seedbank/models/sd-tiny", "padding": "x" * 400,
    }  # fmt: skip
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO generator_imageenvironment (image_id, data) "
            "SELECT id, %s::jsonb || jsonb_build_object('seed', seed, 'batch_index', 0, "
            "'batch_size', 1, 'scheduler', scheduler) FROM generator_image",
            [json.dumps(environment)],
        )


def _vectors(ids: np.ndarray, directory: Path) -> None:
    """Clustered vectors COPYed in binary; the same arrays saved for brute-force recall."""
    model = embedding_model_ensure_registered(model=active_embedding_model())
    rng = np.random.default_rng(SEED + 2)
    centres = mixture_centres()
    vectors = np.lib.format.open_memmap(
        directory / "vectors.npy", mode="w+", dtype=np.float32, shape=(len(ids), EMBEDDING_DIM)
    )
    raw, now = connection.connection, timezone.now()
    with raw.cursor() as cursor:
        register_vector_info(cursor, TypeInfo.fetch(raw, "vector"))
        with cursor.copy(
            "COPY search_imageembedding (image_id, model_name, dim, embedding, created_at) "
            "FROM STDIN WITH (FORMAT BINARY)"
        ) as copy:
            copy.set_types(["int8", "varchar", "int2", "vector", "timestamptz"])
            progress = tqdm(total=len(ids), desc="vectors", unit=" rows", unit_scale=True)
            for start in range(0, len(ids), CHUNK):
                chunk = mixture(rng, centres, min(CHUNK, len(ids) - start))
                progress.update(len(chunk))
                vectors[start : start + len(chunk)] = chunk
                for pk, vector in zip(ids[start : start + len(chunk)].tolist(), chunk, strict=True):
                    copy.write_row((pk, model.name, EMBEDDING_DIM, vector, now))
    vectors.flush()
    np.save(directory / "ids.npy", ids)
    print("writing the records' sketches ...", file=sys.stderr, flush=True)
    image_sketches_update()  # as the embedding services do after writing vectors


def _hnsw_build(rows: int) -> str:
    """The index as search/models.py declares it, built once over every row, sized and
    parallelised as search.services.embedding_index_rebuild does it."""
    with hnsw_build_session(rows=rows) as (cursor, memory):
        cursor.execute(embedding_graph_sql(HNSW_INDEX))
    return f"{memory}MB"


def _chinese_graph_build(rows: int) -> None:
    """The Chinese prompts' graph (lang:zh) as search/models.py declares it."""
    with hnsw_build_session(rows=rows) as (cursor, _):
        cursor.execute(embedding_graph_sql(CHINESE_HNSW_INDEX))


def archive_load(*, rows: int, directory: Path) -> LoadInfo:
    """Load once into an empty archive (the caller's database); later calls read load.json."""
    directory.mkdir(parents=True, exist_ok=True)
    done = directory / "load.json"
    if done.exists():
        info = LoadInfo(**json.loads(done.read_text()))
        if info.ef_construction != HNSW_EF_CONSTRUCTION:  # loaded before the parameter changed
            print("rebuilding the HNSW index as declared ...", file=sys.stderr, flush=True)
            with connection.cursor() as cursor:
                cursor.execute(f"DROP INDEX {HNSW_INDEX}")
            started = time.perf_counter()
            memory = _hnsw_build(rows)
            info = replace(
                info,
                hnsw_build_s=time.perf_counter() - started,
                maintenance_work_mem=memory,
                ef_construction=HNSW_EF_CONSTRUCTION,
            )
            done.write_text(json.dumps(asdict(info)))
        return info
    if Image.objects.exists():
        raise SystemExit(f"{directory}: a half-loaded archive; delete the directory to reload")
    timings = {}
    started = time.perf_counter()
    ids = _records(rows)
    timings["records_s"] = time.perf_counter() - started
    started = time.perf_counter()
    _environments()
    timings["environments_s"] = time.perf_counter() - started
    with connection.cursor() as cursor:  # both graphs built once, at the end
        cursor.execute(f"DROP INDEX IF EXISTS {HNSW_INDEX}")
        cursor.execute(f"DROP INDEX IF EXISTS {CHINESE_HNSW_INDEX}")
    started = time.perf_counter()
    _vectors(ids, directory)
    timings["vectors_s"] = time.perf_counter() - started
    print("building the HNSW index ...", file=sys.stderr, flush=True)
    started = time.perf_counter()
    memory = _hnsw_build(rows)
    timings["hnsw_build_s"] = time.perf_counter() - started
    _chinese_graph_build(rows)
    with connection.cursor() as cursor:
        for table in ("generator_image", "generator_imageenvironment", "search_imageembedding"):
            cursor.execute(f"VACUUM ANALYZE {table}")
    info = LoadInfo(
        rows=rows, maintenance_work_mem=memory, ef_construction=HNSW_EF_CONSTRUCTION, **timings
    )
    done.write_text(json.dumps(asdict(info)))
    return info
