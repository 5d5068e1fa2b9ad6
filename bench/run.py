"""Run every benchmark: `make bench`."""

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

RUNS = [
    ["render.py"],
    ["overhead.py"],
    ["embedding.py"],
    ["vector_index.py"],
    ["search.py", "--sizes", "100000"],  # 1M: `bench/search.py` (its default), ~15 min to load
    ["keyword.py"],
    ["models.py"],
    ["imports.py"],
    ["previews.py"],
    ["signing.py"],
]
for script, *arguments in RUNS:
    print(f"== {script} {' '.join(arguments)}", flush=True)
    subprocess.run([sys.executable, str(HERE / script), *arguments], check=True)
