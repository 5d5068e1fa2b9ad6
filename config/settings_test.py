"""Settings for the test suite: the same as production-like local settings, but with their own
embedded Postgres + Redis under var/test, so tests never touch (or steal work from) `make run`."""

import os
from pathlib import Path

os.environ.setdefault(
    "SEEDBANK_VAR_DIR", str(Path(__file__).resolve().parent.parent / "var" / "test")
)
# Tests that need no meaning use the random-weight tiny CLIP (built by tests/conftest.py), not
# the trained one in models/, which tests that judge search quality load by its own path.
os.environ.setdefault(
    "SEEDBANK_CLIP_PATH", str(Path(os.environ["SEEDBANK_VAR_DIR"]) / "models" / "tiny-clip")
)
# The test database is small: a quarter of a CI machine's memory would only be mapped, not used.
os.environ.setdefault("SEEDBANK_PG_SHARED_BUFFERS", "256MB")

from config.settings import *  # noqa: F403

# Fast hashing: tests create users, not passwords worth protecting.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# Tests render templates without running collectstatic: plain static file names.
STORAGES = {
    **STORAGES,  # noqa: F405
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # noqa: F405

# Each test process keeps its own counters and cached pages (the embedded Redis outlives a run,
# and tests must not see each other's rate-limit hits); pages are not cached unless a test asks.
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
SEEDBANK_CACHE_SHARED = False
SEEDBANK_PAGE_CACHE_SECONDS = 0
