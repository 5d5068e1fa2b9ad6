"""How Seedbank starts Debian chromium under Playwright (browser tests, `make screenshots`)."""

import os

CHROMIUM = os.environ.get("SEEDBANK_CHROMIUM", "/usr/bin/chromium")
# Without these, chromium keeps trying to reach Google's hosts, which this network refuses.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
