"""Where each legacy service stands in its migration, kept in the bridge's database.

A service moves through ``inventoried -> mapped -> shadowing -> switched_over ->
retired``. Every move is an event (who, when, from, to, why), so the report can
draw progress over time and an auditor can see who switched what. Shadow runs
are stored with their parity, and switching over is refused while the latest
parity is below a threshold unless forced.

Tables use the same engines as the rest of the bridge (:mod:`viss_bridge.db`):
SQLite by default, PostgreSQL in production.
"""

from __future__ import annotations

import datetime as dt
import getpass
import json
import re
from dataclasses import dataclass
from typing import Any, Iterable

from sqlalchemy import (Column, DateTime, Float, ForeignKey, Integer, MetaData, String, Table, Text, insert, select,
                        update)
from sqlalchemy.engine import Engine

from viss_bridge.migration.wsdl import WsdlInventory

STATES = ("inventoried", "mapped", "shadowing", "switched_over", "retired")
STATE_LABELS = {"inventoried": "inventoried", "mapped": "mapped", "shadowing": "shadowing",
                "switched_over": "switched over", "retired": "retired"}

# The moves a team makes in the normal course of a migration (and the ways back).
TRANSITIONS = {
    "inventoried": {"mapped"},
    "mapped": {"shadowing", "inventoried"},
    "shadowing": {"switched_over", "mapped"},
    "switched_over": {"retired", "shadowing"},  # back to shadowing = roll back to the legacy provider
    "retired": set(),
}

metadata = MetaData()

services = Table(
    "migration_services", metadata,
    Column("name", String(200), primary_key=True),
    Column("title", String(300), nullable=False, default=""),
    Column("wsdl", Text, nullable=False, default=""),
    Column("namespace", String(500), nullable=False, default=""),
    Column("operations", Integer, nullable=False, default=0),
    Column("complexity", Integer, nullable=False, default=0),
    Column("state", String(20), nullable=False),
    Column("datasets", String(500), nullable=False, default=""),
    Column("parity", Float, nullable=True),  # percent, from the latest shadow run
    Column("shadow_requests", Integer, nullable=False, default=0),
    Column("shadow_at", DateTime(timezone=True), nullable=True),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("note", Text, nullable=False, default=""),
)

events = Table(
    "migration_events", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("service", String(200), ForeignKey("migration_services.name", ondelete="CASCADE"), nullable=False,
           index=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("from_state", String(20), nullable=True),
    Column("to_state", String(20), nullable=False),
    Column("actor", String(200), nullable=False, default=""),
    Column("note", Text, nullable=False, default=""),
)

shadow_runs = Table(
    "migration_shadow_runs", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("service", String(200), ForeignKey("migration_services.name", ondelete="CASCADE"), nullable=False,
           index=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("requests", Integer, nullable=False),
    Column("equal", Integer, nullable=False),
    Column("different", Integer, nullable=False),
    Column("errors", Integer, nullable=False),
    Column("parity", Float, nullable=False),
    Column("differing", Text, nullable=False, default="{}"),  # JSON: field path -> requests where it differs
)


class TransitionRefused(ValueError):
    """A state change that is not allowed (or not yet: parity too low)."""


@dataclass(frozen=True)
class ServiceState:
    name: str
    title: str
    wsdl: str
    namespace: str
    operations: int
    complexity: int
    state: str
    datasets: tuple[str, ...]
    parity: float | None
    shadow_requests: int
    shadow_at: dt.datetime | None
    updated_at: dt.datetime
    note: str

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "title": self.title, "wsdl": self.wsdl, "namespace": self.namespace,
                "operations": self.operations, "complexity": self.complexity, "state": self.state,
                "datasets": list(self.datasets), "parity": self.parity, "shadow_requests": self.shadow_requests,
                "shadow_at": self.shadow_at.isoformat() if self.shadow_at else None,
                "updated_at": self.updated_at.isoformat(), "note": self.note}


@dataclass(frozen=True)
class Event:
    service: str
    at: dt.datetime
    from_state: str | None
    to_state: str
    actor: str
    note: str


VISS_NAMESPACE = re.compile(r"/XMLSchemas/(?P<inst>[^/]+)/(?P<name>[^/]+)/(?P<ver>v[0-9][^/]*)/?$")


def service_id(namespace: str, service_name: str) -> str:
    """The name a legacy service is tracked under.

    VISS namespaces (``http://ivis.eps.gov.lv/XMLSchemas/<institution>/<Name>/v1-0``) give
    ``<institution>/<Name>/v1-0``, the way migration teams name generation-II services;
    otherwise the WSDL's service name.
    """
    match = VISS_NAMESPACE.search(namespace or "")
    if match:
        return f"{match['inst']}/{match['name']}/{match['ver']}"
    return service_name


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _aware(value: dt.datetime | None) -> dt.datetime | None:
    if value is None:
        return None
    return value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)


def _actor() -> str:
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no user name in some containers
        return "unknown"


class MigrationTracker:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def create_schema(self) -> None:
        metadata.create_all(self.engine)

    # -- reads -------------------------------------------------------------------------------

    def services(self) -> list[ServiceState]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(services).order_by(services.c.name)).all()
        return [self._state(row) for row in rows]

    def get(self, name: str) -> ServiceState | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(services).where(services.c.name == name)).first()
        return self._state(row) if row else None

    def events(self, name: str | None = None) -> list[Event]:
        query = select(events).order_by(events.c.at, events.c.id)
        if name:
            query = query.where(events.c.service == name)
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        return [Event(r.service, _aware(r.at), r.from_state, r.to_state, r.actor, r.note) for r in rows]  # type: ignore[arg-type]

    def shadow_history(self, name: str) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(shadow_runs).where(shadow_runs.c.service == name)
                                .order_by(shadow_runs.c.at, shadow_runs.c.id)).all()
        return [{"at": _aware(r.at), "requests": r.requests, "equal": r.equal, "different": r.different,
                 "errors": r.errors, "parity": r.parity, "differing": json.loads(r.differing or "{}")} for r in rows]

    def latest_differences(self) -> dict[str, dict[str, int]]:
        """Per service, the fields that differed in its latest shadow run (for status and the report)."""
        result: dict[str, dict[str, int]] = {}
        with self.engine.connect() as conn:
            rows = conn.execute(select(shadow_runs.c.service, shadow_runs.c.differing)
                                .order_by(shadow_runs.c.at, shadow_runs.c.id)).all()
        for service, differing in rows:
            result[service] = json.loads(differing or "{}")
        return result

    @staticmethod
    def _state(row: Any) -> ServiceState:
        return ServiceState(row.name, row.title, row.wsdl, row.namespace, row.operations, row.complexity, row.state,
                            tuple(d for d in row.datasets.split(",") if d), row.parity, row.shadow_requests,
                            _aware(row.shadow_at), _aware(row.updated_at), row.note)  # type: ignore[arg-type]

    # -- writes ------------------------------------------------------------------------------

    def record_inventory(self, inventory: WsdlInventory, at: dt.datetime | None = None) -> list[str]:
        """Add every service of an inventoried WSDL (new ones start as ``inventoried``); update figures of known ones."""
        names = []
        for service in inventory.services:
            names.append(self.add(service_id(service.namespace, service.name), title=service.name,
                                  wsdl=inventory.source, namespace=service.namespace,
                                  operations=len(service.operations()), complexity=service.complexity, at=at))
        return names

    def add(self, name: str, *, title: str = "", wsdl: str = "", namespace: str = "", operations: int = 0,
            complexity: int = 0, at: dt.datetime | None = None) -> str:
        at = at or _now()
        with self.engine.begin() as conn:
            existing = conn.execute(select(services.c.name).where(services.c.name == name)).first()
            figures = {"title": title or name, "wsdl": wsdl, "namespace": namespace, "operations": operations,
                       "complexity": complexity, "updated_at": at}
            if existing:
                conn.execute(update(services).where(services.c.name == name).values(**figures))
            else:
                conn.execute(insert(services).values(name=name, state="inventoried", datasets="", shadow_requests=0,
                                                     note="", **figures))
                conn.execute(insert(events).values(service=name, at=at, from_state=None, to_state="inventoried",
                                                   actor=_actor(), note=f"inventoried from {wsdl}" if wsdl else ""))
        return name

    def transition(self, name: str, to_state: str, *, note: str = "", force: bool = False, min_parity: float = 100.0,
                   datasets: Iterable[str] | None = None, at: dt.datetime | None = None,
                   actor: str | None = None) -> ServiceState:
        if to_state not in STATES:
            raise TransitionRefused(f"unknown state '{to_state}'; states are {', '.join(STATES)}")
        at = at or _now()
        with self.engine.begin() as conn:
            row = conn.execute(select(services).where(services.c.name == name)).first()
            if row is None:
                raise TransitionRefused(f"no service '{name}' is tracked; inventory it first "
                                        "(viss-bridge migrate inventory WSDL --record)")
            current = row.state
            if to_state == current:
                raise TransitionRefused(f"{name} is already {STATE_LABELS[current]}")
            if not force and to_state not in TRANSITIONS[current]:
                allowed = ", ".join(sorted(TRANSITIONS[current])) or "none (final)"
                raise TransitionRefused(f"{name} is {STATE_LABELS[current]}; it can move to: {allowed} "
                                        "(--force overrides)")
            if to_state == "switched_over" and not force:
                if row.parity is None:
                    raise TransitionRefused(f"{name} has no shadow comparison yet; run 'viss-bridge migrate shadow' "
                                            "with --record first (--force overrides)")
                if row.parity < min_parity:
                    raise TransitionRefused(f"{name} has {row.parity:.1f}% parity in its latest shadow run, below "
                                            f"{min_parity:g}%; fix the differences first (--force overrides)")
            values: dict[str, Any] = {"state": to_state, "updated_at": at}
            if datasets is not None:
                values["datasets"] = ",".join(datasets)
            conn.execute(update(services).where(services.c.name == name).values(**values))
            conn.execute(insert(events).values(service=name, at=at, from_state=current, to_state=to_state,
                                               actor=actor or _actor(), note=note + (" (forced)" if force else "")))
        state = self.get(name)
        assert state is not None
        return state

    def record_shadow(self, name: str, requests: int, equal: int, different: int, errors: int,
                      at: dt.datetime | None = None, differing: dict[str, int] | None = None) -> ServiceState:
        """Store a shadow run; a mapped (or inventoried) service moves to ``shadowing``."""
        at = at or _now()
        parity = round(100.0 * equal / requests, 2) if requests else 0.0
        with self.engine.begin() as conn:
            row = conn.execute(select(services).where(services.c.name == name)).first()
            if row is None:
                raise TransitionRefused(f"no service '{name}' is tracked; inventory it first "
                                        "(viss-bridge migrate inventory WSDL --record)")
            conn.execute(insert(shadow_runs).values(service=name, at=at, requests=requests, equal=equal,
                                                    different=different, errors=errors, parity=parity,
                                                    differing=json.dumps(differing or {}, ensure_ascii=False)))
            values: dict[str, Any] = {"parity": parity, "shadow_requests": requests, "shadow_at": at, "updated_at": at}
            if row.state in ("inventoried", "mapped"):
                values["state"] = "shadowing"
                conn.execute(insert(events).values(service=name, at=at, from_state=row.state, to_state="shadowing",
                                                   actor=_actor(), note=f"first shadow run: {parity:g}% parity"))
            conn.execute(update(services).where(services.c.name == name).values(**values))
        state = self.get(name)
        assert state is not None
        return state


def summary(states: list[ServiceState]) -> dict[str, Any]:
    """Counts per state and overall figures, for status, report and Markdown."""
    counts = {s: 0 for s in STATES}
    for s in states:
        counts[s.state] = counts.get(s.state, 0) + 1
    total = len(states)
    moved = counts["switched_over"] + counts["retired"]
    measured = [s.parity for s in states if s.parity is not None]
    return {"total": total, "counts": counts, "moved": moved,
            "moved_percent": round(100.0 * moved / total, 1) if total else 0.0,
            "mean_parity": round(sum(measured) / len(measured), 1) if measured else None,
            "full_parity": sum(1 for p in measured if p >= 100.0), "measured": len(measured)}
