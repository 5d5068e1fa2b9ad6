"""Keyword tokens for Postgres full-text search, Chinese included (Django-free).

The embedded Postgres has no Chinese parser (no zhparser), so Chinese is segmented here with
jieba (search mode: 窗台上 also yields 窗台 and 台上) and indexed with the `simple` config. English
is also indexed with the `english` config, so "cats" finds "cat".
"""

from __future__ import annotations

import functools
import logging
import re

_WORD = re.compile(r"\w", re.UNICODE)


@functools.cache
def _jieba():  # type: ignore[no-untyped-def]
    import jieba

    jieba.setLogLevel(logging.WARNING)  # it announces its dictionary load at INFO
    jieba.initialize()
    return jieba


def segment(text: str) -> str:
    """Space-separated lowercase tokens: words of any script, Chinese split into words."""
    tokens = (token.strip().lower() for token in _jieba().cut_for_search(text))
    return " ".join(token for token in tokens if token and _WORD.search(token))
