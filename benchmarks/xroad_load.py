"""Load benchmark of ``/xroad`` dataset lookups against a bare Spyne baseline measured in the same run.

Why this shape:

* The machine the project runs on is small (2 cores) and shared, so an
  absolute req/s figure drifts from run to run. Every invocation therefore
  also measures a bare Spyne service with the same wire contract
  (``benchmarks/spyne_baseline.py``) under the same gunicorn settings, with the
  same load generator and byte-identical request bodies, and reports the
  ratios bridge/baseline. The ratios, above all of server CPU per request,
  are the figures to compare across runs.
* The bridge is started exactly as an operator starts it
  (``viss-bridge demo --prepare-only`` then ``viss-bridge serve``), so the
  figures include everything a real request pays: gunicorn, the hardened
  pre-parse, X-Road header checks, the access rules, the SQL lookup, Spyne
  serialisation, the header echo with requestHash, metrics and the JSON log line.
* The load generator runs in its own process (a ``spawn`` child with one
  thread and one ``http.client`` connection per concurrent client) so its CPU
  use and GIL never share an interpreter with the measuring parent, and it
  reports its own CPU time so one can see how much of the 2 cores it took.
* Server CPU time per request (read from ``/proc`` for the gunicorn master
  and its workers) is reported next to throughput: on a noisy machine CPU
  per request is steadier than wall-clock throughput.
* Every response is checked (HTTP 200, no SOAP Fault, ``person_code`` equal to
  the one asked for); anything else counts as an error.

Everything binds and connects to 127.0.0.1 only, runs for a bounded time,
and stops the servers it started in ``finally`` blocks. See
``benchmarks/README.md`` for how to run it and read the output.
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.client
import json
import multiprocessing
import os
import platform
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterator

ROOT = Path(__file__).resolve().parents[1]
BASELINE_SCRIPT = ROOT / "benchmarks" / "spyne_baseline.py"
LOOPBACK = "127.0.0.1"  # the only address this script ever binds or connects to
DATASET = "fpr_person"
SEED = 2026  # fixes which person codes are drawn and asked for, so runs are repeatable
HEADERS = {"Content-Type": "text/xml; charset=utf-8", "SOAPAction": '""'}

#: Above this share of the machine's CPU used by others (or stolen), a run is flagged as noisy.
NOISY_OTHER_PCT = 10.0

_PERSON_CODE = re.compile(rb"<(?:[A-Za-z_][\w.-]*:)?person_code>([^<]*)</")
_FAULT = re.compile(rb"<(?:[A-Za-z_][\w.-]*:)?Fault[\s>]")


# -- machine and processes -------------------------------------------------------

def machine_info() -> dict[str, Any]:
    """What a reader needs to judge the figures: cores, CPU, Python, library versions, load."""
    from importlib.metadata import PackageNotFoundError, version

    cpu_model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions: dict[str, str] = {}
    for package in ("spyne", "lxml", "gunicorn", "SQLAlchemy", "prometheus_client"):
        try:
            versions[package] = version(package)
        except PackageNotFoundError:
            versions[package] = "-"
    try:
        commit = subprocess.run(["git", "describe", "--always", "--dirty"], capture_output=True, text=True,
                                cwd=ROOT, timeout=10).stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        commit = "unknown"
    return {
        "commit": commit,  # the bridge code measured
        "nproc": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "cpu_count": os.cpu_count(),
        "cpu_model": cpu_model,
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "kernel": platform.release(),
        "loadavg_at_start": list(os.getloadavg()),
        "packages": versions,
    }


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _proc_stat(pid: int) -> tuple[int, float] | None:
    """(parent pid, user+system CPU seconds) of a live process, or None if it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2:].split()  # after "pid (comm) "
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS


def process_tree(root: int) -> dict[int, float]:
    """CPU seconds of ``root`` and all its live descendants (a gunicorn master and its workers)."""
    stats: dict[int, tuple[int, float]] = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            stat = _proc_stat(int(entry.name))
            if stat is not None:
                stats[int(entry.name)] = stat
    tree = {root} if root in stats else set()
    grew = True
    while grew:
        children = {pid for pid, (ppid, _cpu) in stats.items() if ppid in tree and pid not in tree}
        tree |= children
        grew = bool(children)
    return {pid: stats[pid][1] for pid in tree}


def machine_cpu() -> tuple[float, float, float]:
    """Machine-wide (busy, steal, total) CPU seconds since boot, summed over all CPUs, from /proc/stat.

    Busy time beyond what the servers and the load generator used is someone
    else's (other tenants of a shared machine, or the kernel's network work),
    and steal is time the hypervisor gave to other guests: both say how
    noisy a run was.
    """
    values = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    user, nice, system, idle, iowait, irq, softirq, steal = (values + [0] * 8)[:8]
    total = user + nice + system + idle + iowait + irq + softirq + steal
    return ((total - idle - iowait) / _CLOCK_TICKS, steal / _CLOCK_TICKS, total / _CLOCK_TICKS)


@dataclass
class Server:
    """A gunicorn server this script started and must stop."""

    name: str
    port: int
    path: str  # where lookups are POSTed
    process: subprocess.Popen[bytes]
    log_path: Path

    def worker_pids(self) -> list[int]:
        return sorted(pid for pid in process_tree(self.process.pid) if pid != self.process.pid)

    def stop(self) -> None:
        """SIGTERM the master (graceful), then SIGKILL the process group it leads if it lingers."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(self.process.pid, signal.SIGKILL)  # the group this script created for it
                except ProcessLookupError:
                    pass
                self.process.wait(10)


def _http_status(port: int, path: str) -> int | None:
    try:
        conn = http.client.HTTPConnection(LOOPBACK, port, timeout=2)
        try:
            conn.request("GET", path)
            return conn.getresponse().status
        finally:
            conn.close()
    except (OSError, http.client.HTTPException):
        return None


def start_server(name: str, argv: list[str], env: dict[str, str], port: int, path: str, ready_path: str,
                 log_path: Path, timeout: float = 120) -> Server:
    """Start a server in its own process group, logging to a file, and wait until ``ready_path`` answers 200.

    The log goes to a file, never a pipe: a pipe nobody reads fills up and
    stalls the workers mid-benchmark (the bridge logs a JSON line per request).
    """
    with open(log_path, "wb") as log_file:
        process = subprocess.Popen(argv, stdout=log_file, stderr=subprocess.STDOUT, env=env, cwd=ROOT,
                                   start_new_session=True)
    server = Server(name, port, path, process, log_path)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited early ({process.returncode}); log:\n{_tail(log_path)}")
        if _http_status(port, ready_path) == 200:
            return server
        time.sleep(0.2)
    server.stop()
    raise RuntimeError(f"{name} did not answer {ready_path} within {timeout:.0f} s; log:\n{_tail(log_path)}")


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


# -- data --------------------------------------------------------------------------

def prepare_data(data_dir: Path, size: int, timeout: float) -> float:
    """Prepare (or reuse) the demo data folder with the real CLI; return the seconds it took."""
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "viss_bridge.cli", "demo", "--prepare-only",
                             "--data-dir", str(data_dir), "--size", str(size)],
                            capture_output=True, text=True, cwd=ROOT, timeout=timeout,
                            env=_clean_env())
    if result.returncode != 0:
        raise RuntimeError(f"viss-bridge demo --prepare-only failed:\n{result.stdout}\n{result.stderr}")
    return time.perf_counter() - started


def sample_person_codes(data_dir: Path, size: int, count: int, seed: int) -> list[str]:
    """Person codes that exist in the store, drawn at random through the store's own API.

    The demo loads ``fpr_person`` in one transaction, so its change sequence
    numbers are (almost always) contiguous: ``changes(since=s, limit=1)`` for a
    random ``s`` in that range is an indexed read of a random existing record,
    without scanning a million rows. When the store holds fewer records than
    asked for, all of them are read.
    """
    from viss_bridge.catalog.catalog import load_catalog
    from viss_bridge.catalog.store import DatasetStore
    from viss_bridge.db import make_engine
    from viss_bridge.demo.seed import demo_paths

    paths = demo_paths(data_dir)
    dataset = load_catalog(paths.catalog_dir).get(DATASET)
    if dataset is None:
        raise RuntimeError(f"no {DATASET} manifest in {paths.catalog_dir}")
    engine = make_engine(paths.database_url)
    try:
        store = DatasetStore(engine)
        total = store.count(dataset)
        if total != size:
            raise RuntimeError(f"{paths.database} holds {total} {DATASET} records, not --size {size}; "
                               "use an empty --data-dir (or none) to prepare a fresh one")
        first = store.changes(dataset, 0, 1)
        if not first:
            raise RuntimeError(f"{DATASET} is empty in {paths.database}")
        base = first[0].seq - 1
        codes: set[str] = set()
        if total <= count:
            since = 0
            while changes := store.changes(dataset, since, 1000):
                codes.update(c.record["person_code"] for c in changes if c.record)
                since = changes[-1].seq
        else:
            rng = random.Random(seed)
            for offset in rng.sample(range(total), count):
                change = store.changes(dataset, base + offset, 1)
                if change and change[0].record:
                    codes.add(change[0].record["person_code"])
    finally:
        engine.dispose()
    ordered = sorted(codes)
    random.Random(seed).shuffle(ordered)
    return ordered


def build_bodies(data_dir: Path, codes: list[str]) -> list[bytes]:
    """One ready X-Road request per code, made by the bridge's own ``lookup_request``.

    The client is a demo consumer granted ``fpr_person``, so every request
    passes the access policy like a real, permitted call.
    """
    from viss_bridge.catalog.catalog import load_catalog
    from viss_bridge.demo.seed import DEMO_CLIENTS, demo_paths
    from viss_bridge.facade.xroad import lookup_request

    dataset = load_catalog(demo_paths(data_dir).catalog_dir).get(DATASET)
    assert dataset is not None
    client = next(c.client_id for c in DEMO_CLIENTS if DATASET in c.datasets)
    return [lookup_request(dataset, client, {"person_code": code}, f"bench-{i}", user_id="LV00000000000")
            for i, code in enumerate(codes)]


def _clean_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    env.update(extra or {})
    return env


# -- load generator (runs in a child process) ------------------------------------------

@dataclass
class LoadSpec:
    """Everything the load-generating child needs; pickled to it."""

    port: int
    path: str
    bodies: list[bytes]
    codes: list[str]
    concurrency: int
    warmup: float
    duration: float
    max_requests: int | None
    timeout: float
    server_pid: int
    seed: int


@dataclass
class LoadResult:
    """What one measured run produced; latencies in seconds, one per measured request."""

    latencies: list[float]
    errors: dict[str, int]
    error_samples: list[str]
    elapsed: float
    warmup_requests: int
    client_cpu: float
    server_cpu: float
    machine_busy: float  # CPU seconds all processes used while measuring (all CPUs)
    machine_steal: float
    machine_total: float  # CPU seconds available while measuring (all CPUs)


def _client_thread(spec: LoadSpec, index: int, measure_from: float, stop_at: float, budget: list[int],
                   lock: threading.Lock, latencies: list[float], errors: Counter[str], samples: list[str],
                   warm: list[int]) -> None:
    """One concurrent client: a keep-alive-capable connection posting lookups back to back.

    gunicorn's sync workers answer ``Connection: close``, so http.client
    reconnects for every request; that TCP connect is part of what a real
    client of a sync-worker server pays, and it is the same for both targets.
    """
    rng = random.Random(spec.seed * 1000 + index)
    conn = http.client.HTTPConnection(LOOPBACK, spec.port, timeout=spec.timeout)
    bodies, codes, n = spec.bodies, spec.codes, len(spec.bodies)
    perf = time.perf_counter
    warmup_requests = 0
    try:
        while True:
            started = perf()
            if started >= stop_at:
                return
            measuring = started >= measure_from
            if measuring and spec.max_requests is not None:
                with lock:
                    if budget[0] <= 0:
                        return
                    budget[0] -= 1
            pick = rng.randrange(n)
            problem: str | None = None
            try:
                conn.request("POST", spec.path, bodies[pick], HEADERS)
                response = conn.getresponse()
                data = response.read()
                status = response.status
            except (OSError, http.client.HTTPException) as exc:
                conn.close()
                conn = http.client.HTTPConnection(LOOPBACK, spec.port, timeout=spec.timeout)
                data, status = b"", 0
                problem = f"exception {type(exc).__name__}"
            finished = perf()
            if problem is None:
                if status != 200:
                    problem = f"http {status}"
                elif _FAULT.search(data):
                    problem = "soap fault"
                else:
                    found = _PERSON_CODE.search(data)
                    if found is None:
                        problem = "no person_code in answer"
                    elif found.group(1).decode() != codes[pick]:
                        problem = "person_code mismatch"
            if not measuring:
                warmup_requests += 1
                continue
            latencies.append(finished - started)  # list.append is atomic under the GIL
            if problem is not None:
                with lock:
                    errors[problem] += 1
                    if len(samples) < 3:
                        samples.append(f"{problem}: {data[:400]!r}")
    finally:
        conn.close()
        with lock:
            warm[0] += warmup_requests


def run_load(spec: LoadSpec, results: Any) -> None:
    """Child-process entry point: warm up, measure, and put one LoadResult on ``results``."""
    lock = threading.Lock()
    latencies: list[float] = []
    errors: Counter[str] = Counter()
    samples: list[str] = []
    warm = [0]
    budget = [spec.max_requests or 0]
    start = time.perf_counter()
    measure_from = start + spec.warmup
    stop_at = measure_from + spec.duration
    threads = [threading.Thread(target=_client_thread, name=f"client-{i}", daemon=True,
                                args=(spec, i, measure_from, stop_at, budget, lock, latencies, errors, samples, warm))
               for i in range(spec.concurrency)]
    for thread in threads:
        thread.start()
    time.sleep(max(0.0, measure_from - time.perf_counter()))
    cpu0, server0, box0 = time.process_time(), sum(process_tree(spec.server_pid).values()), machine_cpu()
    deadline = stop_at + spec.timeout + 5  # a request in flight at stop_at may take up to the timeout
    for thread in threads:
        thread.join(max(0.0, deadline - time.perf_counter()))
    elapsed = time.perf_counter() - measure_from
    cpu1, server1, box1 = time.process_time(), sum(process_tree(spec.server_pid).values()), machine_cpu()
    with lock:  # a thread stuck past the deadline must not change the lists while they are pickled
        result = LoadResult(latencies=list(latencies), errors=dict(errors), error_samples=list(samples),
                            elapsed=elapsed, warmup_requests=warm[0], client_cpu=cpu1 - cpu0,
                            server_cpu=server1 - server0, machine_busy=box1[0] - box0[0],
                            machine_steal=box1[1] - box0[1], machine_total=box1[2] - box0[2])
    results.put(result)


def drive(server: Server, spec_args: dict[str, Any]) -> LoadResult:
    """Run one load phase against ``server`` from a fresh child process and return its result."""
    spec = LoadSpec(port=server.port, path=server.path, server_pid=server.process.pid, **spec_args)
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    child = context.Process(target=run_load, args=(spec, results), name=f"loadgen-{server.name}")
    child.start()
    try:
        bound = spec.warmup + spec.duration + spec.timeout + 60
        result: LoadResult = results.get(timeout=bound)
        child.join(30)
        return result
    finally:
        if child.is_alive():
            child.terminate()
            child.join(10)


# -- figures -------------------------------------------------------------------------

def percentile(ordered: list[float], q: float) -> float:
    """Linear-interpolated percentile of an already sorted list (q in 0..100)."""
    if not ordered:
        return float("nan")
    position = (len(ordered) - 1) * q / 100
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


@dataclass
class Summary:
    target: str
    concurrency: int
    rounds: int
    requests: int
    errors: int
    error_kinds: dict[str, int]
    throughput: float  # requests per second of measured wall time
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    mean_ms: float
    server_cpu_ms_per_req: float
    client_cpu_ms_per_req: float
    machine_busy_pct: float  # share of all CPUs busy while measuring
    other_busy_pct: float  # of that, not used by this server or the load generator
    steal_pct: float
    per_round: list[dict[str, float]] = field(default_factory=list)  # to pick out a noisy round
    error_samples: list[str] = field(default_factory=list)


def summarise(target: str, concurrency: int, runs: list[LoadResult]) -> Summary:
    """Pool the rounds of one target at one concurrency."""
    latencies = sorted(x for run in runs for x in run.latencies)
    requests = len(latencies)
    errors: Counter[str] = Counter()
    for run in runs:
        errors.update(run.errors)
    elapsed = sum(run.elapsed for run in runs)
    per_req = (lambda seconds: 1000 * seconds / requests) if requests else (lambda _s: float("nan"))
    available = sum(run.machine_total for run in runs)
    share = (lambda seconds: 100 * seconds / available) if available else (lambda _s: float("nan"))
    return Summary(
        target=target, concurrency=concurrency, rounds=len(runs), requests=requests,
        errors=sum(errors.values()), error_kinds=dict(errors),
        throughput=requests / elapsed if elapsed > 0 else 0.0,
        p50_ms=1000 * percentile(latencies, 50), p90_ms=1000 * percentile(latencies, 90),
        p99_ms=1000 * percentile(latencies, 99), max_ms=1000 * (latencies[-1] if latencies else float("nan")),
        mean_ms=1000 * sum(latencies) / requests if requests else float("nan"),
        server_cpu_ms_per_req=per_req(sum(run.server_cpu for run in runs)),
        client_cpu_ms_per_req=per_req(sum(run.client_cpu for run in runs)),
        machine_busy_pct=share(sum(run.machine_busy for run in runs)),
        other_busy_pct=share(sum(run.machine_busy - run.server_cpu - run.client_cpu for run in runs)),
        steal_pct=share(sum(run.machine_steal for run in runs)),
        per_round=[_round_figures(run) for run in runs],
        error_samples=[s for run in runs for s in run.error_samples][:3],
    )


def _round_figures(run: LoadResult) -> dict[str, float]:
    """The headline figures of a single round, so a round disturbed by other tenants can be told apart."""
    ordered = sorted(run.latencies)
    n = len(ordered)
    return {"requests": n, "throughput": n / run.elapsed if run.elapsed > 0 else 0.0,
            "p50_ms": 1000 * percentile(ordered, 50), "p99_ms": 1000 * percentile(ordered, 99),
            "server_cpu_ms_per_req": 1000 * run.server_cpu / n if n else float("nan"),
            "other_busy_pct": 100 * (run.machine_busy - run.server_cpu - run.client_cpu) / run.machine_total
            if run.machine_total else float("nan")}


def ratios(bridge: Summary, baseline: Summary) -> dict[str, float]:
    def ratio(a: float, b: float) -> float:
        return a / b if b else float("nan")

    return {"throughput": ratio(bridge.throughput, baseline.throughput),
            "p50": ratio(bridge.p50_ms, baseline.p50_ms),
            "p99": ratio(bridge.p99_ms, baseline.p99_ms),
            "server_cpu_per_req": ratio(bridge.server_cpu_ms_per_req, baseline.server_cpu_ms_per_req)}


def render(summaries: list[Summary], machine: dict[str, Any], params: dict[str, Any]) -> str:
    """The human-readable report: one table row per target and concurrency, ratios below."""
    lines = [f"viss-bridge /xroad {DATASET} lookups vs bare Spyne baseline",
             f"bridge commit {machine['commit']}; machine: {machine['nproc']} cpu ({machine['cpu_model']}), "
             f"Python {machine['python']}, load average at start "
             f"{' '.join(f'{x:.2f}' for x in machine['loadavg_at_start'])}",
             "params: " + ", ".join(f"{k}={v}" for k, v in params.items()), ""]
    header = ("target", "conc", "requests", "errors", "req/s", "p50 ms", "p90 ms", "p99 ms", "max ms",
              "srv cpu ms/req", "gen cpu ms/req", "box busy %", "other %", "steal %")
    rows = [header]
    for s in summaries:
        rows.append((s.target, str(s.concurrency), str(s.requests), str(s.errors), f"{s.throughput:.1f}",
                     f"{s.p50_ms:.2f}", f"{s.p90_ms:.2f}", f"{s.p99_ms:.2f}", f"{s.max_ms:.2f}",
                     f"{s.server_cpu_ms_per_req:.2f}", f"{s.client_cpu_ms_per_req:.2f}",
                     f"{s.machine_busy_pct:.0f}", f"{s.other_busy_pct:.0f}", f"{s.steal_pct:.1f}"))
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    for row in rows:
        lines.append("  ".join(value.rjust(width) if i else value.ljust(width)
                               for i, (value, width) in enumerate(zip(row, widths))))
    lines.append("")
    for bridge, baseline in _pairs(summaries):
        r = ratios(bridge, baseline)
        lines.append(f"ratio bridge/baseline at concurrency {bridge.concurrency}: throughput {r['throughput']:.2f}x, "
                     f"p50 {r['p50']:.2f}x, p99 {r['p99']:.2f}x, server CPU per request {r['server_cpu_per_req']:.2f}x")
    for s in summaries:
        if s.other_busy_pct > NOISY_OTHER_PCT or s.steal_pct > NOISY_OTHER_PCT:
            lines.append(f"warning: {s.target} c={s.concurrency}: {s.other_busy_pct:.0f}% of the machine's CPU went to "
                         f"other processes and {s.steal_pct:.0f}% was stolen by the hypervisor; figures are noisy")
        if s.errors:
            lines.append(f"errors {s.target} c={s.concurrency}: {s.error_kinds}; e.g. {s.error_samples[:1]}")
    return "\n".join(lines)


def _pairs(summaries: list[Summary]) -> Iterator[tuple[Summary, Summary]]:
    by_key = {(s.target, s.concurrency): s for s in summaries}
    for (target, concurrency), s in by_key.items():
        if target == "bridge" and ("baseline", concurrency) in by_key:
            yield s, by_key[("baseline", concurrency)]


# -- profiling -------------------------------------------------------------------------

#: Where each target's application code starts in a worker's stack (the root of the profile tree).
PROFILE_ROOTS = {"bridge": "BridgeApp.__call__", "baseline": "WsgiApplication.__call__"}


def profile_server(server: Server, spec_args: dict[str, Any], output: Path) -> tuple[LoadResult, list[str]]:
    """Drive ``server`` once more while py-spy samples one worker; return the run and a cost summary.

    A separate run, never pooled with the measured ones: py-spy takes CPU
    from the same 2 cores. ``--nonblocking`` keeps it from pausing the worker,
    ``--function`` aggregates by function rather than line, and ``--gil``
    samples only the thread holding the GIL: with threaded workers the other
    threads wait (for the group commit, a lock, the next request) and would
    otherwise be sampled as if they were working. So the profile is where one
    worker spends CPU while it serves lookups. Python frames only: time in
    lxml, SQLite or the kernel (socket writes) is charged to the Python
    function that called it.
    """
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(py_spy).exists():
        raise RuntimeError("py-spy is not installed (pip install py-spy into the venv)")
    workers = server.worker_pids()
    if not workers:
        raise RuntimeError(f"no {server.name} worker to profile")
    seconds = max(1, int(spec_args["warmup"] + spec_args["duration"]))
    recorder = subprocess.Popen([py_spy, "record", "--pid", str(workers[0]), "--duration", str(seconds),
                                 "--rate", "250", "--nonblocking", "--gil", "--function", "--format", "raw",
                                 "--output", str(output)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    err = b""
    try:
        result = drive(server, spec_args)
        _out, err = recorder.communicate(timeout=seconds + 60)
    finally:
        if recorder.poll() is None:
            recorder.terminate()
            recorder.wait(10)
    if not output.exists():
        raise RuntimeError(f"py-spy wrote no profile: {err.decode(errors='replace')[-500:]}")
    return result, summarise_profile(output, root=PROFILE_ROOTS[server.name])


def _profile_stacks(path: Path) -> Iterator[tuple[list[str], int]]:
    """Stacks of py-spy's raw (collapsed) output as short frame names, outermost first, with counts."""
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        frames = []
        for frame in stack.split(";")[1:]:  # the first entry names the process
            frame = re.sub(r":\d+\)$", ")", frame)
            frame = re.sub(r"\(/\S*?/(site-packages|lib/python3\.\d+)/", "(", frame)
            frames.append(frame.replace(f"({ROOT}/", "("))
        yield frames, int(count_text)


@dataclass
class _Node:
    count: int = 0
    children: dict[str, _Node] = field(default_factory=dict)


def summarise_profile(path: Path, root: str = "BridgeApp.__call__", min_share: float = 1.0, max_depth: int = 12,
                      top_self: int = 20) -> list[str]:
    """A call tree below ``root`` (shares of all sampled worker CPU) plus the top functions by self time.

    The tree answers "which phase of a request costs what" (parse, header
    checks, SQL, Spyne, logging, metrics); the self list answers "which leaf
    functions burn it". Branches under ``min_share`` percent are cut.
    """
    tree = _Node()
    own: Counter[str] = Counter()
    total = 0
    for frames, count in _profile_stacks(path):
        total += count
        if frames:
            own[frames[-1]] += count
        if root in " ".join(frames):
            node = tree
            for frame in frames[next(i for i, f in enumerate(frames) if f.startswith(root + " ")):]:
                node = node.children.setdefault(frame, _Node())
                node.count += count
    if not total:
        return ["(no samples)"]
    lines = [f"{total} samples of one worker's CPU; call tree below {root} (share of all samples):"]

    def walk(node: _Node, depth: int) -> None:
        for frame, child in sorted(node.children.items(), key=lambda item: -item[1].count):
            share = 100 * child.count / total
            if share < min_share:
                continue
            lines.append(f"  {share:5.1f}%  {'  ' * depth}{frame}")
            if depth + 1 < max_depth:
                walk(child, depth + 1)

    walk(tree, 0)
    lines.append(f"top {top_self} functions by self time (share of all samples):")
    lines += [f"  {100 * n / total:5.1f}%  {frame}" for frame, n in own.most_common(top_self)]
    return lines


# -- main ------------------------------------------------------------------------------

def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Load benchmark of viss-bridge /xroad lookups with a bare Spyne baseline.")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[4],
                        help="concurrent clients; several values run one after another on the same servers (default 4)")
    parser.add_argument("--duration", type=float, default=10.0,
                        help="measured seconds per target and round (default 10)")
    parser.add_argument("--warmup", type=float, default=2.0,
                        help="unmeasured seconds before each measurement (default 2)")
    parser.add_argument("--requests", type=int, default=None,
                        help="cap on measured requests per target and round (the duration still bounds it)")
    parser.add_argument("--rounds", type=int, default=1,
                        help="alternate bridge and baseline this many times and pool the rounds (default 1)")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers for both servers (default 2)")
    parser.add_argument("--size", type=int, default=10000, help="demo persons to prepare (default 10000)")
    parser.add_argument("--keys", type=int, default=5000,
                        help="distinct existing person codes drawn at random to ask for (default 5000)")
    parser.add_argument("--data-dir", type=Path, default=None,
                        help="prepare (or reuse) the demo data here instead of a temporary folder; it is kept")
    parser.add_argument("--keep-data-dir", action="store_true", help="do not delete the temporary data folder")
    parser.add_argument("--bridge-env", action="append", default=[], metavar="KEY=VALUE",
                        help="extra environment for the bridge, e.g. VISS_BRIDGE_LOG_LEVEL=WARNING (repeatable)")
    parser.add_argument("--timeout", type=float, default=30.0, help="per-request timeout in seconds (default 30)")
    parser.add_argument("--prepare-timeout", type=float, default=1800.0,
                        help="limit for preparing the demo data in seconds (default 1800)")
    parser.add_argument("--profile", type=Path, default=None,
                        help="after the measured runs, profile one worker of each server with py-spy during an "
                             "extra run at the first concurrency; the bridge's raw collapsed stacks go to this "
                             "file, the baseline's next to it as NAME.baseline.EXT")
    parser.add_argument("--output", type=Path, default=None, help="also write all figures as JSON here")
    args = parser.parse_args(argv)
    if args.duration <= 0 or args.warmup < 0 or args.rounds < 1 or args.workers < 1 or args.size < 1:
        parser.error("--duration must be > 0; --warmup >= 0; --rounds, --workers and --size >= 1")
    if any(c < 1 for c in args.concurrency) or (args.requests is not None and args.requests < 1):
        parser.error("--concurrency and --requests must be >= 1")
    for item in args.bridge_env:
        if "=" not in item:
            parser.error(f"--bridge-env expects KEY=VALUE, got {item!r}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # SIGTERM unwinds like Ctrl+C so the finally blocks stop the servers.
    signal.signal(signal.SIGTERM, lambda _signo, _frame: sys.exit(143))
    machine = machine_info()
    temporary = args.data_dir is None
    data_dir = Path(tempfile.mkdtemp(prefix="viss-bench-")) if temporary else args.data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    servers: list[Server] = []
    report: dict[str, Any] = {"date": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
                              "command": [Path(sys.argv[0]).name, *(argv if argv is not None else sys.argv[1:])],
                              "machine": machine}
    try:
        print(f"preparing {args.size} demo persons in {data_dir} ...", flush=True)
        prepare_seconds = prepare_data(data_dir, args.size, args.prepare_timeout)
        codes = sample_person_codes(data_dir, args.size, args.keys, SEED)
        bodies = build_bodies(data_dir, codes)
        print(f"prepared in {prepare_seconds:.1f} s; {len(codes)} distinct person codes to look up; "
              f"request body {len(bodies[0])} bytes", flush=True)

        from viss_bridge.demo.seed import demo_paths

        paths = demo_paths(data_dir)
        bridge_port, baseline_port = free_port(), free_port()
        bridge_env = _clean_env({"VISS_BRIDGE_DATABASE_URL": paths.database_url,
                                 "VISS_BRIDGE_CATALOG_DIR": str(paths.catalog_dir),
                                 # the caller is the client named in the X-Road header, as under `viss-bridge
                                 # demo`: this measures lookups, not TLS handshakes (see README.md)
                                 "VISS_BRIDGE_TRUST_CLIENT_HEADER": "true",
                                 # a fresh multiprocess-metrics folder that goes away with the data folder
                                 "PROMETHEUS_MULTIPROC_DIR": str(data_dir / "prometheus"),
                                 **dict(item.split("=", 1) for item in args.bridge_env)})
        servers.append(start_server(
            "bridge", [sys.executable, "-m", "viss_bridge.cli", "serve", "--port", str(bridge_port),
                       "--workers", str(args.workers)],
            bridge_env, bridge_port, "/xroad", "/health", data_dir / "bridge.log"))
        servers.append(start_server(
            "baseline", [sys.executable, str(BASELINE_SCRIPT), "--port", str(baseline_port),
                         "--workers", str(args.workers)],
            _clean_env(), baseline_port, "/", "/?wsdl", data_dir / "baseline.log"))

        params = {"concurrency": args.concurrency, "duration": args.duration, "warmup": args.warmup,
                  "requests": args.requests, "rounds": args.rounds, "workers": args.workers, "size": args.size,
                  "keys": len(codes), "bridge_env": args.bridge_env}
        runs: dict[tuple[str, int], list[LoadResult]] = {}
        for concurrency in args.concurrency:
            spec_args = {"bodies": bodies, "codes": codes, "concurrency": concurrency, "warmup": args.warmup,
                         "duration": args.duration, "max_requests": args.requests, "timeout": args.timeout,
                         "seed": SEED}
            for round_no in range(args.rounds):
                for server in servers:
                    print(f"driving {server.name} at concurrency {concurrency} "
                          f"(round {round_no + 1}/{args.rounds}) ...", flush=True)
                    result = drive(server, spec_args)
                    runs.setdefault((server.name, concurrency), []).append(result)
        summaries = [summarise(target, concurrency, results) for (target, concurrency), results in runs.items()]
        machine["loadavg_at_end"] = list(os.getloadavg())
        print()
        print(render(summaries, machine, params))
        report.update(params=params, prepare_seconds=round(prepare_seconds, 1),
                      summaries=[asdict(s) for s in summaries],
                      ratios={str(b.concurrency): ratios(b, base) for b, base in _pairs(summaries)})

        if args.profile is not None:
            report["profiles"] = {}
            for server in servers:
                output = args.profile.resolve()
                if server.name != "bridge":
                    output = output.with_name(f"{output.stem}.{server.name}{output.suffix}")
                print(f"\nprofiling one {server.name} worker with py-spy at concurrency {args.concurrency[0]} ...",
                      flush=True)
                spec_args = {"bodies": bodies, "codes": codes, "concurrency": args.concurrency[0],
                             "warmup": args.warmup, "duration": args.duration, "max_requests": args.requests,
                             "timeout": args.timeout, "seed": SEED}
                result, top = profile_server(server, spec_args, output)
                profiled = summarise(f"{server.name} (profiled)", args.concurrency[0], [result])
                print(f"profiled run (not comparable: py-spy shares the CPUs): {profiled.throughput:.1f} req/s, "
                      f"{profiled.errors} errors; stacks in {output}")
                print("\n".join(top))
                report["profiles"][server.name] = {"file": str(output), "throughput": profiled.throughput,
                                                   "errors": profiled.errors, "summary": top}
        if args.output is not None:
            args.output.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
            print(f"\nfigures written to {args.output}")
        return 0 if all(s.errors == 0 for s in summaries) else 1
    finally:
        for server in reversed(servers):
            server.stop()
        if temporary and not args.keep_data_dir:
            shutil.rmtree(data_dir, ignore_errors=True)
        else:
            print(f"data folder kept: {data_dir}")


if __name__ == "__main__":
    sys.exit(main())
