"""Web workers load the CLIP text model from a thread while they already serve: a search that
comes meanwhile waits for that load instead of starting a second one."""

from __future__ import annotations

import functools
import threading
import time

import numpy as np

from engine import embedder
from search.selectors import query_vectors as selectors


def test_threads_asking_at_once_load_the_text_model_once(monkeypatch) -> None:
    loads: list[str] = []

    @functools.lru_cache(maxsize=2)  # as engine.embedder caches it
    def slow_load(path: str) -> None:
        loads.append(path)
        time.sleep(0.3)

    monkeypatch.setattr(embedder, "load", slow_load)
    monkeypatch.setattr(embedder, "embed_texts", lambda path, texts: np.ones((1, 4)))
    selectors._text_vector_cached.cache_clear()
    try:
        threads = [
            threading.Thread(target=selectors._text_vector_cached, args=("/clip", f"query {n}"))
            for n in range(4)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        assert loads == ["/clip"]
        assert list(selectors._text_vector_cached("/clip", "query 0")) == [1.0] * 4
    finally:
        selectors._text_vector_cached.cache_clear()
