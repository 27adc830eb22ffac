"""A search on an index over 1,000,000 records against a lookup by key, in the same run (issue 11 item 2).

Target: a search stays within 2x a lookup by key. The script fills a SQLite store with ``--records``
vehicles (default 1,000,000; ``executemany`` straight into ``dataset_records`` and ``dataset_index``,
the rows the store's own writes would make, so it finishes in minutes), registers a consumer with a
consent-based permission and ``--restricted`` persons' restrictions (so every search runs the
restriction exclusion), then measures CPU time per operation (``time.process_time``) of:

- ``DatasetStore.get`` (lookup by key) and ``DatasetStore.search`` on ``owners[].person_code``;
- ``GuardedRead.lookup`` and ``GuardedRead.search`` (decide, read, withhold, count, narrow) with the
  reserved use and tracker entries settled as the server does after the log commit;

for a value matching few records (1-2 vehicles of one person) and a value matching about 20
(a fleet owner: page 1 and, by cursor, page 2 of 10). It prints each figure and its ratio to the
lookup of the same layer.

Usage::

    .venv/bin/python benchmarks/search_vs_lookup.py                       # 1,000,000 records
    .venv/bin/python benchmarks/search_vs_lookup.py --records 100000 --repeat 200 --output /tmp/s.json
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from viss_bridge.access.policy import RegistryPolicy  # noqa: E402
from viss_bridge.access.registry import AccessRegistry  # noqa: E402
from viss_bridge.catalog.manifest import parse_manifest  # noqa: E402
from viss_bridge.catalog.search import SUBJECT_PATH, SearchRequest, fingerprint, subject_key  # noqa: E402
from viss_bridge.catalog.search_index import dataset_index, index_defs  # noqa: E402
from viss_bridge.catalog.store import DatasetStore, records  # noqa: E402
from viss_bridge.db import make_engine  # noqa: E402
from viss_bridge.facade.exchange import CallInfo, settle_uses  # noqa: E402
from viss_bridge.facade.guarded_read import GuardedRead  # noqa: E402

MANIFEST = """\
dataset: bench_vehicle
title: {lv: "Transportlīdzekļi", en: "Vehicles"}
owner: LV/GOV/40003345986/CSDD
key: [plate]
subject: holder_code
fields:
  - {name: plate, type: string, required: true}
  - {name: vin, type: string, required: true}
  - {name: holder_code, type: string, required: true}
  - {name: make, type: string}
  - name: technical
    type: object
    fields: [{name: fuel, type: string}, {name: mass, type: decimal}]
  - name: owners
    type: list
    fields: [{name: person_code, type: string}, {name: share, type: decimal}, {name: from, type: date}]
indexes:
  - owners[].person_code
"""
CLIENT = "LV/GOV/90000069281/BENCH"
FLEETS = 500  # persons owning about 20 vehicles each
FLEET_SIZE = 20


def person(number: int) -> str:
    return f"{number % 280000 + 10000:06d}-{number // 280000 + 10000:05d}"


def fill(engine: Any, dataset: Any, count: int, seed: int = 11) -> tuple[list[str], list[str]]:
    """Write ``count`` vehicles; returns (persons owning 1-2 vehicles, fleet owners with ~20)."""
    rng = random.Random(seed)
    name = dataset.dataset
    fleet = [f"32{n:04d}-{n % 90000 + 10000:05d}" for n in range(FLEETS)]
    now = dt.datetime.now(dt.timezone.utc)
    batch_records: list[dict[str, Any]] = []
    batch_entries: list[dict[str, Any]] = []
    few: list[str] = []

    def flush(conn: Any) -> None:
        conn.execute(records.insert(), batch_records)
        conn.execute(dataset_index.insert(), batch_entries)
        batch_records.clear()
        batch_entries.clear()

    with engine.begin() as conn:
        for i in range(count):
            plate = f"P{i:07d}"
            holder = person(i // 2)  # each person is the keeper of two vehicles
            owners = [holder]
            if i < FLEETS * FLEET_SIZE:
                owners.append(fleet[i % FLEETS])  # a leasing company's share
            elif rng.random() < 0.3:
                owners.append(person(rng.randrange(count // 2)))
            if i % 50_000 == 7:
                few.append(holder)
            data = {"plate": plate, "vin": f"VIN{i:014d}", "holder_code": holder, "make": "Škoda",
                    "technical": {"fuel": "diesel", "mass": "1385.5"},
                    "owners": [{"person_code": o, "share": "0.5", "from": "2020-01-01"} for o in owners]}
            batch_records.append({"dataset": name, "record_key": plate, "changed_at": now, "deleted": False,
                                  "data": json.dumps(data, ensure_ascii=False, separators=(",", ":"))})
            for value in dict.fromkeys(owners):
                batch_entries.append({"dataset": name, "path": "owners[].person_code", "value": value,
                                      "record_key": plate})
            batch_entries.append({"dataset": name, "path": SUBJECT_PATH, "value": subject_key(holder),
                                  "record_key": plate})
            if len(batch_records) >= 20_000:
                flush(conn)
        if batch_records:
            flush(conn)
        conn.execute(index_defs.insert().values(dataset=name, fingerprint=fingerprint(dataset), built_at=now))
    return few, fleet[:50]


def cpu_per_call(action: Callable[[], Any], repeat: int) -> float:
    """Median of 5 rounds of CPU milliseconds per call."""
    rounds = []
    for _ in range(5):
        start = time.process_time()
        for _ in range(repeat):
            action()
        rounds.append((time.process_time() - start) * 1000 / repeat)
    return sorted(rounds)[2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=300, help="calls per round (5 rounds, the median is kept)")
    parser.add_argument("--restricted", type=int, default=1000, help="persons who restricted the register")
    parser.add_argument("--folder", help="keep the database here (default: a temporary folder)")
    parser.add_argument("--output", help="write the figures as JSON here")
    parser.add_argument("--reuse", action="store_true", help="measure on the database already in --folder")
    args = parser.parse_args()

    folder = Path(args.folder or tempfile.mkdtemp(prefix="search-bench-"))
    database = folder / "bench.sqlite"
    reuse = args.reuse and database.exists()
    if database.exists() and not reuse:
        database.unlink()
    engine = make_engine(f"sqlite:///{database}")
    store = DatasetStore(engine)
    store.create_schema()
    dataset = parse_manifest(MANIFEST, "bench_vehicle.yaml")
    started = time.monotonic()
    if reuse:
        few = [person(i // 2) for i in range(args.records) if i % 50_000 == 7]
        fleets = [f"32{n:04d}-{n % 90000 + 10000:05d}" for n in range(50)]
    else:
        few, fleets = fill(engine, dataset, args.records)
        with engine.begin() as conn:
            conn.exec_driver_sql("ANALYZE")
    filled = time.monotonic() - started
    print(f"filled {args.records:,} records in {filled:.0f} s ({database.stat().st_size / 1e6:.0f} MB)", flush=True)

    registry = AccessRegistry(engine)
    registry.create_schema()
    registry.add_client(CLIENT, "bench")
    registry.grant(CLIENT, dataset.dataset, purpose="insurance offer", legal_basis="customer consent")
    policy = RegistryPolicy(registry, ttl=60.0)
    rng = random.Random(3)
    restricted = set(rng.sample(range(args.records // 2), args.restricted))
    for number in restricted if not reuse else ():
        policy.tracker.restrict(person(number), dataset, reason="bench")
    few = [p for p in few if p not in {person(n) for n in restricted}]
    reader = GuardedRead(store, policy)
    decision = reader.decide(CLIENT, dataset)

    keys = [f"P{i:07d}" for i in rng.sample(range(args.records), 200) if i // 2 not in restricted][:64]
    counter = iter(range(10**9))

    def pick(values: list[str]) -> str:
        return values[next(counter) % len(values)]

    def answered(read: Callable[[CallInfo], Any]) -> Callable[[], Any]:
        def call() -> Any:
            info = CallInfo(client=CLIENT, message_id="bench")
            result = read(info)
            settle_uses(info, True)  # the use was reserved; the tracker entries are written now
            return result
        return call

    fleet_page2 = {f: store.search(dataset, SearchRequest({"owners[].person_code": f}, page_size=10)).next_cursor
                   for f in fleets}
    sizes = [store.search(dataset, SearchRequest({"owners[].person_code": f}, page_size=50)).total for f in fleets]
    few_sizes = [store.search(dataset, SearchRequest({"owners[].person_code": p}, page_size=50)).total for p in few]
    cases: dict[str, Callable[[], Any]] = {
        "store: lookup by key": lambda: store.get(dataset, {"plate": pick(keys)}),
        "store: search, few matches": lambda: store.search(
            dataset, SearchRequest({"owners[].person_code": pick(few)}, page_size=10, page=1)),
        "store: search, ~20 matches, page 1 of 10": lambda: store.search(
            dataset, SearchRequest({"owners[].person_code": pick(fleets)}, page_size=10, page=1)),
        "store: search, ~20 matches, cursor page 2": lambda: (lambda f: store.search(
            dataset, SearchRequest({"owners[].person_code": f}, page_size=10, cursor=fleet_page2[f])))(pick(fleets)),
        "guarded: lookup by key": answered(lambda info: reader.lookup(decision, dataset, {"plate": pick(keys)}, info)),
        "guarded: search, few matches": answered(lambda info: reader.search(
            decision, dataset, SearchRequest({"owners[].person_code": pick(few)}, page_size=10, page=1), info)),
        "guarded: search, ~20 matches, page 1 of 10": answered(lambda info: reader.search(
            decision, dataset, SearchRequest({"owners[].person_code": pick(fleets)}, page_size=10, page=1), info)),
        "guarded: search, ~20 matches, cursor page 2": answered(lambda info: (lambda f: reader.search(
            decision, dataset, SearchRequest({"owners[].person_code": f}, page_size=10, cursor=fleet_page2[f]),
            info))(pick(fleets))),
    }
    for action in cases.values():  # warm the statement caches and the page cache
        for _ in range(50):
            action()
    figures = {name: cpu_per_call(action, args.repeat) for name, action in cases.items()}
    load = os.getloadavg()
    print(f"matches: few {min(few_sizes)}-{max(few_sizes)}, fleets {min(sizes)}-{max(sizes)}; "
          f"{args.restricted} restricted persons; load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    print(f"{'operation':48} {'CPU ms/op':>10} {'x lookup':>9}")
    for name, value in figures.items():
        base = figures["store: lookup by key" if name.startswith("store") else "guarded: lookup by key"]
        print(f"{name:48} {value:10.3f} {value / base:9.2f}")
    if args.output:
        Path(args.output).write_text(json.dumps({"records": args.records, "filled_s": filled, "load": load,
                                                 "cpu_ms": figures}, indent=2))


if __name__ == "__main__":
    main()
