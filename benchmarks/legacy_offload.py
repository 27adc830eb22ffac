"""How much replication relieves a legacy provider: consumer calls served per provider call.

Starts the demo persons provider (in this process) and a bridge (`viss-bridge serve`, gunicorn)
on loopback, with two datasets over the same register:

* ``fpr_person_live``     every consumer lookup is a live zeep call to the provider;
* ``fpr_person_replica``  `viss-bridge sync` copies the register into the store; lookups read the store.

Then sends the same consumer calls (X-Road 4.0 lookups, a realistic mix of repeated keys) to each
and counts, on the provider's own counter, the SOAP calls it received, the sync included.

    .venv/bin/python benchmarks/legacy_offload.py [--calls 2000] [--threads 4] [--size 1000]
"""

from __future__ import annotations

import argparse
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from viss_bridge.catalog.catalog import load_catalog  # noqa: E402
from viss_bridge.demo.legacy_catalog import legacy_manifest  # noqa: E402
from viss_bridge.demo.legacy_providers import start_provider  # noqa: E402
from viss_bridge.demo.seed import DEMO_CLIENTS, prepare_demo  # noqa: E402
from viss_bridge.facade.xroad import lookup_request  # noqa: E402

CLIENT = DEMO_CLIENTS[0].client_id


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run(command: list[str], env: dict[str, str]) -> str:
    result = subprocess.run([sys.executable, "-m", "viss_bridge.cli", *command], env=env, cwd=ROOT,
                            capture_output=True, text=True, timeout=600)
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{result.stdout}\n{result.stderr}")
    return result.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--size", type=int, default=1000, help="persons in the synthetic register")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="viss-bridge-offload-"))
    paths, _ = prepare_demo(work, size=args.size)
    provider = start_provider("persons", size=args.size)
    for mode in ("live", "replicated"):
        manifest = legacy_manifest("persons", provider.url, mode)
        manifest["source"]["changes"]["page_size"] = 500
        (paths.catalog_dir / f"{manifest['dataset']}.yaml").write_text(yaml.safe_dump(manifest, allow_unicode=True))
    env = dict(os.environ, VISS_BRIDGE_DATABASE_URL=paths.database_url, VISS_BRIDGE_CATALOG_DIR=str(paths.catalog_dir),
               VISS_BRIDGE_LOG_LEVEL="WARNING")
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    for name in ("fpr_person_live", "fpr_person_replica"):
        run(["clients", "grant", CLIENT, name], env)

    provider.reset()
    started = time.perf_counter()
    sync_output = run(["sync", "fpr_person_replica"], env)
    sync_seconds = time.perf_counter() - started
    sync_calls = sum(provider.calls().values())

    port = free_port()
    log = open(work / "bridge.log", "wb")
    bridge = subprocess.Popen([sys.executable, "-m", "viss_bridge.cli", "serve", "--port", str(port), "--workers",
                               str(args.workers)], env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if requests.get(url + "/health", timeout=1).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline or bridge.poll() is not None:
                raise SystemExit(f"bridge did not start; see {work / 'bridge.log'}")
            time.sleep(0.2)
        catalog = load_catalog(paths.catalog_dir)
        codes = sorted(provider.state.records)
        rng = random.Random(7)
        # a consumer population that asks about some persons often and most rarely (Zipf-like)
        weights = [1 / (i + 1) for i in range(len(codes))]
        keys = rng.choices(codes, weights=weights, k=args.calls)
        session = requests.Session()
        results = {}
        for name in ("fpr_person_live", "fpr_person_replica"):
            dataset = catalog.get(name)
            bodies = [lookup_request(dataset, CLIENT, {"person_code": k}, str(uuid.uuid4())) for k in keys]
            # warm up (zeep client and WSDL per worker; first sqlite reads)
            for body in bodies[:20]:
                session.post(url + "/xroad", data=body, headers={"Content-Type": "text/xml"}, timeout=30)
            provider.reset()
            latencies: list[float] = []

            def call(body: bytes) -> None:
                t = time.perf_counter()
                response = requests.post(url + "/xroad", data=body, headers={"Content-Type": "text/xml"}, timeout=30)
                latencies.append(time.perf_counter() - t)
                if response.status_code != 200:
                    raise SystemExit(f"{name}: HTTP {response.status_code}: {response.text[:300]}")

            t0 = time.perf_counter()
            with ThreadPoolExecutor(args.threads) as pool:
                list(pool.map(call, bodies))
            elapsed = time.perf_counter() - t0
            results[name] = (sum(provider.calls().values()), elapsed, latencies)
    finally:
        bridge.terminate()
        bridge.wait(15)
        provider.stop()

    live_calls, live_s, live_lat = results["fpr_person_live"]
    repl_calls, repl_s, repl_lat = results["fpr_person_replica"]

    def ratio(consumer: int, provider_calls: int) -> str:
        return f"{consumer / provider_calls:,.1f}" if provider_calls else " ∞ (none)"

    print(f"register: {args.size} persons; consumer calls per dataset: {args.calls}; {args.threads} client threads; "
          f"{args.workers} gunicorn workers")
    print(f"sync (full, page 500): {sync_calls} provider calls in {sync_seconds:.2f} s  [{sync_output.strip()}]")
    print()
    print(f"{'path':<28}{'provider calls':>16}{'consumer/provider':>20}{'calls/s':>10}{'p50 ms':>9}{'p95 ms':>9}")
    for label, calls, seconds, lat in (("live (zeep per lookup)", live_calls, live_s, live_lat),
                                       ("replicated (store)", repl_calls, repl_s, repl_lat)):
        lat_ms = sorted(x * 1000 for x in lat)
        print(f"{label:<28}{calls:>16}{ratio(args.calls, calls):>20}{args.calls / seconds:>10.0f}"
              f"{statistics.median(lat_ms):>9.1f}{lat_ms[int(len(lat_ms) * 0.95)]:>9.1f}")
    amortised = repl_calls + sync_calls
    print(f"{'replicated incl. the sync':<28}{amortised:>16}{ratio(args.calls, amortised):>20}")
    print()
    print(f"provider calls per consumer call: live {live_calls / args.calls:.3f}, "
          f"replicated {repl_calls / args.calls:.3f} (with one full sync amortised over these calls: "
          f"{amortised / args.calls:.4f})")


if __name__ == "__main__":
    main()
