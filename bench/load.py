"""Loopback load against a running Seedbank (`make run`): N clients browse, search, open records
and call the APIs for a fixed time while the worker renders; then the site must answer normally.

    .venv/bin/python bench/load.py --clients 200 --seconds 60

Stops by itself (time- and count-bounded) and only talks to a loopback address. A baseline of
one client (each endpoint ten times, after a warm-up request) runs first, so the table prints
each endpoint's p50 under load as a ratio of its unloaded p50 (same machine, same run) beside
absolute figures. Searches are rate
limited per address (all clients here share 127.0.0.1): start the site with a high
SEEDBANK_RATE_SEARCH_PER_MINUTE to measure serving rather than the limiter; 429s are counted.
"""

from __future__ import annotations

import argparse
import collections
import ipaddress
import random
import re
import statistics
import sys
import threading
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import requests

MAX_REQUESTS = 200_000  # a hard stop whatever the duration
RENDER_EVERY_SECONDS = 7.0  # under the default 10 renders per minute per user


@dataclass
class Tally:
    latencies: dict[str, list[float]] = field(default_factory=lambda: collections.defaultdict(list))
    statuses: dict[str, collections.Counter[str]] = field(
        default_factory=lambda: collections.defaultdict(collections.Counter)
    )
    lock: threading.Lock = field(default_factory=threading.Lock)
    count: int = 0

    def add(self, name: str, status: str, seconds: float | None) -> None:
        with self.lock:
            self.count += 1
            self.statuses[name][status] += 1
            if seconds is not None:
                self.latencies[name].append(seconds)


def discover(base: str) -> dict[str, str]:
    """Endpoints to hit, with real record ids and a real page-2 cursor from the home page."""
    home = requests.get(base + "/", timeout=30).text
    ids = re.findall(r'href="/images/(\d+)/"', home) or ["1"]
    cursor = re.search(r'href="/\?before=([^"&]+)"', home)
    return {
        "home": "/",
        "page 2": f"/?before={cursor.group(1)}" if cursor else "/",
        "detail": f"/images/{ids[0]}/",
        "detail (another)": f"/images/{ids[-1]}/",
        "search page": "/search/?q=cat",
        "api search (Lexica)": "/api/v1/search?q=cat",
        "api images": "/api/v1/images?q=lighthouse&limit=12",
    }


def client(base: str, paths: dict[str, str], deadline: float, timeout: float, tally: Tally,
           seed: int) -> None:  # fmt: skip
    chooser = random.Random(seed)
    names = list(paths)
    with requests.Session() as session:
        while time.monotonic() < deadline and tally.count < MAX_REQUESTS:
            name = chooser.choice(names)
            started = time.perf_counter()
            try:
                response = session.get(base + paths[name], timeout=timeout)
            except requests.Timeout:
                tally.add(name, "timeout", None)
                continue
            except requests.RequestException as exc:
                tally.add(name, type(exc).__name__, None)
                continue
            tally.add(name, str(response.status_code), time.perf_counter() - started)


def renderer(base: str, user: str, password: str, deadline: float, tally: Tally) -> None:
    """Keeps the worker busy: signs in and submits a small recipe every few seconds."""
    session = requests.Session()
    session.get(base + "/accounts/login/", timeout=30)
    session.post(
        base + "/accounts/login/",
        data={"username": user, "password": password,
              "csrfmiddlewaretoken": session.cookies.get("csrftoken", "")},
        headers={"Referer": base + "/accounts/login/"}, timeout=30,
    )  # fmt: skip
    while time.monotonic() < deadline:
        started = time.perf_counter()
        response = session.post(
            base + "/api/v1/renders",
            json={"prompt": "a lighthouse at dusk", "steps": 20},
            headers={"X-CSRFToken": session.cookies.get("csrftoken", ""), "Referer": base + "/"},
            timeout=30,
        )
        tally.add("api render (POST)", str(response.status_code), time.perf_counter() - started)
        time.sleep(RENDER_EVERY_SECONDS)


def run(base: str, paths: dict[str, str], clients: int, seconds: float, timeout: float,
        render_as: tuple[str, str] | None) -> tuple[Tally, float]:  # fmt: skip
    tally = Tally()
    deadline = time.monotonic() + seconds
    threads = [
        threading.Thread(
            target=client, args=(base, paths, deadline, timeout, tally, n), daemon=True
        )
        for n in range(clients)
    ]
    if render_as:
        threads.append(threading.Thread(
            target=renderer, args=(base, *render_as, deadline, tally), daemon=True))  # fmt: skip
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=seconds + timeout + 30)
    return tally, time.monotonic() - started


def measure_baseline(base: str, paths: dict[str, str], repeats: int, timeout: float) -> Tally:
    """One client, each endpoint in turn after a warm-up request (the first vector search of a
    web process loads the CLIP model)."""
    tally = Tally()
    with requests.Session() as session:
        for name, path in paths.items():
            session.get(base + path, timeout=timeout)
            for _ in range(repeats):
                started = time.perf_counter()
                response = session.get(base + path, timeout=timeout)
                tally.add(name, str(response.status_code), time.perf_counter() - started)
    return tally


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else float("nan")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--timeout", type=float, default=30.0, help="client time-out per request")
    parser.add_argument("--baseline-requests", type=int, default=10, help="per endpoint, 1 client")
    parser.add_argument("--user", default="demo", help="renders as this user during the load")
    parser.add_argument("--password", default="seedbank-demo")
    parser.add_argument("--no-render", action="store_true")
    args = parser.parse_args()
    base = args.url.rstrip("/")
    host = urlsplit(base).hostname or ""
    if host != "localhost" and not ipaddress.ip_address(host).is_loopback:
        sys.exit("bench/load.py only loads a loopback address")

    paths = discover(base)
    baseline = measure_baseline(base, paths, args.baseline_requests, args.timeout)
    render_as = None if args.no_render else (args.user, args.password)
    tally, elapsed = run(base, paths, args.clients, args.seconds, args.timeout, render_as)
    time.sleep(10)
    after = requests.get(base + "/", timeout=args.timeout)

    print(f"\n{args.clients} clients for {args.seconds:.0f} s against {base} "
          f"({tally.count} requests, {tally.count / elapsed:.1f} req/s)")  # fmt: skip
    print(f"{'endpoint':22} {'n':>6} {'req/s':>6} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} "
          f"{'p50/base':>8}  statuses")  # fmt: skip
    for name in sorted(tally.statuses):
        times = tally.latencies[name]
        unloaded = baseline.latencies.get(name)
        ratio = statistics.median(times) / statistics.median(unloaded) if times and unloaded else 0
        statuses = " ".join(f"{code}:{n}" for code, n in sorted(tally.statuses[name].items()))
        count = sum(tally.statuses[name].values())
        print(f"{name:22} {count:6d} {count / elapsed:6.1f} {percentile(times, .5) * 1e3:8.0f} "
              f"{percentile(times, .95) * 1e3:8.0f} {percentile(times, .99) * 1e3:8.0f} "
              f"{ratio:8.2f}  {statuses}")  # fmt: skip
    all_statuses: collections.Counter[str] = collections.Counter()
    for counts in tally.statuses.values():
        all_statuses.update(counts)
    errors = sum(n for code, n in all_statuses.items() if not code.isdigit() or int(code) >= 500)
    print(f"\nresponses >= 500 or failed: {errors}; time-outs: {all_statuses['timeout']}; "
          f"home 10 s after the load: {after.status_code}")  # fmt: skip
    return 0 if errors == 0 and after.status_code == 200 else 1


if __name__ == "__main__":
    sys.exit(main())
