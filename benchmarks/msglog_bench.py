"""Message-log benchmark: request throughput with the log off / on / sealed+time-stamped / plus signed
responses, the cost of one durable append, and ``log verify`` speed on a log of a million records.

How it measures (same approach as the other load benchmarks):

* Each configuration is a real ``viss-bridge serve``-style gunicorn server (2 sync workers by default) on
  127.0.0.1 with the demo data, started fresh. "off" is the same server with the message-log sink removed
  (a benchmark-only patch: the product has no switch to serve unlogged).
* The load generator is a separate process (``spawn``) with one thread and one keep-alive ``http.client``
  connection per concurrent client, sending X-Road ``fpr_person`` lookups for random existing persons and
  checking every answer (HTTP 200, no Fault, the person's code in the body).
* Configurations alternate over ``--rounds`` rounds so a noisy machine hurts them all alike; the figure to
  compare is each configuration's throughput relative to "off" in the same run.
* Appends: ``record()`` calls (2 records each, as one exchange) from 1, 4 and 16 threads of one process,
  with group commit and, as the baseline in the same run, with ``group_commit=False`` (one transaction
  and one flush per call); on SQLite, and on PostgreSQL when ``VISS_BRIDGE_TEST_PG`` is set.
* Verify speed: records are generated straight into a fresh SQLite log (real record hashes, chain, a seal
  per 1 000 records signed with the development node key, each time-stamped by the development TSA code),
  then the code ``viss-bridge log verify`` runs checks everything, in a fresh process each time: the old
  single-process verifier (the package at ``--baseline-revision``, unpacked with ``git archive``), the
  new one with 1 process and with one per core, alternating; wall time and CPU-seconds are reported.

Run from the repository root::

    .venv/bin/python benchmarks/msglog_bench.py --duration 10 --rounds 2 --verify-records 1000000 \
        --markdown /tmp/msglog-results.md

Only appends and verify (no servers), keeping the generated log for the next run::

    .venv/bin/python benchmarks/msglog_bench.py --configs --verify-log /tmp/msglog-1m.sqlite \
        --markdown /tmp/msglog.md
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import os
import platform
import random
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
LOOPBACK = "127.0.0.1"
HEADERS = {"Content-Type": "text/xml; charset=utf-8", "SOAPAction": '""'}
_FAULT = re.compile(rb"<(?:[A-Za-z_][\w.-]*:)?Fault[\s>]")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def wait_http(port: int, path: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection(LOOPBACK, port, timeout=2)
            conn.request("GET", path)
            if conn.getresponse().status in (200, 503):
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"nothing answers on {port}{path}")


# -- server side (this script re-runs itself as the server for "off") -----------------------------

def serve_main(mode: str) -> None:
    """Run the bridge exactly as `viss-bridge serve` does; for mode 'off' drop the message-log sink."""
    from viss_bridge import server
    from viss_bridge.config import load_settings
    from viss_bridge.serving import serve

    if mode == "off":
        original = server.create_app

        def create_without_log(settings):  # type: ignore[no-untyped-def]
            app = original(settings)
            app.sinks.clear()
            app.msglog.stop()
            return app

        server.create_app = create_without_log  # type: ignore[assignment]
    serve(load_settings())


# -- load generator (separate process) ------------------------------------------------------------

def _client(port: int, bodies: list[tuple[str, bytes]], stop_at: float, out: list[Any], seed: int) -> None:
    rng = random.Random(seed)
    conn = http.client.HTTPConnection(LOOPBACK, port, timeout=30)
    ok = errors = 0
    latencies = []
    while time.monotonic() < stop_at:
        code, body = bodies[rng.randrange(len(bodies))]
        started = time.perf_counter()
        try:
            conn.request("POST", "/xroad", body=body, headers=HEADERS)
            response = conn.getresponse()
            data = response.read()
        except (OSError, http.client.HTTPException):
            errors += 1
            conn = http.client.HTTPConnection(LOOPBACK, port, timeout=30)
            continue
        latencies.append(time.perf_counter() - started)
        if response.status == 200 and not _FAULT.search(data) and code.encode() in data:
            ok += 1
        else:
            errors += 1
    out.append((ok, errors, latencies))


def load_main(port: int, bodies: list[tuple[str, bytes]], concurrency: int, warmup: float, duration: float,
              queue: Any) -> None:
    warm: list[Any] = []
    threads = [threading.Thread(target=_client, args=(port, bodies, time.monotonic() + warmup, warm, i))
               for i in range(concurrency)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    out: list[Any] = []
    cpu0 = time.process_time()
    started = time.monotonic()
    threads = [threading.Thread(target=_client, args=(port, bodies, started + duration, out, 100 + i))
               for i in range(concurrency)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    elapsed = time.monotonic() - started
    latencies = sorted(x for _, _, ls in out for x in ls)
    queue.put({"ok": sum(o for o, _, _ in out), "errors": sum(e for _, e, _ in out), "seconds": elapsed,
               "p50_ms": 1000 * latencies[len(latencies) // 2] if latencies else None,
               "p99_ms": 1000 * latencies[int(len(latencies) * 0.99)] if latencies else None,
               "loadgen_cpu_s": time.process_time() - cpu0})


_TICKS = os.sysconf("SC_CLK_TCK")


def tree_cpu(root: int) -> float:
    """User+system CPU seconds of a process and its live children (the gunicorn arbiter and workers)."""
    total = 0.0
    pids = [root]
    try:
        for task in Path(f"/proc/{root}/task").iterdir():
            pids += [int(p) for p in (task / "children").read_text().split()]
    except OSError:
        pass
    for pid in pids:
        try:
            text = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        fields = text[text.rindex(")") + 2:].split()
        total += (int(fields[11]) + int(fields[12])) / _TICKS
    return total


def run_load(port: int, bodies: list[tuple[str, bytes]], concurrency: int, warmup: float, duration: float) -> dict[str, Any]:
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    process = ctx.Process(target=load_main, args=(port, bodies, concurrency, warmup, duration, queue))
    process.start()
    result = queue.get(timeout=warmup + duration + 120)
    process.join(30)
    result["rps"] = result["ok"] / result["seconds"]
    return result


# -- configurations --------------------------------------------------------------------------------

CONFIGS = {
    "off": "no message log (baseline; benchmark-only patch)",
    "log": "message log on (SQLite WAL, synchronous=FULL), no seals",
    "log+seal+tsa": "log + seals every 1000 records / 1 s, XML-DSig, RFC 3161 time-stamp from the dev TSA",
    "log+seal+tsa+signed": "as above + every response signed with WS-Security",
    "pg-log+seal+tsa": "log on PostgreSQL (commit per exchange, head row lock) + seals + time-stamps",
}
PG_LOG_URL: str | None = None  # set by main() when VISS_BRIDGE_TEST_PG names a server


def start_config(name: str, work: Path, data_dir: Path, pki: Any, tsa_url: str, workers: int) -> tuple[subprocess.Popen, int]:
    port = free_port()
    log_db = work / f"log-{name}-{time.time_ns()}.sqlite"
    env = {k: v for k, v in os.environ.items() if not k.startswith("VISS_BRIDGE_")}
    from viss_bridge.demo.seed import demo_paths

    paths = demo_paths(data_dir)
    env.update({"VISS_BRIDGE_DATABASE_URL": paths.database_url, "VISS_BRIDGE_CATALOG_DIR": str(paths.catalog_dir), "VISS_BRIDGE_PORT": str(port),
                "VISS_BRIDGE_WORKERS": str(workers), "VISS_BRIDGE_LOG_LEVEL": "WARNING",
                "VISS_BRIDGE_LOG_DATABASE_URL": f"sqlite:///{log_db}", "VISS_BRIDGE_RELOAD_INTERVAL": "3600"})
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    if name.startswith("pg-"):
        if PG_LOG_URL is None:
            raise RuntimeError("pg-log+seal+tsa needs VISS_BRIDGE_TEST_PG")
        env["VISS_BRIDGE_LOG_DATABASE_URL"] = PG_LOG_URL
        env["VISS_BRIDGE_NODE_ID"] = f"bench-{time.time_ns()}"  # a fresh chain each round
    if "seal" in name:
        env.update({"VISS_BRIDGE_SIGNING_CERT": str(pki.node.cert), "VISS_BRIDGE_SIGNING_KEY": str(pki.node.key),
                    "VISS_BRIDGE_TSA_URL": tsa_url})
    if name.endswith("signed"):
        env["VISS_BRIDGE_SIGN_RESPONSES"] = "xroad"
    process = subprocess.Popen([sys.executable, __file__, "--serve", "off" if name == "off" else "on"], env=env,
                               stdout=subprocess.DEVNULL, stderr=open(work / f"{name}.log", "ab"), cwd=ROOT)
    wait_http(port, "/health")
    return process, port


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(5)


def bodies_for(data_dir: Path, count: int) -> list[tuple[str, bytes]]:
    from viss_bridge.catalog.catalog import load_catalog
    from viss_bridge.catalog.store import DatasetStore
    from viss_bridge.db import make_engine
    from viss_bridge.demo.seed import demo_paths
    from viss_bridge.facade.xroad import lookup_request

    paths = demo_paths(data_dir)
    dataset = load_catalog(paths.catalog_dir).get("fpr_person")
    engine = make_engine(paths.database_url)
    codes = [c.record["person_code"] for c in DatasetStore(engine).changes(dataset, 0, count) if c.record]
    engine.dispose()
    return [(c, lookup_request(dataset, "LV/GOV/90000069281/VID-EDS", {"person_code": c}, f"bench-{i}",
                               user_id="LV00000000000")) for i, c in enumerate(codes)]


# -- append micro-benchmark and verify speed ----------------------------------------------------------

def append_bench(url: str, exchanges: int, writers: int = 1, group_commit: bool = True,
                 node: str = "bench") -> dict[str, float]:
    """``exchanges`` record() calls (2 records each, as the server logs one exchange) from ``writers`` threads.

    ``group_commit=False`` is the old behaviour (one transaction and one flush per call), the baseline."""
    from viss_bridge.msglog import MessageLog, RecordInput

    msglog = MessageLog(url, node, group_commit=group_commit)
    msglog.open()
    body = b"<x>" + b"a" * 1500 + b"</x>"
    per_writer = max(1, exchanges // writers)

    def writer(w: int) -> None:
        for i in range(per_writer):
            key = f"e{w}-{i}"
            msglog.record(RecordInput(body, "consumer", "request", key, message_id=key, client="LV/GOV/1/C"),
                          RecordInput(body, "consumer", "response", key, status=200, subjects=["010190-10009"]))

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(writers)]
    started = time.perf_counter()
    [t.start() for t in threads]
    [t.join() for t in threads]
    seconds = time.perf_counter() - started
    msglog.store.close()
    calls = per_writer * writers
    return {"exchanges_per_s": calls / seconds, "records_per_s": 2 * calls / seconds,
            "exchanges_per_commit": msglog.committed_calls / max(1, msglog.commits)}


def append_matrix(url_for: Any, exchanges: int, writer_counts: list[int], rounds: int) -> list[dict[str, Any]]:
    """Each writer count with group commit off (baseline) and on, alternating, median of ``rounds``."""
    rows = []
    for writers in writer_counts:
        runs: dict[bool, list[dict[str, float]]] = {False: [], True: []}
        for round_no in range(rounds):
            for group in (False, True):
                runs[group].append(append_bench(url_for(f"{writers}-{group}-{round_no}"), exchanges, writers, group,
                                                node=f"bench-{writers}-{int(group)}-{round_no}"))
        row: dict[str, Any] = {"writers": writers}
        for group, name in ((False, "one_commit_per_call"), (True, "group_commit")):
            row[name] = statistics.median(r["exchanges_per_s"] for r in runs[group])
            row[name + "_per_commit"] = statistics.median(r["exchanges_per_commit"] for r in runs[group])
        row["speedup"] = row["group_commit"] / row["one_commit_per_call"]
        rows.append(row)
        print(f"appends, {writers:>2} writer thread(s): one commit per call {row['one_commit_per_call']:7.0f} "
              f"exchanges/s; group commit {row['group_commit']:7.0f} exchanges/s "
              f"({row['group_commit_per_commit']:.1f} per commit) = {row['speedup']:.2f}x", flush=True)
    return rows


def generate_log(path: Path, records: int, pki: Any, seal_every: int = 1000) -> float:
    """A log of ``records`` records written straight into SQLite: real hashes, chain, signed+stamped seals."""
    import datetime as dt
    import sqlite3

    from viss_bridge.msglog import merkle
    from viss_bridge.msglog.log import INSERT
    from viss_bridge.msglog.records import GENESIS, chain_next, record_hash, utc_text
    from viss_bridge.msglog.seals import build_seal, read_seal
    from viss_bridge.msglog.store import LogStore
    from viss_bridge.msglog.tsp import DevTsa
    from viss_bridge.security.keys import SigningKey
    from viss_bridge.security.pki import load_certificate, load_private_key

    started = time.perf_counter()
    store = LogStore(f"sqlite:///{path}")
    store.create_schema("node-1")
    store.close()
    key = SigningKey.from_identity(pki.node)
    tsa = DevTsa(load_certificate(pki.tsa.cert), load_private_key(pki.tsa.key))
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=OFF")
    request = b"<SOAP-ENV:Envelope>" + b"r" * 1200 + b"</SOAP-ENV:Envelope>"
    response = b"<SOAP-ENV:Envelope>" + b"s" * 2400 + b"</SOAP-ENV:Envelope>"
    chain = GENESIS
    now = utc_text(dt.datetime.now(dt.timezone.utc))
    rows, leaves = [], []
    previous_head = GENESIS
    from asn1crypto import tsp as asn1_tsp
    import hashlib

    for seq in range(1, records + 1):
        direction = "request" if seq % 2 else "response"
        values = {"node_id": "node-1", "seq": seq, "recorded_at": now, "exchange_id": f"ex-{seq // 2}",
                  "leg": "consumer", "direction": direction, "endpoint": "xroad", "dialect": "xroad",
                  "client": "LV/GOV/90000069281/VID-EDS", "service": "LV/GOV/90000100015/FPR/fpr_person/v1",
                  "message_id": f"m-{seq // 2}", "user_id": "LV00000000000", "subjects": '["010190-10009"]',
                  "status": None if direction == "request" else 200, "fault_code": None, "fault_id": None,
                  "duration_us": None if direction == "request" else 2500, "remote_addr": "127.0.0.1"}
        body = (request if direction == "request" else response) + str(seq).encode()
        leaf = record_hash(values, body)[1]
        chain = chain_next(chain, leaf)
        rows.append((*values.values(), body, leaf, chain))
        leaves.append(leaf)
        if seq % seal_every == 0 or seq == records:
            conn.executemany(INSERT, rows)
            first = seq - len(leaves) + 1
            xml = build_seal(key, "node-1", first, seq, merkle.root(leaves), previous_head, chain, now)
            query = asn1_tsp.TimeStampReq({"version": "v1", "message_imprint": {
                "hash_algorithm": {"algorithm": "sha256"},
                "hashed_message": hashlib.sha256(read_seal(xml).signature_value).digest()}, "cert_req": True})
            tsr = tsa.reply(query.dump())
            conn.execute("INSERT INTO msglog_seal VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                         ("node-1", first, seq, now, merkle.root(leaves), chain, xml, tsr, now))
            previous_head = chain
            rows, leaves = [], []
    conn.execute("UPDATE msglog_head SET seq = ?, chain_hash = ? WHERE node_id = 'node-1'", (records, chain))
    conn.execute("UPDATE msglog_sealer SET sealed_seq = ? WHERE node_id = 'node-1'", (records,))
    conn.commit()
    conn.close()
    return time.perf_counter() - started


VERIFY_SCRIPT = """
import json, sys, time
from viss_bridge.msglog.store import LogStore
from viss_bridge.msglog.verify import verify_log
from viss_bridge.security.pki import TrustStore
path, ca, workers = sys.argv[1], sys.argv[2], sys.argv[3]
kwargs = {} if workers == "old" else {"workers": int(workers)}
started = time.perf_counter()
report = verify_log(LogStore("sqlite:///" + path, read_only=True), TrustStore.from_files(ca), require_timestamps=True, **kwargs)
seconds = time.perf_counter() - started
assert report.ok, report.text()
node = report.nodes[0]
print(json.dumps({"records": report.records, "seals": node.seals, "timestamps": node.timestamps, "seconds": seconds}))
"""


def old_code(work: Path, revision: str) -> Path:
    """The package as it was at ``revision`` (git), for the baseline run of the old verifier in the same run."""
    target = work / f"old-{revision[:12]}"
    if not target.exists():
        target.mkdir(parents=True)
        archive = subprocess.run(["git", "archive", revision, "viss_bridge"], cwd=ROOT, check=True,
                                 capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", str(target)], input=archive, check=True)
    return target


def verify_bench(path: Path, pki: Any, workers: str, code: Path = ROOT) -> dict[str, Any]:
    """Run the verifier in a fresh process (``workers`` = a number, or "old" for code at another revision).

    Besides wall time it reports the CPU seconds of that process and its worker processes, which do not
    depend on what else the machine is running: records per CPU-second times the cores is the rate on an
    otherwise idle machine."""
    import resource

    env = dict(os.environ, PYTHONPATH=str(code))
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = subprocess.run([sys.executable, "-c", VERIFY_SCRIPT, str(path), str(pki.ca_cert), workers], env=env,
                         cwd=code, check=True, capture_output=True, text=True).stdout
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    result = json.loads(out.strip().splitlines()[-1])
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    result.update(records_per_s=result["records"] / result["seconds"], cpu_seconds=cpu,
                  records_per_cpu_s=result["records"] / cpu, db_mb=path.stat().st_size / 1e6, workers=workers)
    return result


BASELINE_REVISION = "18b956f"  # the verifier (and time-stamp check) before the parallel verifier of issue 12


# -- main -------------------------------------------------------------------------------------------

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    parser.add_argument("--duration", type=float, default=10)
    parser.add_argument("--warmup", type=float, default=2)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--size", type=int, default=2000)
    parser.add_argument("--verify-records", type=int, default=1_000_000)
    parser.add_argument("--append-exchanges", type=int, default=2000, help="record() calls per append run (0: skip)")
    parser.add_argument("--append-writers", type=int, nargs="*", default=[1, 4, 16])
    parser.add_argument("--append-rounds", type=int, default=3)
    parser.add_argument("--verify-rounds", type=int, default=2)
    parser.add_argument("--verify-log", help="Use (or create, and keep) the verify log here instead of a temp one.")
    parser.add_argument("--baseline-revision", default=BASELINE_REVISION,
                        help="git revision whose verifier is the baseline (default: %(default)s)")
    parser.add_argument("--configs", nargs="*", default=list(CONFIGS))
    parser.add_argument("--work-dir", help="Keep the data here (default: a temp dir, removed at the end).")
    parser.add_argument("--output", help="Write the raw figures as JSON here.")
    parser.add_argument("--markdown", help="Write a results table (Markdown) here.")
    args = parser.parse_args()
    if args.serve:
        serve_main(args.serve)
        return

    from viss_bridge.msglog.tsp import DevTsa, make_server
    from viss_bridge.security.pki import init_dev_pki, load_certificate, load_private_key

    work = Path(args.work_dir or tempfile.mkdtemp(prefix="msglog-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {"machine": {"nproc": os.cpu_count(), "python": platform.python_version(),
                                           "loadavg_at_start": os.getloadavg()},
                               "settings": vars(args) | {"work_dir": str(work)}}
    try:
        pki = init_dev_pki(work / "certs")
        tsa_server = make_server(DevTsa(load_certificate(pki.tsa.cert), load_private_key(pki.tsa.key)))
        threading.Thread(target=tsa_server.serve_forever, daemon=True).start()
        tsa_url = f"http://{LOOPBACK}:{tsa_server.server_address[1]}/"
        data_dir = work / "demo"
        if args.configs and not (data_dir / "catalog").exists():
            subprocess.run([sys.executable, "-m", "viss_bridge.cli", "demo", "--prepare-only", "--data-dir", str(data_dir),
                            "--size", str(args.size)], check=True, cwd=ROOT, capture_output=True)
        bodies = bodies_for(data_dir, 1000) if args.configs else []
        global PG_LOG_URL
        pg_name = None
        if os.environ.get("VISS_BRIDGE_TEST_PG") and any(c.startswith("pg-") for c in args.configs):
            pg_name, PG_LOG_URL = _pg_create()
        load: dict[str, list[dict[str, Any]]] = {name: [] for name in args.configs}
        for round_no in range(args.rounds if args.configs else 0):
            for name in args.configs:
                process, port = start_config(name, work, data_dir, pki, tsa_url, args.workers)
                try:
                    cpu_before = tree_cpu(process.pid)
                    figures = run_load(port, bodies, args.concurrency, args.warmup, args.duration)
                    # includes the warm-up requests' CPU: count them out roughly by rate
                    cpu = tree_cpu(process.pid) - cpu_before
                    total_requests = figures["ok"] * (args.duration + args.warmup) / args.duration
                    figures["server_cpu_ms_per_req"] = 1000 * cpu / max(1, total_requests)
                finally:
                    stop(process)
                load[name].append(figures)
                print(f"round {round_no + 1} {name:<22} {figures['rps']:8.1f} req/s  p50 {figures['p50_ms']:.1f} ms  "
                      f"p99 {figures['p99_ms']:.1f} ms  server CPU {figures['server_cpu_ms_per_req']:.2f} ms/req  "
                      f"errors {figures['errors']}", flush=True)
        results["load"] = load
        if args.append_exchanges:
            appends = {"sqlite": append_matrix(lambda tag: f"sqlite:///{work / f'append-{tag}.sqlite'}",
                                               args.append_exchanges, args.append_writers, args.append_rounds)}
            if os.environ.get("VISS_BRIDGE_TEST_PG"):
                appends["postgresql"] = _pg_append(args.append_exchanges, args.append_writers, args.append_rounds)
            results["appends"] = appends
        if args.verify_records:
            path = Path(args.verify_log) if args.verify_log else work / "verify.sqlite"
            if not args.verify_log or not path.exists():
                if path.exists():
                    path.unlink()
                results["generate_seconds"] = generate_log(path, args.verify_records, pki)
            old = old_code(work, args.baseline_revision)
            runs: dict[str, list[dict[str, Any]]] = {"old": [], "1": [], str(os.cpu_count()): []}
            for _ in range(args.verify_rounds):  # alternate, so a noisy machine hurts each alike
                for workers in runs:
                    figures = verify_bench(path, pki, workers, old if workers == "old" else ROOT)
                    runs[workers].append(figures)
                    print(f"verify ({'baseline code at ' + args.baseline_revision if workers == 'old' else workers + ' process(es)'}): "
                          f"{figures['records']:,} records in {figures['seconds']:.1f} s = "
                          f"{figures['records_per_s']:,.0f}/s; {figures['cpu_seconds']:.1f} CPU-s", flush=True)
            results["verify"] = runs
            if not args.verify_log:
                path.unlink()
        results["machine"]["loadavg_at_end"] = os.getloadavg()
        if pg_name:
            _pg_drop(pg_name)
        if args.output:
            Path(args.output).write_text(json.dumps(results, indent=2, default=str))
        if args.markdown:
            Path(args.markdown).write_text(markdown(results))
    finally:
        if not args.work_dir:
            shutil.rmtree(work, ignore_errors=True)


def _pg_create() -> tuple[str, str]:
    import uuid

    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    admin_url = os.environ["VISS_BRIDGE_TEST_PG"]
    name = f"msglog_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return name, make_url(admin_url).set(database=name).render_as_string(hide_password=False)


def _pg_drop(name: str) -> None:
    from sqlalchemy import create_engine, text

    admin = create_engine(os.environ["VISS_BRIDGE_TEST_PG"], isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"))
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
    admin.dispose()


def _pg_append(exchanges: int, writer_counts: list[int], rounds: int) -> list[dict[str, Any]]:
    name, url = _pg_create()
    try:
        return append_matrix(lambda tag: url, exchanges, writer_counts, rounds)  # one database, a node per run
    finally:
        _pg_drop(name)


def markdown(results: dict[str, Any]) -> str:
    load = results.get("load", {})
    lines = ["| configuration | req/s (median of rounds) | vs off | p50 ms | p99 ms | server CPU ms/req | errors |",
             "|---|---|---|---|---|---|---|"] if load else []
    base = statistics.median(r["rps"] for r in load["off"]) if "off" in load else None
    for name, rounds in load.items():
        rps = statistics.median(r["rps"] for r in rounds)
        lines.append(f"| {name}: {CONFIGS[name]} | {rps:.1f} | {rps / base * 100:.0f} % | "
                     f"{statistics.median(r['p50_ms'] for r in rounds):.1f} | "
                     f"{statistics.median(r['p99_ms'] for r in rounds):.1f} | "
                     f"{statistics.median(r['server_cpu_ms_per_req'] for r in rounds):.2f} | {sum(r['errors'] for r in rounds)} |"
                     if base else f"| {name} | {rps:.1f} | - | - | - | - |")
    for backend, rows in results.get("appends", {}).items():
        lines += ["", f"Durable appends on {backend}, in one process, exchanges (2 records, one `record()` call) per "
                      "second, median of rounds:", "",
                  "| writer threads | one commit per call (before) | group commit (after) | exchanges per commit | "
                  "after / before |", "|---|---|---|---|---|"]
        lines += [f"| {r['writers']} | {r['one_commit_per_call']:,.0f} | {r['group_commit']:,.0f} | "
                  f"{r['group_commit_per_commit']:.1f} | {r['speedup']:.2f}x |" for r in rows]
    if "verify" in results:
        lines += ["", "`log verify --require-timestamps` on the generated log (median of rounds):", "",
                  "| verifier | records | seconds | records/s | CPU-s | records per CPU-s |", "|---|---|---|---|---|---|"]
        for workers, runs in results["verify"].items():
            label = f"baseline code at {results['settings']['baseline_revision']}" if workers == "old" else f"new, {workers} process(es)"
            med = {k: statistics.median(r[k] for r in runs) for k in ("seconds", "records_per_s", "cpu_seconds",
                                                                      "records_per_cpu_s")}
            lines.append(f"| {label} | {runs[0]['records']:,} | {med['seconds']:.1f} | {med['records_per_s']:,.0f} | "
                         f"{med['cpu_seconds']:.1f} | {med['records_per_cpu_s']:,.0f} |")
    lines += ["", f"Machine: {results['machine']}", f"Settings: {results['settings']}"]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
