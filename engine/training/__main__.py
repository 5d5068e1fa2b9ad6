"""Train Seedbank's scene models into a folder (make models): python -m engine.training.

    python -m engine.training [--out models] [--force] [--check]

Writes seedbank-scenes-clip, seedbank-scenes-sd and seedbank-scenes-sd-outline, then the
resources made from them (engine.training.resources_build: the outline LoRA and two VAEs), then
DIGESTS (a model folder's weights digest, a resource folder's file sha256); folders already
there are kept unless --force. `--check` trains again into a scratch folder and compares
digests with the DIGESTS in --out: two runs on one machine give the same bytes.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

from engine.resources import file_sha256
from engine.training.clip import build_scenes_clip
from engine.training.diffusion import build_scenes_sd
from engine.training.resources_build import TRAINED_RESOURCES, build_resources
from engine.training.shipped import (
    CLIP_FOLDER,
    FOLDERS,
    OUTLINE_FOLDER,
    RESOURCE_FOLDERS,
    SD_FOLDER,
    read_digests,
    read_resource_digests,
    write_digests,
)
from engine.weights import weights_digest


def train_all(out: Path) -> dict[str, str]:
    """Train what is missing under `out`; return each folder's digest (DIGESTS' lines)."""
    started = time.perf_counter()
    build_scenes_clip(out / CLIP_FOLDER)
    print(f"CLIP ready after {time.perf_counter() - started:.0f} s", file=sys.stderr)
    build_scenes_sd(out / SD_FOLDER, out / OUTLINE_FOLDER)
    print(f"all models ready after {time.perf_counter() - started:.0f} s", file=sys.stderr)
    files = build_resources(out)
    print(f"resources ready after {time.perf_counter() - started:.0f} s", file=sys.stderr)
    digests = {folder: weights_digest(out / folder) for folder in FOLDERS}
    return digests | {folder: file_sha256(files[folder]) for folder in RESOURCE_FOLDERS}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("models"))
    parser.add_argument("--check", action="store_true", help="retrain elsewhere and compare")
    parser.add_argument("--force", action="store_true", help="retrain folders that exist")
    args = parser.parse_args()
    if args.force and not args.check:
        # The first VAE comes from git history, not training: it stays.
        for folder in (*FOLDERS, *TRAINED_RESOURCES):
            shutil.rmtree(args.out / folder, ignore_errors=True)
    if args.check:
        expected = read_digests(args.out) | read_resource_digests(args.out)
        with tempfile.TemporaryDirectory(prefix="seedbank-training-check-") as scratch:
            got = train_all(Path(scratch))
        names = (*FOLDERS, *RESOURCE_FOLDERS)
        differing = [name for name in names if got[name] != expected.get(name)]
        for name in names:
            print(f"{'same' if name not in differing else 'DIFFERS'}  {name}  {got[name]}")
        return 1 if differing else 0
    digests = train_all(args.out)
    write_digests(args.out, digests)
    for name, digest in digests.items():
        print(f"{digest}  {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
