"""Persons in control of their data: the data tracker and distribution restrictions.

**Data tracker.** Every answer that carried a person's record (the manifest's
``subject`` field) leaves one usage entry per person: when, which consumer,
which dataset, the purpose and number of the permission used, and the
official's ``userId``. Entries are written by
:meth:`AccessRegistry.use` in the same transaction that counts the
permission use, so an answer is never served without its entry.

**Restrictions.** A person may restrict a dataset's distribution. While the
restriction stands, answers to consumers whose permission does not rest on a
legal obligation omit that person's record and say so (the facades add a
typed ``withheld`` indication, see docs/access.md). Adding and lifting are
audited. A restriction covers the **register** the dataset publishes (the
manifest's ``register``, by default the dataset's name), not only the name the
person used: every dataset publishing that register (a copy, a replica, a live
view of the same register) honours it.

Persons are identified by their personal code; :func:`person_key` makes
``LV010190-10009``, ``010190-10009`` and ``01019010009`` the same person.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterable, Sequence

from sqlalchemy import bindparam, func, insert, or_, select, update
from sqlalchemy.engine import Engine

from viss_bridge.access import audit
from viss_bridge.access.audit import AuditEvent, AuditTrail
from viss_bridge.access.registry import AccessStoreUnavailable, PermissionProblem, aware, now_utc
from viss_bridge.access.tables import restrictions, usage_entries
from viss_bridge.catalog.search import subject_key
from viss_bridge.catalog.sqlreads import direct_reads

from sqlalchemy.exc import SQLAlchemyError

if TYPE_CHECKING:
    from viss_bridge.catalog.manifest import Dataset


def person_key(code: str) -> str:
    """Normalise a personal code or an X-Road userId naming a Latvian person (the search index keys the
    data subject the same way, so restrictions are matched in SQL: ``catalog.search.subject_key``)."""
    return subject_key(code)


@dataclass(frozen=True)
class Usage:
    id: int
    at: dt.datetime
    client_id: str
    dataset: str
    purpose: str | None
    permission_number: str | None
    user_id: str | None
    message_id: str | None

    def to_json(self) -> dict[str, Any]:
        return {"at": self.at.isoformat(), "client": self.client_id, "dataset": self.dataset,
                "purpose": self.purpose, "permission": self.permission_number, "user_id": self.user_id,
                "message_id": self.message_id}


@dataclass(frozen=True)
class Restriction:
    id: int
    person: str
    dataset: str
    reason: str | None
    created_at: dt.datetime
    created_by: str
    lifted_at: dt.datetime | None
    lifted_by: str | None
    register: str = ""  # the register it covers (see the module docstring)

    @property
    def active(self) -> bool:
        return self.lifted_at is None


def _restriction(row: Any) -> Restriction:
    return Restriction(id=row.id, person=row.person, dataset=row.dataset, reason=row.reason,
                       created_at=aware(row.created_at), created_by=row.created_by, lifted_at=aware(row.lifted_at),
                       lifted_by=row.lifted_by, register=row.register or row.dataset)


def _scope(dataset: "str | Dataset") -> tuple[str, str]:
    """(name, register) of a dataset; a bare name (a dataset no longer in the catalog) is its own register."""
    if isinstance(dataset, str):
        return dataset, dataset
    return dataset.dataset, dataset.register_key


def _covering(name: str, register: str) -> Any:
    """Restrictions that apply to a dataset: those of its register, and any made under its own name."""
    return or_(restrictions.c.register == register, restrictions.c.dataset == name)


# Asked for every answer that carries a person's record: plain SQL on the thread's own connection
# (catalog.sqlreads), or, for in-memory SQLite, a statement built once.
_RESTRICTED_SQL = (f"SELECT person FROM {restrictions.name} WHERE (register = ? OR dataset = ?) AND lifted_at IS NULL "
                   "AND person IN")
_RESTRICTED = select(restrictions.c.person).where(
    or_(restrictions.c.register == bindparam("register"), restrictions.c.dataset == bindparam("name")),
    restrictions.c.lifted_at.is_(None), restrictions.c.person.in_(bindparam("persons", expanding=True)))


class DataTracker:
    def __init__(self, engine: Engine, audit_trail: AuditTrail | None = None) -> None:
        self.engine = engine
        self.audit = audit_trail or AuditTrail(engine)
        self._restricting: dict[tuple[str, str], Any] = {}
        self.direct = direct_reads(engine)  # the restriction check, on every answer with a data subject

    # -- usage ---------------------------------------------------------------------

    def usage(self, person: str, offset: int = 0, limit: int = 50) -> tuple[list[Usage], int]:
        """One person's usage entries, newest first, and how many there are in all."""
        key = person_key(person)
        try:
            with self.engine.connect() as conn:
                rows = conn.execute(select(usage_entries).where(usage_entries.c.person == key)
                                    .order_by(usage_entries.c.id.desc()).offset(offset).limit(limit)).all()
                total = conn.execute(select(func.count()).select_from(usage_entries)
                                     .where(usage_entries.c.person == key)).scalar_one()
        except SQLAlchemyError as exc:
            raise AccessStoreUnavailable(f"tracker read failed: {exc.__class__.__name__}") from exc
        return [Usage(id=r.id, at=aware(r.at), client_id=r.client_id, dataset=r.dataset, purpose=r.purpose,
                      permission_number=r.permission_number, user_id=r.user_id, message_id=r.message_id)
                for r in rows], int(total)

    # -- restrictions ------------------------------------------------------------------

    def restrict(self, person: str, dataset: "str | Dataset", reason: str = "",
                 actor: str | None = None) -> Restriction:
        """Restrict the register ``dataset`` publishes (a Dataset; a bare name is its own register)."""
        key = person_key(person)
        actor = actor or f"person:{key}"
        name, register = _scope(dataset)
        with self.audit.begin() as conn:
            existing = conn.execute(select(restrictions).where(
                restrictions.c.person == key, _covering(name, register),
                restrictions.c.lifted_at.is_(None)).order_by(restrictions.c.id)).first()
            if existing is not None:
                return _restriction(existing)
            created = now_utc()
            result = conn.execute(insert(restrictions).values(person=key, dataset=name, register=register,
                                                              reason=reason or None, created_at=created,
                                                              created_by=actor))
            primary_key = result.inserted_primary_key
            assert primary_key is not None  # a single-row INSERT always has one
            ident = primary_key[0]
            self.audit.write(conn, AuditEvent(audit.RESTRICTION_ADDED, actor, "restriction", f"{key}/{name}",
                                              {"person": key, "dataset": name, "register": register,
                                               "reason": reason, "id": ident}))
            row = conn.execute(select(restrictions).where(restrictions.c.id == ident)).first()
        return _restriction(row)

    def lift(self, person: str, dataset: "str | Dataset", actor: str | None = None) -> Restriction:
        """Lift every active restriction that applies to ``dataset`` (of its register or under its name)."""
        key = person_key(person)
        actor = actor or f"person:{key}"
        name, register = _scope(dataset)
        with self.audit.begin() as conn:
            rows = conn.execute(select(restrictions).where(
                restrictions.c.person == key, _covering(name, register),
                restrictions.c.lifted_at.is_(None)).order_by(restrictions.c.id)).all()
            if not rows:
                raise PermissionProblem(f"person {key} has no restriction on {name}")
            for row in rows:
                conn.execute(update(restrictions).where(restrictions.c.id == row.id)
                             .values(lifted_at=now_utc(), lifted_by=actor))
                self.audit.write(conn, AuditEvent(audit.RESTRICTION_LIFTED, actor, "restriction",
                                                  f"{key}/{row.dataset}",
                                                  {"person": key, "dataset": row.dataset,
                                                   "register": row.register or row.dataset, "id": row.id}))
            first = conn.execute(select(restrictions).where(restrictions.c.id == rows[0].id)).first()
        return _restriction(first)

    def adopt_registers(self, datasets: Iterable["Dataset"]) -> int:
        """Restrictions made under a dataset's name before its manifest declared a ``register`` now cover
        that register (so its copies honour them too). Idempotent; run when a catalog is published."""
        changed = 0
        with self.engine.begin() as conn:
            for d in datasets:
                if d.subject and d.register_key != d.dataset:
                    changed += conn.execute(update(restrictions).where(
                        restrictions.c.dataset == d.dataset, restrictions.c.register == d.dataset,
                        restrictions.c.lifted_at.is_(None)).values(register=d.register_key)).rowcount or 0
        return changed

    def restrictions(self, person: str | None = None, active_only: bool = True) -> list[Restriction]:
        query = select(restrictions).order_by(restrictions.c.id)
        if person is not None:
            query = query.where(restrictions.c.person == person_key(person))
        if active_only:
            query = query.where(restrictions.c.lifted_at.is_(None))
        with self.engine.connect() as conn:
            return [_restriction(r) for r in conn.execute(query).all()]

    def restricting(self, dataset: "str | Dataset") -> Any:
        """A SQL select of every person (person_key) restricting ``dataset``'s register now; the dataset
        store runs it inside a search, so restricted persons' records leave the page and the total."""
        name, register = _scope(dataset)
        scope = (name, register)
        query = self._restricting.get(scope)
        if query is None:  # one select per register: the store reuses its statements built around it
            query = select(restrictions.c.person).where(_covering(name, register), restrictions.c.lifted_at.is_(None))
            self._restricting[scope] = query
        return query

    def restricted(self, dataset: "str | Dataset", persons: Iterable[str]) -> set[str]:
        """Which of these persons (as given) restrict ``dataset``'s register (or the dataset by name) now."""
        name, register = _scope(dataset)
        by_key: dict[str, list[str]] = {}
        for person in persons:
            by_key.setdefault(person_key(person), []).append(person)
        if not by_key:
            return set()
        rows: Sequence[Any]
        try:
            if self.direct.enabled:
                marks = ", ".join("?" * len(by_key))
                rows = self.direct.rows(f"{_RESTRICTED_SQL} ({marks})", (register, name, *by_key))
            else:
                with self.engine.connect() as conn:
                    rows = conn.execute(_RESTRICTED, {"name": name, "register": register,
                                                      "persons": list(by_key)}).all()
        except Exception as exc:  # SQLAlchemy's or the driver's own error types
            raise AccessStoreUnavailable(f"restriction read failed: {exc.__class__.__name__}") from exc
        return {given for row in rows for given in by_key.get(row[0], [])}
