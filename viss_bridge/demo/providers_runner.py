"""Start the demo legacy providers next to the demo bridge and wire them into its catalog."""

from __future__ import annotations

import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import requests

from viss_bridge.demo.children import stop_child
from viss_bridge.demo.legacy_providers.registers import REGISTERS


@dataclass
class RunningProviders:
    process: subprocess.Popen[bytes]
    addresses: dict[str, str]  # register -> SOAP endpoint
    control: dict[str, str]

    def stop(self) -> None:
        stop_child(self.process)


def start_demo_providers(host: str, base_port: int, size: int, log_file: Path) -> RunningProviders:
    """Run ``viss-bridge provider`` (all registers) in a child process and wait until each answers."""
    names = list(REGISTERS)
    log = open(log_file, "ab")
    process = subprocess.Popen([sys.executable, "-m", "viss_bridge.cli", "provider", *names, "--host", host,
                                "--port", str(base_port), "--size", str(size)], stdout=log, stderr=subprocess.STDOUT)
    addresses = {name: f"http://{host}:{base_port + i}{REGISTERS[name].path}" for i, name in enumerate(names)}
    control = {name: f"http://{host}:{base_port + i}/control" for i, name in enumerate(names)}
    deadline = time.monotonic() + 60
    pending = dict(control)
    while pending and time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the demo providers exited (see {log_file})")
        for name, url in list(pending.items()):
            try:
                if requests.get(url, timeout=1).status_code == 200:
                    pending.pop(name)
            except requests.RequestException:
                pass
        time.sleep(0.2)
    if pending:
        process.terminate()
        raise RuntimeError(f"the demo providers did not start (see {log_file})")
    return RunningProviders(process, addresses, control)


def wire_demo_providers(catalog_dir: Path, database_url: str, addresses: dict[str, str],
                        clients: list[str]) -> list[str]:
    """Write the live/replica manifests, grant the demo clients, run a first sync of the replicas."""
    from viss_bridge.access.registry import AccessRegistry
    from viss_bridge.catalog.catalog import load_catalog
    from viss_bridge.catalog.store import DatasetStore
    from viss_bridge.db import make_engine
    from viss_bridge.demo.legacy_catalog import write_legacy_manifests
    from viss_bridge.upstream.pool import ProviderPool
    from viss_bridge.upstream.sync import SyncJob, SyncState, replicated_datasets

    paths = write_legacy_manifests(catalog_dir, addresses)
    names = [p.stem for p in paths]
    engine = make_engine(database_url)
    try:
        registry = AccessRegistry(engine)
        registry.create_schema()
        for client in clients:
            for name in names:
                registry.grant(client, name)
        store = DatasetStore(engine)
        state = SyncState(engine)
        state.create_schema()
        pool = ProviderPool()
        notes = []
        for dataset in replicated_datasets(load_catalog(catalog_dir)):
            result = SyncJob(dataset, store, pool, state).run()
            notes.append(f"{dataset.dataset}: {result.records} record(s) synced"
                         + (f" (stopped: {result.error.message})" if result.error else ""))
        return names + notes
    finally:
        engine.dispose()
