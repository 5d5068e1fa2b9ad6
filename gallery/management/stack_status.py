"""What `make run`'s supervisor last saw of its children, as a JSON file the health page reads.

`SEEDBANK_VAR_DIR/run/stack.json`, rewritten whole (a temporary file, then os.replace: a reader
never sees half a file) whenever a child starts, exits or backs off, and at least every
STATUS_EVERY_S seconds, so a file older than STALE_AFTER_S means the supervisor is gone:

    {"updated": 1767225600.0, "supervisor_pid": 4242,
     "children": {"web server": {"state": "running", "pid": 4250, "restarts_last_minute": 0,
                                 "last_exit_code": null, "next_start_in_s": null,
                                 "detail": "running (pid 4250) for 12 s"}}}

state is "running", "backing off" (crash loop: started again in next_start_in_s) or "stopped".
Standard library only (no Django, nothing from gallery): config/health.py imports it.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

STATUS_FILE = "stack.json"
STATUS_EVERY_S = 5.0
# Three missed rewrites: the supervisor is gone (killed), whatever the file still says.
STALE_AFTER_S = 15.0


def write_stack_status(path: Path, *, supervisor_pid: int, children: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    status = {"updated": time.time(), "supervisor_pid": supervisor_pid, "children": children}
    partial = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    partial.write_text(json.dumps(status, indent=1))
    os.replace(partial, path)


def read_stack_status(path: Path) -> dict[str, Any] | None:
    """The last status written, or None when there is none (no `make run` on this var dir, or
    it stopped cleanly) or it cannot be read. Judge "updated" with stack_status_stale."""
    try:
        status = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(status, dict) or not isinstance(status.get("children"), dict):
        return None
    return status


def stack_status_stale(status: dict[str, Any], *, now: float | None = None) -> bool:
    """True when the supervisor stopped rewriting the file: it was killed, and what the file
    says of the children no longer holds."""
    updated = status.get("updated")
    if not isinstance(updated, int | float):
        return True
    return (time.time() if now is None else now) - updated > STALE_AFTER_S
