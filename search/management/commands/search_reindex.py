"""Rebuild the vector index without blocking searches, with progress.

After a bulk import or a large re-embed: one build with enough memory and parallel workers
costs a fraction of what as many single-row graph inserts do, and gives a better graph.
"""

import threading
import time

from django.core.management.base import BaseCommand, CommandParser
from django.db import connection
from tqdm import tqdm

from search.services import embedding_index_progress, embedding_index_rebuild


class Command(BaseCommand):
    help = "Rebuild the HNSW index over the image vectors (REINDEX CONCURRENTLY), with progress."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--workers", type=int, help="parallel workers (default: cores - 1)")

    def handle(self, *args: object, workers: int | None, **_: object) -> None:
        done = threading.Event()

        def watch() -> None:
            # Its own connection (Django's are per thread): the build's shows no progress.
            bar = tqdm(desc="HNSW build", unit=" rows", unit_scale=True)
            try:
                while not done.wait(1.0):
                    progress = embedding_index_progress()
                    if progress is not None:
                        phase, tuples, total = progress
                        bar.set_postfix_str(phase)
                        bar.total = total or None
                        bar.n = tuples
                        bar.refresh()
            finally:
                bar.close()
                connection.close()

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        started = time.perf_counter()
        try:
            memory = embedding_index_rebuild(workers=workers)
        finally:
            done.set()
            watcher.join()
        self.stdout.write(
            f"Vector index rebuilt in {time.perf_counter() - started:.1f} s "
            f"(maintenance_work_mem {memory} MB)."
        )
