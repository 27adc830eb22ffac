"""Prepare a demo node: catalog folder, SQLite store with the synthetic world, demo consumers.

The demo must run from a fresh clone in one command, so everything it needs
is made here from the shipped manifests and the deterministic generator.
The catalog is copied into the data folder so an operator can add a manifest
there and watch the running bridge publish it.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from viss_bridge.access.registry import AccessRegistry
from viss_bridge.catalog.catalog import Catalog, load_catalog
from viss_bridge.catalog.loading import reporting
from viss_bridge.catalog.store import DatasetStore
from viss_bridge.db import make_engine
from viss_bridge.demo.world import DEMO_CATALOG_DIR, generate_world


@dataclass(frozen=True)
class DemoClient:
    client_id: str
    name: str
    datasets: tuple[str, ...]


# Consumers modelled on real first-wave users of the registers.
DEMO_CLIENTS = (
    DemoClient("LV/GOV/90000069281/VID-EDS", "Valsts ieņēmumu dienests (State Revenue Service)",
               ("fpr_person", "ur_company", "vsaa_social_insurance", "vzd_address", "csdd_vehicle")),
    DemoClient("LV/GOV/90000022399/IZM-VIIS", "Izglītības un zinātnes ministrija (Ministry of Education)",
               ("fpr_person", "viis_education")),
    DemoClient("LV/GOV/90000056357/RIGA-DOME", "Rīgas valstspilsētas pašvaldība (Riga City Council)",
               ("fpr_person", "vzd_address", "ur_company")),
    DemoClient("LV/COM/40003000001/BANK-KYC", "AS Demo Banka (know-your-customer checks)",
               ("ur_company",)),
    # The state portal: persons see who read their data and restrict it (data tracker services).
    DemoClient("LV/GOV/90000010008/LATVIJA-LV", "Valsts pārvaldes pakalpojumu portāls Latvija.lv (person portal)",
               ("datatracker",)),
)
DEMO_PURPOSE = "demo: synthetic data, no real processing"
DEMO_LEGAL_BASIS = "demo"


@dataclass(frozen=True)
class DemoPaths:
    data_dir: Path
    catalog_dir: Path
    database: Path
    other_database_url: str | None = None

    @property
    def database_url(self) -> str:
        return self.other_database_url or f"sqlite:///{self.database}"


def demo_paths(data_dir: str | Path, database_url: str | None = None) -> DemoPaths:
    data = Path(data_dir).resolve()
    return DemoPaths(data, data / "catalog", data / "bridge.sqlite", database_url)


def prepare_demo(data_dir: str | Path, size: int = 200, seed: int = 2026, reset: bool = False,
                 database_url: str | None = None,
                 progress: Callable[[int, int | None], None] | None = None) -> tuple[DemoPaths, dict[str, int]]:
    """Create (or with ``reset``, recreate) the demo data folder; return its paths and record counts.

    ``database_url`` puts the demo data into another database (PostgreSQL) instead of the folder's SQLite.
    ``progress(records written, records in all)`` follows the load of the synthetic registers.
    """
    paths = demo_paths(data_dir, database_url)
    if reset and paths.data_dir.exists():
        for name in ("catalog",):
            shutil.rmtree(paths.data_dir / name, ignore_errors=True)
        for suffix in ("", "-wal", "-shm", "-journal"):
            Path(str(paths.database) + suffix).unlink(missing_ok=True)
    paths.catalog_dir.mkdir(parents=True, exist_ok=True)
    for manifest in sorted(DEMO_CATALOG_DIR.glob("*.yaml")):
        target = paths.catalog_dir / manifest.name
        if not target.exists():
            shutil.copyfile(manifest, target)
    _copy_contracts(paths.catalog_dir / "legacy")
    catalog = load_catalog(paths.catalog_dir)
    engine = make_engine(paths.database_url)
    store = DatasetStore(engine)
    store.create_schema()
    registry = AccessRegistry(engine)
    registry.create_schema()
    # Tables of the VISS endpoint, of the replay check and of replication, made here so serving workers
    # do not race to create them.
    from viss_bridge.facade.replay import ReplayTable
    from viss_bridge.facade.viss_state import VissState
    from viss_bridge.upstream.sync import SyncState

    VissState(engine).create_schema()
    ReplayTable(engine).create_schema()
    SyncState(engine).create_schema()
    counts = store.counts()
    if not counts or reset:
        world = generate_world(size=size, seed=seed)
        total = sum(len(records) for name, records in world.items() if catalog.get(name) is not None)
        written = 0
        for name, records in world.items():
            dataset = catalog.get(name)
            if dataset is not None:
                store.replace_all(dataset, reporting(records, progress, total, start=written))
                written += len(records)
        counts = store.counts()
    for client in DEMO_CLIENTS:
        registry.add_client(client.client_id, client.name)
        for dataset in client.datasets:
            # A plain permission: all fields, no expiry, no quota; granting again is a no-op.
            registry.grant(client.client_id, dataset, purpose=DEMO_PURPOSE, legal_basis=DEMO_LEGAL_BASIS,
                           actor="demo")
    _seed_access_request(registry, catalog)
    engine.dispose()
    return paths, counts


# One access request waiting for its owner's decision, so the data owner's console page and
# ``viss-bridge access requests`` have work to show in a fresh demo (docs/console.md).
DEMO_REQUEST = ("LV/GOV/90000056357/RIGA-DOME", "vsaa_social_insurance",
                "housing benefit: check that an applicant is socially insured",
                "Law on Assistance in Solving Apartment Matters, s. 14", ("person_code", "insured", "insurance_status"))


def _seed_access_request(registry: AccessRegistry, catalog: Catalog) -> None:
    """File the demo's pending request once: never again after any request exists (decided or not)."""
    from viss_bridge.access.requests import AccessRequests

    client, dataset, purpose, legal_basis, fields = DEMO_REQUEST
    if catalog.get(dataset) is None:
        return
    requests = AccessRequests(registry, catalog.get)
    if requests.list():
        return
    requests.submit(client, dataset, purpose=purpose, legal_basis=legal_basis, fields=fields, quota=1000,
                    actor=client)


def _copy_contracts(folder: Path) -> None:
    """The demo legacy contracts (mapping + original WSDL and its schemas) for /legacy/fpr, /legacy/var, /legacy/csdd."""
    from viss_bridge.demo.legacy_providers.registers import wsdl_dir

    folder.mkdir(parents=True, exist_ok=True)
    for mapping in sorted((Path(__file__).parent / "contracts").glob("*.yaml")):
        target = folder / mapping.name
        if not target.exists():
            shutil.copyfile(mapping, target)
    for wsdl in sorted([*wsdl_dir().glob("*.wsdl"), *wsdl_dir().glob("*.xsd")]):  # and the schemas they import
        target = folder / wsdl.name
        if not target.exists():
            shutil.copyfile(wsdl, target)


def example_person_code(data_dir: str | Path, database_url: str | None = None) -> str | None:
    """A person code that exists in the demo store, for the printed example call."""
    paths = demo_paths(data_dir, database_url)
    catalog = load_catalog(paths.catalog_dir)
    dataset = catalog.get("fpr_person")
    if dataset is None:
        return None
    engine = make_engine(paths.database_url)
    try:
        changes = DatasetStore(engine).changes(dataset, 0, 1)
    finally:
        engine.dispose()
    return changes[0].record["person_code"] if changes and changes[0].record else None
