"""A local secret key for installs that set none (make run, tests): made once, kept private."""

from __future__ import annotations

import os
import secrets
from pathlib import Path


def local_secret_key(var_dir: Path) -> str:
    path = var_dir / "secret_key"
    if not path.is_file():
        var_dir.mkdir(parents=True, exist_ok=True)
        # O_EXCL: two processes starting at once keep the first key written, not two.
        try:
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(descriptor, "w") as handle:
                handle.write(secrets.token_urlsafe(50))
    return path.read_text().strip()
