"""All of VISS on one node: 745 generated manifests, start time, memory, reload-to-served time and stalls.

VISS had 745 services, most with 5-40 fields and nested lists. This script writes that many
manifests (deterministic, ``--seed``), starts a real ``viss-bridge serve`` on them and prints:

- seconds from start until ``/health`` answers 200, and every worker's RSS then;
- ``catalog validate`` of the whole folder (seconds);
- for each of ``--reloads`` edits of one manifest (a new field): seconds until every worker serves
  the new version (the field appears in that service's WSDL from each worker), and the longest
  time any other request waited meanwhile (a client looping on lookups and ``?wsdl``);
- how long until every worker serves the whole ``/xroad?wsdl`` and ``/catalog?wsdl`` (built by each
  worker's watcher after start), and the RSS then (the base of the growth figure);
- worker RSS after the reloads (growth in percent from the RSS with the whole WSDLs built), and whether
  the whole WSDLs of the last version show the last edit;
- the same start, on the same machine in the same run, of a catalog of 5 manifests (the baseline).

Usage::

    .venv/bin/python benchmarks/many_datasets.py                   # 745 datasets, 2 workers, 20 reloads
    .venv/bin/python benchmarks/many_datasets.py --datasets 100 --reloads 5 --output /tmp/many.json
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parents[1]
TYPES = ("string", "integer", "decimal", "boolean", "date", "datetime")


def write_manifests(folder: Path, count: int, seed: int = 745) -> list[str]:
    """``count`` manifests shaped like VISS's services: 5-40 fields, about two thirds with a nested list."""
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    names = []
    for index in range(count):
        name = f"svc_{index:03d}"
        names.append(name)
        lines = [f"dataset: {name}", "version: v1",
                 f'title: {{lv: "Pakalpojums {index}", en: "Service {index}"}}',
                 f"owner: LV/GOV/9000{index % 73:07d}/REG{index % 73}", "key: [code]", "access: restricted",
                 "fields:", "  - {name: code, type: string, required: true, max_length: 20}"]
        for f in range(rng.randint(4, 39)):
            lines.append(f"  - {{name: f{f}, type: {rng.choice(TYPES)}}}")
        if rng.random() < 0.66:
            lines.append("  - name: items")
            lines.append("    type: list")
            lines.append("    fields:")
            for f in range(rng.randint(2, 8)):
                lines.append(f"      - {{name: i{f}, type: {rng.choice(TYPES)}}}")
        lines += ["source:", "  kind: store", ""]
        (folder / f"{name}.yaml").write_text("\n".join(lines), encoding="utf-8")
    return names


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split()]


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


class Bridge:
    def __init__(self, catalog: Path, data: Path, workers: int) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = dict(os.environ, VISS_BRIDGE_DATABASE_URL=f"sqlite:///{data / 'bridge.sqlite'}",
                   VISS_BRIDGE_CATALOG_DIR=str(catalog), VISS_BRIDGE_RELOAD_INTERVAL="0.2",
                   VISS_BRIDGE_TRUST_CLIENT_HEADER="true", VISS_BRIDGE_LOG_LEVEL="WARNING")
        env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        self.log = open(data / "bridge.log", "ab")
        self.started = time.monotonic()
        self.process = subprocess.Popen([sys.executable, "-m", "viss_bridge.cli", "serve", "--port", str(self.port),
                                         "--workers", str(workers)], env=env, stdout=self.log,
                                        stderr=subprocess.STDOUT, cwd=ROOT)
        self.workers = workers

    def wait_healthy(self, timeout: float = 300) -> float:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"bridge exited; see {self.log.name}")
            try:
                if requests.get(f"{self.url}/health", timeout=2).status_code == 200:
                    return time.monotonic() - self.started
            except requests.RequestException:
                pass
            time.sleep(0.05)
        raise RuntimeError("bridge did not become healthy")

    def worker_rss(self) -> list[float]:
        return [round(_rss_mb(pid), 1) for pid in _children(self.process.pid)]

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.log.close()


class Prober(threading.Thread):
    """Keeps asking for one service's WSDL (a fresh connection each time) and records the longest wait."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.longest = 0.0
        self.errors = 0
        self.stop_event = threading.Event()

    def run(self) -> None:
        while not self.stop_event.is_set():
            started = time.monotonic()
            try:
                ok = requests.get(self.url, timeout=60, headers={"Connection": "close"}).status_code == 200
            except requests.RequestException:
                ok = False
            self.errors += 0 if ok else 1
            self.longest = max(self.longest, time.monotonic() - started)

    def take(self) -> tuple[float, int]:
        longest, errors, self.longest, self.errors = self.longest, self.errors, 0.0, 0
        return longest, errors


def reload_to_served(bridge: Bridge, catalog: Path, name: str, round_: int, timeout: float = 120) -> float:
    """Edit ``name`` (one more field) and wait until every worker's WSDL of it shows the field."""
    path = catalog / f"{name}.yaml"
    text = path.read_text(encoding="utf-8")
    marker = f"reload_{round_}"
    path.write_text(text.replace("fields:\n", f"fields:\n  - {{name: {marker}, type: string}}\n", 1), encoding="utf-8")
    started = time.monotonic()
    seen_new = 0
    while time.monotonic() - started < timeout:
        # Fresh connections spread over the workers; 4 x workers consecutive new answers: all have it.
        answer = requests.get(f"{bridge.url}/xroad?wsdl&service={name}", timeout=60, headers={"Connection": "close"})
        seen_new = seen_new + 1 if marker.encode() in answer.content else 0
        if seen_new >= 4 * bridge.workers:
            return time.monotonic() - started
        time.sleep(0.01)
    raise RuntimeError(f"{name}: the edit was not served within {timeout} s")


def measure(count: int, workers: int, reloads: int, keep: Path | None) -> dict[str, Any]:
    base = keep or Path(tempfile.mkdtemp(prefix="vb-many-"))
    catalog, data = base / f"catalog-{count}", base / f"data-{count}"
    shutil.rmtree(catalog, ignore_errors=True)
    shutil.rmtree(data, ignore_errors=True)
    data.mkdir(parents=True)
    names = write_manifests(catalog, count)
    started = time.monotonic()
    subprocess.run([sys.executable, "-m", "viss_bridge.cli", "catalog", "validate", str(catalog)],
                   check=True, capture_output=True, cwd=ROOT)
    validate = time.monotonic() - started
    # A first start on one worker creates the database (two workers creating a fresh SQLite schema at
    # once can race, and the figure wanted is a restart on a node that has its database).
    prepare = Bridge(catalog, data, 1)
    try:
        prepare.wait_healthy()
    finally:
        prepare.stop()
    bridge = Bridge(catalog, data, workers)
    try:
        start = bridge.wait_healthy()
        rss_start = bridge.worker_rss()
        first_wsdl = time.monotonic()
        requests.get(f"{bridge.url}/xroad?wsdl&service={names[0]}", timeout=120).raise_for_status()
        first_wsdl = time.monotonic() - first_wsdl
        # The whole WSDLs (every dataset) are built by each worker's watcher after start; a request waits for it.
        whole = time.monotonic()
        for _ in range(4 * workers):
            for path in ("/xroad?wsdl", "/catalog?wsdl"):
                while True:  # 503 + Retry-After: that worker's start-up build is not done yet
                    answer = requests.get(f"{bridge.url}{path}", timeout=300, headers={"Connection": "close"})
                    if answer.status_code != 503 or time.monotonic() - whole > 900:
                        answer.raise_for_status()
                        break
                    time.sleep(1)
        whole = time.monotonic() - whole
        rss_warm = bridge.worker_rss()
        prober = Prober(f"{bridge.url}/xroad?wsdl&service={names[-1]}")
        prober.start()
        rounds = []
        for round_ in range(reloads):
            prober.take()
            seconds = reload_to_served(bridge, catalog, names[round_ % len(names)], round_)
            longest, errors = prober.take()
            rounds.append({"reload_to_served_s": round(seconds, 3), "longest_stall_s": round(longest, 3),
                           "errors": errors})
        prober.stop_event.set()
        rss_end = bridge.worker_rss()
        # The whole WSDLs of the last version carry the last edit too (composed before it was swapped in).
        marker = f"reload_{reloads - 1}".encode()
        whole_current = all(marker in requests.get(f"{bridge.url}{path}", timeout=60).content
                            for path in ("/xroad?wsdl", "/catalog?wsdl")) if reloads else None
    finally:
        bridge.stop()
    growth = [round(100 * (b - a) / a, 1) for a, b in zip(rss_warm, rss_end)] if rss_warm else []
    served = sorted(r["reload_to_served_s"] for r in rounds)
    stalls = sorted(r["longest_stall_s"] for r in rounds)
    return {"datasets": count, "workers": workers, "validate_s": round(validate, 3), "start_s": round(start, 3),
            "first_service_wsdl_s": round(first_wsdl, 3), "whole_wsdls_ready_s": round(whole, 3),
            "rss_start_mb": rss_start, "rss_warm_mb": rss_warm, "rss_end_mb": rss_end,
            "rss_growth_percent": growth, "reloads": rounds, "whole_wsdls_current": whole_current,
            "reload_to_served_median_s": served[len(served) // 2] if served else None,
            "reload_to_served_max_s": served[-1] if served else None,
            "longest_stall_median_s": stalls[len(stalls) // 2] if stalls else None,
            "longest_stall_max_s": stalls[-1] if stalls else None,
            "errors_during_reloads": sum(r["errors"] for r in rounds)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", type=int, default=745)
    parser.add_argument("--baseline-datasets", type=int, default=5)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--reloads", type=int, default=20)
    parser.add_argument("--keep", type=Path, help="keep the generated catalogs and logs here")
    parser.add_argument("--output", type=Path)
    args = parser.parse_args()
    results = {"baseline": measure(args.baseline_datasets, args.workers, min(args.reloads, 3), args.keep),
               "all_of_viss": measure(args.datasets, args.workers, args.reloads, args.keep)}
    for label, figures in results.items():
        print(f"{label}: {figures['datasets']} datasets, {figures['workers']} workers")
        print(f"  catalog validate        {figures['validate_s']:.2f} s")
        print(f"  start until /health ok  {figures['start_s']:.2f} s")
        print(f"  first service WSDL      {figures['first_service_wsdl_s']:.3f} s")
        print(f"  whole WSDLs ready       {figures['whole_wsdls_ready_s']:.2f} s after that (/xroad, /catalog)")
        print(f"  worker RSS at start     {figures['rss_start_mb']} MB; with the whole WSDLs {figures['rss_warm_mb']} MB")
        print(f"  worker RSS after reloads {figures['rss_end_mb']} MB ({figures['rss_growth_percent']} % from warm)")
        print(f"  reload to served        median {figures['reload_to_served_median_s']} s, "
              f"max {figures['reload_to_served_max_s']} s over {len(figures['reloads'])} reloads")
        print(f"  longest stall           median {figures['longest_stall_median_s']} s, "
              f"max {figures['longest_stall_max_s']} s; errors {figures['errors_during_reloads']}")
        print(f"  whole WSDLs show the last edit: {figures['whole_wsdls_current']}")
    if args.output:
        args.output.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
