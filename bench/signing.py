"""Content Credentials: what signing adds to storing a picture, and what reading one costs.

    .venv/bin/python bench/signing.py [--pictures 12]

Pictures: held-out demo scenes drawn at each size with film grain (as bench/previews.py).
Baseline, same run: the PNG encode every render already does (engine.png_files.png_bytes).
Signing (engine.provenance.signing.sign_png: XMP in, a C2PA manifest hashed over the file and
signed with ES256) is a ratio to it and an absolute figure per picture; also the bytes it adds
and reading a signed picture back (engine.provenance.reading.read_picture: validate, decode,
pixel sha256), as the "check a picture" page does.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.previews import picture
from engine.png_files import pixel_sha256, png_bytes
from engine.provenance.credentials import make_self_signed
from engine.provenance.reading import read_picture
from engine.provenance.signing import Claim, sign_png
from engine.provenance.xmp import TRAINED_ALGORITHMIC_MEDIA


def median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pictures", type=int, default=12)
    arguments = parser.parse_args()
    credential = make_self_signed("Seedbank bench")
    print(f"{platform.processor() or platform.machine()}, {arguments.pictures} pictures per size")
    print("| size | PNG encode (baseline) | signing | ratio | bytes added | reading back |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for size in (64, 256, 512, 1024):
        encode, sign, read, added = [], [], [], []
        for index in range(arguments.pictures):
            image = picture(index, size)
            claim = Claim(
                title=f"seedbank-{index}.png",
                action="c2pa.created",
                digital_source_type=TRAINED_ALGORITHMIC_MEDIA,
                software="Seedbank 0.1.0",
                recipe={"recipe": {"prompt": "a red circle"}, "pixel_sha256": pixel_sha256(image)},
                made_with={"model": {"name": "scene", "digest": "0" * 64}},
            )
            started = time.perf_counter()
            png = png_bytes(image, {"seedbank": '{"seed":1}'})
            encode.append(time.perf_counter() - started)
            started = time.perf_counter()
            signed = sign_png(png, claim, credential)
            sign.append(time.perf_counter() - started)
            added.append(len(signed) - len(png))
            started = time.perf_counter()
            report = read_picture(
                signed, trust_anchors=[credential.anchor_pem], max_pixels=1 << 26, max_bytes=1 << 28
            )
            read.append(time.perf_counter() - started)
            assert report.credentials is not None and report.credentials.state == "trusted"
        ratio = statistics.median(sign) / statistics.median(encode)
        print(
            f"| {size}² | {median_ms(encode):.1f} ms | {median_ms(sign):.2f} ms | {ratio:.2f}× "
            f"| {statistics.median(added) / 1000:.1f} KB | {median_ms(read):.1f} ms |"
        )


if __name__ == "__main__":
    main()
