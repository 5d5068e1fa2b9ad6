"""requirements.lock pins every dependency pyproject.toml names, each with hashes (`make lock`)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


def _name(requirement: str) -> str:
    return re.split(r"[\s<>=!~\[;]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def test_every_dependency_is_pinned_with_hashes() -> None:
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    wanted = {
        _name(r) for r in [*project["dependencies"], *project["optional-dependencies"]["dev"]]
    }
    lock = (REPO_ROOT / "requirements.lock").read_text()
    pinned = dict(re.findall(r"^([a-z0-9][a-z0-9._-]*)==(\S+) \\\n\s+--hash=sha256:", lock, re.M))
    pinned = {name.lower().replace("_", "-"): version for name, version in pinned.items()}
    missing = sorted(name for name in wanted if name not in pinned)
    assert missing == [], f"run `make lock`: {missing} are not in requirements.lock"
    assert pinned["torch"].startswith("2.13.0")  # the CPU build; GPU hosts lock their own
