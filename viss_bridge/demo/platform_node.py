"""The demo's second node playing the generation-III platform, and the main node's datasets answered through it.

``viss-bridge demo`` starts a second bridge node (own data folder ``<data-dir>/platform``, own
SQLite store and message log, own port) that publishes the enterprise register ``ur_company`` on
its ``/rest`` face. The platform node registers the main node as a connection
(``LV/GOV/90000000000/VISSBRIDGE``, the main node's ``provider`` identity) with a permission for
it, as an access request would; the main node then serves ``platform_company`` (live: every
lookup is a GET on the platform) and ``platform_company_replica`` (replicated: filled by
``viss-bridge sync`` through the platform's changes feed) on every face.

Like the whole demo, the platform node is in development mode: it believes the ``X-Road-Client``
header the main node sends (the ``platform_client`` setting). A production connection is a client
certificate (``platform_cert``/``platform_key``) or a token (``platform_token``); see docs/rest.md.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
import yaml

from viss_bridge.demo.children import stop_child
from viss_bridge.demo.world import DEMO_CATALOG_DIR

PLATFORM_DATASET = "ur_company"
LIVE = "platform_company"
REPLICA = "platform_company_replica"
PURPOSE = "demo: the bridge republishes the platform's enterprise register for generation-II consumers"


@dataclass
class PlatformNode:
    process: subprocess.Popen[bytes]
    url: str  # the node's base address
    data_dir: Path
    database_url: str
    permission: str  # the permission the platform granted the main node
    log_file: Path

    @property
    def rest_url(self) -> str:
        return f"{self.url}/rest"

    def stop(self) -> None:
        stop_child(self.process)


def prepare_platform(data_dir: Path, main_database_url: str, bridge_client: str,
                     reset: bool = False) -> tuple[Path, str, str]:
    """The platform node's folder: its catalog (ur_company), its records (copied from the main demo store)
    and the main node's connection with a permission. Returns (folder, database URL, permission number)."""
    from viss_bridge.access.registry import AccessRegistry
    from viss_bridge.catalog.catalog import load_catalog
    from viss_bridge.catalog.store import DatasetStore
    from viss_bridge.db import make_engine

    folder = data_dir / "platform"
    if reset:
        shutil.rmtree(folder, ignore_errors=True)
    catalog_dir = folder / "catalog"
    catalog_dir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(DEMO_CATALOG_DIR / f"{PLATFORM_DATASET}.yaml", catalog_dir / f"{PLATFORM_DATASET}.yaml")
    dataset = load_catalog(catalog_dir).get(PLATFORM_DATASET)
    assert dataset is not None
    database_url = f"sqlite:///{folder / 'platform.sqlite'}"
    engine = make_engine(database_url)
    main = make_engine(main_database_url)
    try:
        store = DatasetStore(engine)
        store.create_schema()
        if not store.count(dataset):
            records = [c.record for c in DatasetStore(main).changes(dataset, 0, 1_000_000) if c.record is not None]
            store.upsert(dataset, records)
        registry = AccessRegistry(engine)
        registry.create_schema()
        registry.add_client(bridge_client, "viss-bridge demo node (reads the platform for generation-II consumers)")
        permission = registry.grant(bridge_client, PLATFORM_DATASET, purpose=PURPOSE, legal_basis="demo",
                                    actor="demo").number
    finally:
        engine.dispose()
        main.dispose()
    return folder, database_url, permission


def start_platform(data_dir: Path, main_database_url: str, bridge_client: str, host: str, port: int,
                   inherit: dict[str, str] | None = None, reset: bool = False) -> PlatformNode:
    """Prepare and run the platform node (``viss-bridge serve``, one worker) and wait until it is healthy."""
    folder, database_url, permission = prepare_platform(data_dir, main_database_url, bridge_client, reset)
    env = {k: v for k, v in os.environ.items() if not k.startswith("VISS_BRIDGE_") and k != "PROMETHEUS_MULTIPROC_DIR"}
    env.update(inherit or {})
    env.update({"VISS_BRIDGE_DATABASE_URL": database_url, "VISS_BRIDGE_CATALOG_DIR": str(folder / "catalog"),
                "VISS_BRIDGE_NODE_ID": "platform", "VISS_BRIDGE_TRUST_CLIENT_HEADER": "true",
                "VISS_BRIDGE_PROVIDER": "LV/GOV/90000000001/PLATFORM"})
    log_file = folder / "platform.log"
    with open(log_file, "ab") as log:
        process = subprocess.Popen([sys.executable, "-m", "viss_bridge.cli", "serve", "--host", host, "--port",
                                    str(port), "--workers", "1"], stdout=log, stderr=subprocess.STDOUT, env=env)
    node = PlatformNode(process, f"http://{host}:{port}", folder, database_url, permission, log_file)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the platform node exited (see {log_file})")
        try:
            if requests.get(f"{node.url}/health", timeout=1).status_code == 200:
                return node
        except requests.RequestException:
            pass
        time.sleep(0.2)
    node.stop()
    raise RuntimeError(f"the platform node did not start (see {log_file})")


def platform_manifest(name: str, rest_url: str, permission: str, mode: str) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((DEMO_CATALOG_DIR / f"{PLATFORM_DATASET}.yaml").read_text(encoding="utf-8"))
    data["dataset"] = name
    suffix = {"lv": " (no platformas)", "en": " (from the platform)"} if mode == "live" else \
        {"lv": " (platformas kopija)", "en": " (replica of the platform's)"}
    data["title"] = {lang: text + suffix[lang] for lang, text in data["title"].items()}
    data.pop("legacy", None)
    data["register"] = PLATFORM_DATASET  # one register: a person's restriction covers the copies too
    data["source"] = {"kind": "platform", "mode": mode, "url": rest_url, "dataset": PLATFORM_DATASET,
                      "permission": permission, "timeouts": {"connect": 2, "operation": 10}}
    return data


def wire_platform(catalog_dir: Path, database_url: str, node: PlatformNode, clients: list[str],
                  settings: Any) -> tuple[list[str], str | None]:
    """Write the live and replicated manifests, grant the demo clients, run the replica's first sync (logged).

    Returns the notes to print and a key of the platform's dataset for the example call."""
    from viss_bridge.access.registry import AccessRegistry
    from viss_bridge.catalog.catalog import load_catalog
    from viss_bridge.catalog.store import DatasetStore
    from viss_bridge.db import make_engine
    from viss_bridge.facade.logging_sink import MessageLogSink
    from viss_bridge.facade.sources import ProviderLegSink
    from viss_bridge.msglog import MessageLog
    from viss_bridge.upstream.platform import PlatformConnection, PlatformPool
    from viss_bridge.upstream.pool import ProviderPool
    from viss_bridge.upstream.sync import SyncJob, SyncState

    for name, mode in ((LIVE, "live"), (REPLICA, "replicated")):
        manifest = platform_manifest(name, node.rest_url, node.permission, mode)
        (catalog_dir / f"{name}.yaml").write_text(yaml.safe_dump(manifest, allow_unicode=True, sort_keys=False),
                                                  encoding="utf-8")
    engine = make_engine(database_url)
    msglog = MessageLog.from_settings(settings)
    try:
        registry = AccessRegistry(engine)
        registry.create_schema()
        for client in clients:
            for name in (LIVE, REPLICA):
                registry.grant(client, name)
        state = SyncState(engine)
        state.create_schema()
        msglog.open()
        platform = PlatformPool(PlatformConnection.from_settings(settings),
                                sink=ProviderLegSink([MessageLogSink(msglog)]))
        replica = load_catalog(catalog_dir).get(REPLICA)
        assert replica is not None
        store = DatasetStore(engine)
        result = SyncJob(replica, store, ProviderPool(), state, platform).run()
        example = next((str(c.record["reg_number"]) for c in store.changes(replica, 0, 1) if c.record), None)
        return [f"{REPLICA}: {result.records} record(s) synced from the platform"
                + (f" (stopped: {result.error.message})" if result.error else "")], example
    finally:
        engine.dispose()
