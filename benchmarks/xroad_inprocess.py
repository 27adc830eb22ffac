"""CPU time per ``/xroad`` lookup of the bridge application called in-process (no gunicorn, no TCP).

Why: on a shared 2-core machine wall-clock load figures move by tens of percent between runs,
while the CPU a process spends for a fixed number of lookups moves by a few. This script builds
the real application (``create_app`` on a demo data folder, every access rule and the durable
message log on), sends it ``--lookups`` WSGI requests from ``--threads`` threads (so group commit
has something to group, as under gunicorn's threaded workers), and reports CPU milliseconds per
lookup (``time.process_time``: this process only, all its threads) next to the bare Spyne
baseline app (``spyne_baseline.application``) measured the same way in the same run.

``--profile FILE`` writes a cProfile of the bridge rounds (``python -m pstats FILE``) and prints
the top functions by cumulative time below ``BridgeApp.__call__``.

Example::

    .venv/bin/python benchmarks/xroad_inprocess.py --lookups 2000 --threads 8 --rounds 3
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import random
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from xroad_load import HEADERS, SEED, build_bodies, prepare_data, sample_person_codes  # noqa: E402

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Any]


def environ_for(body: bytes, path: str) -> dict[str, Any]:
    return {"REQUEST_METHOD": "POST", "PATH_INFO": path, "QUERY_STRING": "", "CONTENT_TYPE": HEADERS["Content-Type"],
            "CONTENT_LENGTH": str(len(body)), "HTTP_SOAPACTION": HEADERS["SOAPAction"], "SERVER_NAME": "127.0.0.1",
            "SERVER_PORT": "80", "REMOTE_ADDR": "127.0.0.1", "SERVER_PROTOCOL": "HTTP/1.1",
            "wsgi.input": io.BytesIO(body), "wsgi.url_scheme": "http", "wsgi.errors": sys.stderr,
            "wsgi.multithread": True, "wsgi.multiprocess": True, "wsgi.run_once": False, "wsgi.version": (1, 0)}


def call(app: WsgiApp, body: bytes, path: str) -> tuple[str, bytes]:
    status: list[str] = []

    def start_response(code: str, _headers: list[tuple[str, str]], _exc: Any = None) -> Callable[[bytes], None]:
        status.append(code)
        return lambda _data: None

    chunks = app(environ_for(body, path), start_response)
    data = b"".join(chunks)
    close = getattr(chunks, "close", None)
    if close:
        close()
    return status[0], data


def run(app: WsgiApp, bodies: list[bytes], path: str, lookups: int, threads: int,
        profile: cProfile.Profile | None = None) -> tuple[float, float, int]:
    """(CPU seconds, wall seconds, failures) for ``lookups`` calls spread over ``threads`` threads."""
    picks = [random.Random(SEED + i).randrange(len(bodies)) for i in range(lookups)]
    share = [picks[i::threads] for i in range(threads)]
    failures = [0]
    lock = threading.Lock()

    def worker(mine: list[int]) -> None:
        if profile is not None:
            profile.enable()  # cProfile profiles the thread that enables it (Python 3.11: per thread)
        for pick in mine:
            status, data = call(app, bodies[pick], path)
            if not status.startswith("200") or b"Fault>" in data:
                with lock:
                    failures[0] += 1
        if profile is not None:
            profile.disable()

    workers = [threading.Thread(target=worker, args=(mine,)) for mine in share]
    cpu0, wall0 = time.process_time(), time.perf_counter()
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join()
    return time.process_time() - cpu0, time.perf_counter() - wall0, failures[0]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lookups", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--size", type=int, default=10000)
    parser.add_argument("--data-dir", type=Path, default=None, help="reuse (or prepare) demo data here")
    parser.add_argument("--log-url", default=None, help="the message log (default: SQLite beside the store)")
    parser.add_argument("--profile", type=Path, default=None)
    parser.add_argument("--no-baseline", action="store_true")
    args = parser.parse_args(argv)

    data_dir = args.data_dir or Path(tempfile.mkdtemp(prefix="viss-inproc-"))
    prepare_data(data_dir, args.size, 1800)
    codes = sample_person_codes(data_dir, args.size, 5000, SEED)
    bodies = build_bodies(data_dir, codes)

    from viss_bridge.config import Settings
    from viss_bridge.demo.seed import demo_paths
    from viss_bridge.server import create_app
    from viss_bridge.serving import tune_garbage_collection

    paths = demo_paths(data_dir)
    os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", tempfile.mkdtemp(prefix="viss-inproc-metrics-"))
    settings = Settings(database_url=paths.database_url, catalog_dir=str(paths.catalog_dir),
                        trust_client_header=True, log_level="WARNING",
                        **({"log_database_url": args.log_url} if args.log_url else {}))
    bridge = create_app(settings)
    baseline: WsgiApp | None = None
    if not args.no_baseline:
        from spyne_baseline import application as baseline
    tune_garbage_collection()
    for app, path in ((bridge, "/xroad"), *(((baseline, "/"),) if baseline else ())):
        run(app, bodies, path, 200, args.threads)  # warm-up: build per-dataset apps, fill caches
    profile = cProfile.Profile() if args.profile else None
    figures: dict[str, list[float]] = {"bridge": [], "baseline": []}
    for round_no in range(args.rounds):
        for name, app, path in (("bridge", bridge, "/xroad"), *((("baseline", baseline, "/"),) if baseline else ())):
            cpu, wall, failed = run(app, bodies, path, args.lookups, args.threads,
                                    profile if name == "bridge" and round_no == 0 else None)
            figures[name].append(cpu * 1000 / args.lookups)
            print(f"round {round_no + 1} {name:8s}: {cpu * 1000 / args.lookups:6.3f} ms CPU/lookup, "
                  f"{args.lookups / wall:7.1f} lookups/s wall, {failed} failed", flush=True)
    print(f"load average {os.getloadavg()}")
    for name, values in figures.items():
        if values:
            print(f"{name:8s} median {sorted(values)[len(values) // 2]:.3f} ms CPU/lookup (rounds: "
                  + ", ".join(f"{v:.3f}" for v in values) + ")")
    if figures["baseline"]:
        ratio = sorted(figures["bridge"])[len(figures["bridge"]) // 2] / sorted(figures["baseline"])[
            len(figures["baseline"]) // 2]
        print(f"bridge/baseline CPU per lookup: {ratio:.2f}x")
    log = getattr(bridge, "msglog", None)
    if log is not None and log.commits:
        print(f"message log: {log.committed_calls} exchanges in {log.commits} commits "
              f"({log.committed_calls / log.commits:.1f} per commit)")
    if profile is not None and args.profile is not None:
        profile.dump_stats(str(args.profile))
        stats = pstats.Stats(str(args.profile))
        stats.sort_stats("cumulative").print_stats(45)
        stats.sort_stats("tottime").print_stats(30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
