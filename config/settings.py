"""Seedbank settings. Everything comes from the environment, with safe local defaults.

Unset DATABASE_URL / CELERY_BROKER_URL mean "use the embedded Postgres + pgvector and Redis
under SEEDBANK_VAR_DIR" (see config/embedded.py). A wrong value fails here, at start, with a
message naming the variable.
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from config import embedded
from config.secrets import local_secret_key

BASE_DIR = Path(__file__).resolve().parent.parent


def env_str(name: str, default: str) -> str:
    return os.environ.get(name, default)


def env_int(name: str, default: int, *, minimum: int = 0) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name} must be an integer, got {raw!r}") from exc
    if value < minimum:
        raise ImproperlyConfigured(f"{name} must be >= {minimum}, got {value}")
    return value


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    if raw.lower() in {"1", "true", "yes", "on"}:
        return True
    if raw.lower() in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (1/0, true/false), got {raw!r}")


VAR_DIR = Path(env_str("SEEDBANK_VAR_DIR", str(BASE_DIR / "var"))).resolve()

# Off unless asked for: a visitor never sees a traceback, not even on a laptop demo.
DEBUG = env_bool("DJANGO_DEBUG", False)
# Production sets DJANGO_SECRET_KEY. Without it, a local install makes one once and keeps it in
# SEEDBANK_VAR_DIR (never in the repository), so sessions survive a restart of `make run`.
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "") or local_secret_key(VAR_DIR)
ALLOWED_HOSTS = [h for h in env_str("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost").split(",") if h]

# --- behind a TLS proxy (SEEDBANK_HTTPS=1) --------------------------------------------------
# The proxy terminates TLS and says so in X-Forwarded-Proto; cookies are then secure only, HSTS
# is sent, and POSTs from the public origins pass CSRF's origin check.
SEEDBANK_HTTPS = env_bool("SEEDBANK_HTTPS", False)
if SEEDBANK_HTTPS:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env_bool("SEEDBANK_SSL_REDIRECT", True)
    SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = LANGUAGE_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env_int("SEEDBANK_HSTS_SECONDS", 31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SEEDBANK_HSTS_INCLUDE_SUBDOMAINS", True)
    SECURE_HSTS_PRELOAD = env_bool("SEEDBANK_HSTS_PRELOAD", True)
CSRF_TRUSTED_ORIGINS = [o for o in env_str("DJANGO_CSRF_TRUSTED_ORIGINS", "").split(",") if o]
# Rate limits key clients by address. Behind a proxy every request comes from the proxy, so the
# client's own address is read from this header (set by *your* proxy; never trust it otherwise).
SEEDBANK_CLIENT_IP_HEADER = env_str("SEEDBANK_CLIENT_IP_HEADER", "")
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "csp",
    "axes",  # failed sign-ins, counted in the database (gallery/signin.py)
    "generator",
    "gallery",
    "archive",
    "search",
]

MIDDLEWARE = [
    "config.middleware.RequestIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Serves collected static files from the application server (compressed, cached forever).
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "config.middleware.OverloadMiddleware",
    "config.middleware.RejectNulMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    # The language: the switcher's cookie, else Accept-Language (the JSON API stays English).
    "config.middleware.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    # Last, as axes asks: turns a sign-in its backend refused into the lockout answer.
    "axes.middleware.AxesMiddleware",
]

# Scripts and styles come only from our own static files (no inline code anywhere).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "img-src": ["'self'", "data:", "blob:"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "frame-ancestors": ["'none'"],
        "form-action": ["'self'"],
    }
}

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "gallery.context_processors.viewer_choices",
            ],
        },
    },
]

# --- database: external Postgres with pgvector, or the embedded one -------------------------
if embedded.use_embedded("DATABASE_URL"):
    _database_url = embedded.embedded_database_url(VAR_DIR)
else:
    _database_url = os.environ["DATABASE_URL"]
try:
    DATABASES = {"default": dj_database_url.parse(_database_url)}
except ValueError as exc:
    raise ImproperlyConfigured(f"DATABASE_URL is not a valid database URL: {exc}") from exc
# One bounded pool per process (psycopg_pool through Django): a request borrows a connection and
# gives it back, so connections never outlive their threads and never exceed
# processes x SEEDBANK_DB_POOL_MAX. Size it so that web processes x (threads) plus workers stay
# under the server's max_connections. A request that waits longer than the timeout for one
# answers 503 (config.middleware.OverloadMiddleware), not 500.
SEEDBANK_DB_POOL_MAX = env_int("SEEDBANK_DB_POOL_MAX", 8, minimum=1)
DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
    "min_size": 1,
    "max_size": SEEDBANK_DB_POOL_MAX,
    "timeout": env_int("SEEDBANK_DB_POOL_TIMEOUT", 10, minimum=1),
}
# libpq's `?host=/socket/dir` arrives in OPTIONS; Django's own HOST field is where tools (and
# child processes rebuilding the URL) look for it.
if not DATABASES["default"]["HOST"] and "host" in DATABASES["default"]["OPTIONS"]:
    DATABASES["default"]["HOST"] = DATABASES["default"]["OPTIONS"].pop("host")
if DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
    raise ImproperlyConfigured("DATABASE_URL must point at PostgreSQL (pgvector is required)")

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    # Django's list of 20,000 leaked passwords ("password", "12345678", ...), and all digits.
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "home"

# --- sign-in throttling (django-axes; the answer and the reset are gallery/signin.py) --------
# Axes' backend comes first: it refuses a locked-out sign-in before the password is checked.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
# SEEDBANK_LOGIN_FAILURE_LIMIT failed sign-ins for one account (from anywhere), or from one
# address (for any accounts), lock that account, or that address, until
# SEEDBANK_LOGIN_COOLOFF_MINUTES have passed since the last failure (a try while locked out
# starts the wait again). Locking an account lets a stranger keep its owner out for a while;
# a short cool-off keeps that cheap, while a guesser gets 5 tries per quiet quarter hour.
AXES_FAILURE_LIMIT = env_int("SEEDBANK_LOGIN_FAILURE_LIMIT", 5, minimum=1)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("SEEDBANK_LOGIN_COOLOFF_MINUTES", 15, minimum=1))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]  # each on its own, not the pair
# The address as the rate limits see it (SEEDBANK_CLIENT_IP_HEADER behind a proxy).
AXES_CLIENT_IP_CALLABLE = "gallery.signin.client_ip"
AXES_LOCKOUT_CALLABLE = "gallery.signin.locked_out"  # 429 + Retry-After, translated
# A successful sign-in clears that account's failures from that address only (gallery/signin.py),
# not axes' reset of everything from the address.
AXES_RESET_ON_SUCCESS = False
# No history of successful sign-ins is kept (axes would add a row per sign-in, forever).
AXES_DISABLE_ACCESS_LOG = True

# English and Simplified Chinese. No language prefix in URLs: a page has one address, and the
# language comes from the switcher's cookie (django_language), else Accept-Language. The
# catalogue is locale/zh_Hans (`make messages`); tests/config/test_translations.py keeps it
# complete. Each language is named in itself, so anyone can find their own.
LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("zh-hans", "简体中文")]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = VAR_DIR / "static"
# collectstatic (run by `make run`) writes hashed, compressed copies that whitenoise serves.
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
MEDIA_URL = "media/"
MEDIA_ROOT = Path(env_str("MEDIA_ROOT", str(VAR_DIR / "media"))).resolve()
# Local runs and tests serve media from Django; production points MEDIA at object storage.
SEEDBANK_SERVE_MEDIA = env_bool("SEEDBANK_SERVE_MEDIA", True)
# Behind nginx: the internal location that maps to MEDIA_ROOT (gallery/views/media.py).
SEEDBANK_MEDIA_ACCEL_PREFIX = env_str("SEEDBANK_MEDIA_ACCEL_PREFIX", "")

# --- Celery -----------------------------------------------------------------------------------
if embedded.use_embedded("CELERY_BROKER_URL"):
    CELERY_BROKER_URL = embedded.embedded_broker_url(VAR_DIR)
else:
    CELERY_BROKER_URL = os.environ["CELERY_BROKER_URL"]
# Results live on our own rows (job status, progress), so no result backend is needed.
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
# A GPU job must survive a worker crash: ack after the task finishes, requeue if the worker
# dies, and never let one worker hoard jobs it cannot run yet (one render at a time per GPU).
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Must exceed the longest job, or Redis redelivers a job that is still running.
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": env_int("SEEDBANK_VISIBILITY_TIMEOUT", 6 * 3600, minimum=60),
    # A stalled Redis (stopped, not gone) must not hold a request: without a socket timeout a
    # publish waits for its reply forever. (Consumers wait on BRPOP with its own 1 s timeout.)
    "socket_timeout": 2.0,
    "socket_connect_timeout": 2.0,
}
CELERY_TASK_DEFAULT_QUEUE = "cpu"
CELERY_TASK_ROUTES = {
    "generator.tasks.sweep_jobs": {"queue": "cpu"},
    "generator.tasks.*": {"queue": "gpu"},
    "search.tasks.*": {"queue": "cpu"},
    "archive.tasks.*": {"queue": "cpu"},
}
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
# A publish while the broker is down must fail fast (the request answers "queued" and the
# sweeper sends the job later), not hang the request in Celery's default retry loop.
CELERY_BROKER_CONNECTION_TIMEOUT = 2
CELERY_TASK_PUBLISH_RETRY_POLICY = {"max_retries": 1, "interval_start": 0.2, "interval_step": 0}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# A GPU pool process loads its model when it starts (generator/tasks.py), which takes longer
# than Celery's 4 s default for a process to report ready.
CELERY_WORKER_PROC_ALIVE_TIMEOUT = 120

# --- render jobs: leases, retries, the sweeper (generator/services/sweeper.py) ---------------
# A running job's worker renews its lease from a thread every quarter of this, however long a
# step takes (generator/services/lease_keeper.py); a job whose lease ran out is queued again
# (its worker's machine is gone) up to SEEDBANK_JOB_MAX_ATTEMPTS attempts, then failed. A
# worker killed on a live machine is noticed sooner: by the supervisor, by its successor's
# first connection, or by Celery re-delivering a killed pool process's task.
SEEDBANK_JOB_LEASE_SECONDS = env_int("SEEDBANK_JOB_LEASE_SECONDS", 20, minimum=1)
SEEDBANK_JOB_MAX_ATTEMPTS = env_int("SEEDBANK_JOB_MAX_ATTEMPTS", 3, minimum=1)
SEEDBANK_SWEEP_SECONDS = env_int("SEEDBANK_SWEEP_SECONDS", 5, minimum=1)
# A queued job sent this long ago and still not claimed is sent again: a broker that lost its
# data (restarted without persistence) must not lose jobs. A duplicate message is harmless:
# only one delivery can claim the job.
SEEDBANK_JOB_RESEND_SECONDS = env_int("SEEDBANK_JOB_RESEND_SECONDS", 600, minimum=1)
# Task time limits from the recipe's size: base + per (megapixel x step x image). The default
# is generous for a CPU worker; GPU deployments can lower it.
SEEDBANK_JOB_TIME_LIMIT_BASE = env_int("SEEDBANK_JOB_TIME_LIMIT_BASE", 120, minimum=1)
SEEDBANK_JOB_SECONDS_PER_MEGAPIXEL_STEP = float(
    env_str("SEEDBANK_JOB_SECONDS_PER_MEGAPIXEL_STEP", "4.0")
)
CELERY_BEAT_SCHEDULE = {
    "sweep-render-jobs": {
        "task": "generator.tasks.sweep_jobs",
        "schedule": float(SEEDBANK_SWEEP_SECONDS),
        # A sweep that waited longer than one interval is superseded by the next one.
        "options": {"expires": float(SEEDBANK_SWEEP_SECONDS)},
    },
    # Embeds whatever is left in the backlog (a drain task lost with a broker, say).
    "drain-embedding-backlog": {
        "task": "search.tasks.embed_pending",
        "schedule": 60.0,
        "options": {"expires": 60.0},
    },
    # Imported prompts left waiting for their CLIP text vector (archive.services.prompts).
    "drain-prompt-embeddings": {
        "task": "archive.tasks.embed_source_prompts",
        "schedule": 60.0,
        "options": {"expires": 60.0},
    },
    # Uploaded imports a killed worker left "running" (archive.services.imports).
    "resume-imports": {
        "task": "archive.tasks.resume_imports",
        "schedule": 60.0,
        "options": {"expires": 60.0},
    },
    # Upload folders of stopped runs, older than SEEDBANK_UPLOAD_STALE_HOURS.
    "sweep-stale-uploads": {
        "task": "archive.tasks.sweep_stale_uploads",
        "schedule": 3600.0,
        "options": {"expires": 3600.0},
    },
}
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")

# --- models and rendering -------------------------------------------------------------------
SEEDBANK_MODELS_DIR = Path(env_str("SEEDBANK_MODELS_DIR", str(VAR_DIR / "models"))).resolve()
# The scene models trained by `make models` and kept in the repository (models/DIGESTS).
SEEDBANK_SHIPPED_MODELS_DIR = BASE_DIR / "models"
SEEDBANK_CLIP_PATH = Path(
    env_str("SEEDBANK_CLIP_PATH", str(SEEDBANK_SHIPPED_MODELS_DIR / "seedbank-scenes-clip"))
).resolve()
# --- provenance: Content Credentials (C2PA) in every stored picture ---------------------------
# Signed as this name. Without an operator's certificate the site makes its own once (a
# self-signed CA and a signing certificate, the key 0600) in SEEDBANK_SIGNING_DIR; public
# verifiers show that signer as "unrecognized". SEEDBANK_SIGNING_CERT (PEM chain, signing
# certificate first) and SEEDBANK_SIGNING_KEY (PEM key) use a certificate from a trusted CA.
SEEDBANK_SITE_NAME = env_str("SEEDBANK_SITE_NAME", "Seedbank")
SEEDBANK_SIGNING_DIR = Path(env_str("SEEDBANK_SIGNING_DIR", str(VAR_DIR / "signing"))).resolve()
SEEDBANK_SIGNING_CERT = env_str("SEEDBANK_SIGNING_CERT", "")
SEEDBANK_SIGNING_KEY = env_str("SEEDBANK_SIGNING_KEY", "")
# Thread count changes CPU pixels at ~1e-6 (DESIGN.md): workers pin it and record it.
SEEDBANK_TORCH_THREADS = env_int("SEEDBANK_TORCH_THREADS", 1, minimum=1)
# Precisions the workers can render. fp16 needs CUDA: GPU deployments set "fp32,fp16"; a CPU
# worker refuses fp16 outright rather than silently rendering fp32.
SEEDBANK_PRECISIONS = [p for p in env_str("SEEDBANK_PRECISIONS", "fp32").split(",") if p]
if not set(SEEDBANK_PRECISIONS) <= {"fp32", "fp16"} or not SEEDBANK_PRECISIONS:
    raise ImproperlyConfigured("SEEDBANK_PRECISIONS must list fp32 and/or fp16, e.g. fp32,fp16")
SEEDBANK_MAX_SIDE = env_int("SEEDBANK_MAX_SIDE", 1024, minimum=64)
SEEDBANK_MAX_STEPS = env_int("SEEDBANK_MAX_STEPS", 150, minimum=1)
SEEDBANK_MAX_BATCH = env_int("SEEDBANK_MAX_BATCH", 8, minimum=1)
# The most GPU work one job may ask for, in megapixel-steps (width x height / 1e6 x steps x
# images, hires pass included: engine.pricing). 160 is one 1024² image at 150 steps (157), a
# batch of 8 at 512² and 75 steps, or 4 at 512² with a 2x hires pass at 30 steps; 1024² x 150
# steps x 8 (1258, an hour or more of one GPU) is refused.
SEEDBANK_MAX_JOB_MEGAPIXEL_STEPS = env_int("SEEDBANK_MAX_JOB_MEGAPIXEL_STEPS", 160, minimum=1)
SEEDBANK_GALLERY_PAGE_SIZE = env_int("SEEDBANK_GALLERY_PAGE_SIZE", 24, minimum=1)
# How long anonymous visitors may be shown a cached page (gallery/page_cache.py); 0 turns it off.
SEEDBANK_PAGE_CACHE_SECONDS = env_int("SEEDBANK_PAGE_CACHE_SECONDS", 10)

# --- search ------------------------------------------------------------------------------
# Measured on clustered 512-d vectors: with the graph built at ef_construction 64, recall@10 at
# ef_search 120 was 0.987 at 100k (bench/vector_index.py) but 0.94-0.96 at 1M, where 200 gave
# 0.963; built at 128 (search/models.py), 200 finds 0.989 at 1M in the same time, and 120 only
# 0.939 (bench/search.py's archive, warm; docs/benchmarks.md).
SEEDBANK_HNSW_EF_SEARCH = env_int("SEEDBANK_HNSW_EF_SEARCH", 200, minimum=1)
# Every connection starts with it (a placeholder until pgvector loads, then adopted), so an
# unfiltered search needs no transaction and SET LOCAL of its own: one round trip, not four.
_pg_options = DATABASES["default"]["OPTIONS"]
_pg_options["options"] = (
    f"{_pg_options.get('options', '')} -c hnsw.ef_search={SEEDBANK_HNSW_EF_SEARCH}"
    # The index holds every embedding model's vectors, and a query keeps its model's only: the
    # walk goes on until enough rows pass (while a re-embed has two models' vectors, a plain
    # scan would return about half of what was asked).
    " -c hnsw.iterative_scan=relaxed_order"
).strip()
# Filtered searches: an exact sort when the filter leaves at most SEEDBANK_EXACT_SEARCH_MAX_ROWS
# rows, else HNSW with pgvector 0.8's iterative scan at this ef_search, visiting at most
# SEEDBANK_HNSW_MAX_SCAN_TUPLES index tuples before giving up (then exact).
# tests/search/test_filtered_recall.py holds recall@10 >= 0.95 on each path at 50k rows.
SEEDBANK_HNSW_EF_SEARCH_FILTERED = env_int("SEEDBANK_HNSW_EF_SEARCH_FILTERED", 200, minimum=1)
SEEDBANK_HNSW_MAX_SCAN_TUPLES = env_int("SEEDBANK_HNSW_MAX_SCAN_TUPLES", 20000, minimum=1)
SEEDBANK_EXACT_SEARCH_MAX_ROWS = env_int("SEEDBANK_EXACT_SEARCH_MAX_ROWS", 2000, minimum=0)
# ... and up to this many, a Hamming scan of the records' 1-bit sketches re-ranked by cosine
# (search.selectors.vector; bench/search.py).
SEEDBANK_SKETCH_SEARCH_MAX_ROWS = env_int("SEEDBANK_SKETCH_SEARCH_MAX_ROWS", 50000, minimum=0)
# Ceiling of the maintenance memory an HNSW rebuild may take (manage.py search_reindex): the
# graph of 1M 512-d vectors wants ~3 GB; with less, the build spills and slows several times.
SEEDBANK_INDEX_BUILD_MEMORY_MB = env_int("SEEDBANK_INDEX_BUILD_MEMORY_MB", 4096, minimum=64)
# Keyword search ranks at most this many matches, the newest (ts_rank reads each one).
# 2,000: at 1M records ranking 10,000 cost ~30 ms of a common phrase's 36 (bench/search.py).
SEEDBANK_KEYWORD_RANK_MAX = env_int("SEEDBANK_KEYWORD_RANK_MAX", 2_000, minimum=1)
# Searches by words hide vector matches whose text→image cosine is below this (an embedding
# model can set its own). 0.2 is CLIP ViT-B/32's scale: a caption and its image score ~0.3,
# unrelated pairs 0.1-0.2 (LAION kept pairs at >= 0.28). Keyword matches are never hidden.
SEEDBANK_RELEVANCE_COSINE = float(env_str("SEEDBANK_RELEVANCE_COSINE", "0.2"))
# Cosine at or above which two records count as near-duplicates (real CLIP ViT-B/32 scale).
SEEDBANK_NEAR_DUPLICATE_COSINE = float(env_str("SEEDBANK_NEAR_DUPLICATE_COSINE", "0.95"))
# Prompt-only results (imported prompts, no picture) match by text→text cosine, which runs
# higher than text→image: under the scene CLIP a one-word query's best caption scores 0.64-0.78
# and a median caption ~0; a model may declare its own ("prompt_relevance_cosine").
SEEDBANK_PROMPT_RELEVANCE_COSINE = float(env_str("SEEDBANK_PROMPT_RELEVANCE_COSINE", "0.5"))

SEEDBANK_UPLOAD_MAX_BYTES = env_int("SEEDBANK_UPLOAD_MAX_BYTES", 10_000_000, minimum=1)
SEEDBANK_UPLOAD_MAX_PIXELS = env_int("SEEDBANK_UPLOAD_MAX_PIXELS", 40_000_000, minimum=1)
# Image search decodes in the web process: a JPEG at a reduced scale (any size up to the limit
# above), a PNG or WebP whole, so those are held to this (16 MP RGBA: 64 MB decoded).
SEEDBANK_SEARCH_UPLOAD_MAX_PIXELS = env_int(
    "SEEDBANK_SEARCH_UPLOAD_MAX_PIXELS", 16_000_000, minimum=1
)
# Staff uploads for import (archive): kept under var/imports/<run> until the run is done.
SEEDBANK_IMPORTS_DIR = Path(env_str("SEEDBANK_IMPORTS_DIR", str(VAR_DIR / "imports"))).resolve()
SEEDBANK_IMPORT_MAX_UPLOAD_BYTES = env_int(
    "SEEDBANK_IMPORT_MAX_UPLOAD_BYTES", 500_000_000, minimum=1
)
# The most one zip member may inflate to (tables are streamed, so this bounds time, not memory;
# an image member is also held to 50 MB): a larger member is reported and skipped.
SEEDBANK_IMPORT_MAX_MEMBER_BYTES = env_int(
    "SEEDBANK_IMPORT_MAX_MEMBER_BYTES", 2_000_000_000, minimum=1
)
# Uploaded files a stopped (or never started) import left behind are deleted once untouched
# this long (archive.tasks.sweep_stale_uploads, hourly); a running import's are kept.
SEEDBANK_UPLOAD_STALE_HOURS = env_int("SEEDBANK_UPLOAD_STALE_HOURS", 48, minimum=1)

# --- quotas and rate limits (staff are exempt from quotas) ----------------------------------
SEEDBANK_QUOTA_RENDERS_PER_DAY = env_int("SEEDBANK_QUOTA_RENDERS_PER_DAY", 200, minimum=1)
SEEDBANK_QUOTA_GPU_SECONDS_PER_DAY = env_int("SEEDBANK_QUOTA_GPU_SECONDS_PER_DAY", 1800, minimum=1)
# The day's GPU work per user, in megapixel-steps (the image count above does not see size or
# steps): 1600 is ~200 images at 512² and 30 steps (7.9 each), or ten of the largest jobs.
SEEDBANK_QUOTA_MEGAPIXEL_STEPS_PER_DAY = env_int(
    "SEEDBANK_QUOTA_MEGAPIXEL_STEPS_PER_DAY", 1600, minimum=1
)
# GPU work one user may have queued or rendering at once. With one worker, it is how long the
# next user's job can wait behind theirs; as much as one largest job (no less, or that job could
# never be queued), i.e. ~20 images at 512² and 30 steps.
SEEDBANK_QUOTA_INFLIGHT_MEGAPIXEL_STEPS = env_int(
    "SEEDBANK_QUOTA_INFLIGHT_MEGAPIXEL_STEPS", SEEDBANK_MAX_JOB_MEGAPIXEL_STEPS, minimum=1
)
if SEEDBANK_QUOTA_INFLIGHT_MEGAPIXEL_STEPS < SEEDBANK_MAX_JOB_MEGAPIXEL_STEPS:
    raise ImproperlyConfigured(
        "SEEDBANK_QUOTA_INFLIGHT_MEGAPIXEL_STEPS must be at least "
        "SEEDBANK_MAX_JOB_MEGAPIXEL_STEPS, or the largest job could never be queued"
    )
SEEDBANK_RATE_GENERATE_PER_MINUTE = env_int("SEEDBANK_RATE_GENERATE_PER_MINUTE", 10, minimum=1)
SEEDBANK_RATE_SEARCH_PER_MINUTE = env_int("SEEDBANK_RATE_SEARCH_PER_MINUTE", 60, minimum=1)
SEEDBANK_RATE_SIGNUP_PER_HOUR = env_int("SEEDBANK_RATE_SIGNUP_PER_HOUR", 5, minimum=1)
SEEDBANK_RATE_LIKE_PER_MINUTE = env_int("SEEDBANK_RATE_LIKE_PER_MINUTE", 60, minimum=1)
# A collection export re-encodes every PNG with its recipe chunks: seconds of CPU each.
SEEDBANK_RATE_EXPORT_PER_HOUR = env_int("SEEDBANK_RATE_EXPORT_PER_HOUR", 10, minimum=1)
# Rate-limit counters and cached pages must be shared by every web process: Redis in
# production (SEEDBANK_CACHE_URL=redis://…), the embedded Redis under make run.
_cache_url = os.environ.get("SEEDBANK_CACHE_URL", "")
if not _cache_url and CELERY_BROKER_URL.startswith("redis+socket://"):
    # make run: the embedded Redis (database 1; the broker uses 0), so the gunicorn processes
    # share rate-limit counters and cached pages.
    _cache_url = "unix://" + CELERY_BROKER_URL.removeprefix("redis+socket://") + "?db=1"
# Whether every process sees the same cache (not so for in-process memory).
SEEDBANK_CACHE_SHARED = bool(_cache_url)
CACHES = {
    "default": (
        # Short timeouts, and pages go on without it when it is down (gallery/cache.py).
        {"BACKEND": "gallery.cache.DegradingRedisCache", "LOCATION": _cache_url}
        if _cache_url
        else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    )
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "config.middleware.RequestIdFilter"}},
    "formatters": {
        # Time, level, logger and the request id (or "-" outside a request): one line each.
        "line": {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"}
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "line",
            "filters": ["request_id"],
        }
    },
    # Libraries that log to the root logger (open_clip narrates every model load) stay quiet;
    # Seedbank's own modules and Celery report at SEEDBANK_LOG_LEVEL.
    "root": {"handlers": ["console"], "level": "WARNING"},
    "loggers": {
        name: {"level": env_str("SEEDBANK_LOG_LEVEL", "INFO")}
        for name in ("engine", "generator", "gallery", "search", "config", "celery", "django")
    },
}
