"""Served like production: own error pages, health, overload as 503, security headers, logs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import OperationalError
from django.test import Client

from gallery import ratelimit

REPO_ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.django_db

PRODUCTION_ENV = {
    "DJANGO_SECRET_KEY": "kq3Zr8vT1mXw9bLp2sYf6hNc4dGj7uAe0oVi5tRy8wQz3xCb1nMl",
    "DJANGO_ALLOWED_HOSTS": "seedbank.example",
    "DJANGO_CSRF_TRUSTED_ORIGINS": "https://seedbank.example",
    "SEEDBANK_HTTPS": "1",
    "SEEDBANK_CLIENT_IP_HEADER": "X-Forwarded-For",
}


def test_debug_is_off_unless_asked_for(settings) -> None:
    assert settings.DEBUG is False


def test_a_server_error_shows_our_page_not_a_traceback(client, monkeypatch) -> None:
    def explode(**kwargs):
        raise RuntimeError("secret internals")

    monkeypatch.setattr("gallery.views.records.gallery_page", explode)
    quiet = Client(raise_request_exception=False)
    response = quiet.get("/")
    assert response.status_code == 500
    body = response.content.decode()
    assert "Something went wrong" in body and "secret internals" not in body
    assert "Traceback" not in body


def test_a_saturated_database_answers_503_with_retry_after(monkeypatch) -> None:
    def saturated(**kwargs):
        raise OperationalError("couldn't get a connection after 10.00 sec")

    monkeypatch.setattr("gallery.views.records.gallery_page", saturated)
    # The API's first query (the active embedding model) is the one that finds no connection.
    monkeypatch.setattr("gallery.api.search.active_embedding_model", saturated)
    quiet = Client(raise_request_exception=False)
    page = quiet.get("/")
    assert page.status_code == 503 and page["Retry-After"] == "5"
    assert "busy" in page.content.decode()
    api = quiet.get("/api/v1/search", {"q": "cat"})
    assert api.status_code == 503 and api.json()["error"].startswith("The service is busy")


def test_not_found_is_our_page(client) -> None:
    response = client.get("/images/999999/")
    assert response.status_code == 404 and "Not found" in response.content.decode()


def test_healthz_reports_database_broker_and_workers(client) -> None:
    response = client.get("/healthz", {"workers": "0"})
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok" and body["database"]["ok"] and body["broker"]["ok"]


def test_favicon_and_security_headers(client) -> None:
    favicon = client.get("/favicon.ico")
    assert favicon.status_code == 301 and favicon["Location"].endswith("favicon.svg")
    home = client.get("/")
    assert "default-src 'self'" in home["Content-Security-Policy"]
    assert home["X-Frame-Options"] == "DENY"
    assert home["X-Content-Type-Options"] == "nosniff"
    assert len(home["X-Request-ID"]) == 16


def test_a_proxys_request_id_is_kept_when_it_looks_like_one(client) -> None:
    assert client.get("/", HTTP_X_REQUEST_ID="abc-123")["X-Request-ID"] == "abc-123"
    assert client.get("/", HTTP_X_REQUEST_ID="<script>")["X-Request-ID"] != "<script>"


def test_rate_limits_key_visitors_by_the_trusted_proxy_header(rf, settings) -> None:
    request = rf.get("/", REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR="203.0.113.9, 10.0.0.7")
    assert ratelimit.client_address(request) == "10.0.0.1"  # no proxy configured: the peer
    settings.SEEDBANK_CLIENT_IP_HEADER = "X-Forwarded-For"
    assert ratelimit.client_address(request) == "10.0.0.7"  # the entry our proxy appended


def test_check_deploy_is_clean_with_the_documented_production_environment() -> None:
    env = {**os.environ, **PRODUCTION_ENV, "DJANGO_SETTINGS_MODULE": "config.settings"}
    env.pop("DJANGO_DEBUG", None)
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_embedded_postgres_is_tuned_for_index_builds_and_exact_sorts(db) -> None:
    from django.db import connection

    from config.embedded import TUNING, shared_buffers

    with connection.cursor() as cursor:
        for name, value in TUNING.items():
            cursor.execute(f"SHOW {name}")
            assert cursor.fetchone()[0] == value
        cursor.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'")
        major, minor = (int(part) for part in cursor.fetchone()[0].split(".")[:2])
        assert (major, minor) >= (0, 8)  # iterative index scans
        # shared_buffers takes effect when the server next starts: it is in the config files.
        cursor.execute(
            "SELECT setting FROM pg_file_settings WHERE name = 'shared_buffers' "
            "AND sourcefile LIKE '%%postgresql.auto.conf'"
        )
        assert cursor.fetchone()[0] == shared_buffers()


def test_shared_buffers_is_a_quarter_of_memory_within_bounds(monkeypatch) -> None:
    import psutil

    from config.embedded import shared_buffers

    class Memory:
        total = 0

    monkeypatch.delenv("SEEDBANK_PG_SHARED_BUFFERS", raising=False)
    monkeypatch.setattr(psutil, "virtual_memory", lambda: Memory)
    monkeypatch.setattr("config.embedded.cgroup_memory_limit", lambda: None)
    for total_gb, expected in [(0.25, "128MB"), (24, "6144MB"), (128, "8192MB")]:
        Memory.total = int(total_gb * 2**30)
        assert shared_buffers() == expected
    # A container's limit wins over the host's memory psutil reports.
    monkeypatch.setattr("config.embedded.cgroup_memory_limit", lambda: 2 * 2**30)
    assert shared_buffers() == "512MB"
    monkeypatch.setenv("SEEDBANK_PG_SHARED_BUFFERS", "2GB")
    assert shared_buffers() == "2GB"
