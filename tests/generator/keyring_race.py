"""A process that makes the site's credential when told to (no Django: spawned children import
only this), for the test that several processes starting at once make one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from engine.provenance.credentials import Keyring


def ensure_after_barrier(directory: str, barrier: Any, results: Any) -> None:
    barrier.wait()
    results.put(Keyring(Path(directory)).ensure("Seedbank").fingerprint)
