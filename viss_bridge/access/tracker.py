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
audited.

Persons are identified by their personal code; :func:`person_key` makes
``LV010190-10009``, ``010190-10009`` and ``01019010009`` the same person.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Iterable

from sqlalchemy import func, insert, select, update
from sqlalchemy.engine import Engine

from viss_bridge.access import audit
from viss_bridge.access.audit import AuditEvent, AuditTrail
from viss_bridge.access.registry import AccessStoreUnavailable, PermissionProblem, aware, now_utc
from viss_bridge.access.tables import restrictions, usage_entries

from sqlalchemy.exc import SQLAlchemyError


def person_key(code: str) -> str:
    """Normalise a personal code or an X-Road userId naming a Latvian person."""
    text = code.strip().upper()
    if text.startswith("LV") and text[2:3].isdigit():
        text = text[2:]
    return text.replace("-", "").replace(" ", "")


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

    @property
    def active(self) -> bool:
        return self.lifted_at is None


def _restriction(row: Any) -> Restriction:
    return Restriction(id=row.id, person=row.person, dataset=row.dataset, reason=row.reason,
                       created_at=aware(row.created_at), created_by=row.created_by, lifted_at=aware(row.lifted_at),
                       lifted_by=row.lifted_by)


class DataTracker:
    def __init__(self, engine: Engine, audit_trail: AuditTrail | None = None) -> None:
        self.engine = engine
        self.audit = audit_trail or AuditTrail(engine)

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

    def restrict(self, person: str, dataset: str, reason: str = "", actor: str | None = None) -> Restriction:
        key = person_key(person)
        actor = actor or f"person:{key}"
        with self.audit.begin() as conn:
            existing = conn.execute(select(restrictions).where(
                restrictions.c.person == key, restrictions.c.dataset == dataset,
                restrictions.c.lifted_at.is_(None))).first()
            if existing is not None:
                return _restriction(existing)
            created = now_utc()
            result = conn.execute(insert(restrictions).values(person=key, dataset=dataset, reason=reason or None,
                                                              created_at=created, created_by=actor))
            ident = result.inserted_primary_key[0]
            self.audit.write(conn, AuditEvent(audit.RESTRICTION_ADDED, actor, "restriction", f"{key}/{dataset}",
                                              {"person": key, "dataset": dataset, "reason": reason, "id": ident}))
            row = conn.execute(select(restrictions).where(restrictions.c.id == ident)).first()
        return _restriction(row)

    def lift(self, person: str, dataset: str, actor: str | None = None) -> Restriction:
        key = person_key(person)
        actor = actor or f"person:{key}"
        with self.audit.begin() as conn:
            row = conn.execute(select(restrictions).where(
                restrictions.c.person == key, restrictions.c.dataset == dataset,
                restrictions.c.lifted_at.is_(None))).first()
            if row is None:
                raise PermissionProblem(f"person {key} has no restriction on {dataset}")
            conn.execute(update(restrictions).where(restrictions.c.id == row.id)
                         .values(lifted_at=now_utc(), lifted_by=actor))
            self.audit.write(conn, AuditEvent(audit.RESTRICTION_LIFTED, actor, "restriction", f"{key}/{dataset}",
                                              {"person": key, "dataset": dataset, "id": row.id}))
            row = conn.execute(select(restrictions).where(restrictions.c.id == row.id)).first()
        return _restriction(row)

    def restrictions(self, person: str | None = None, active_only: bool = True) -> list[Restriction]:
        query = select(restrictions).order_by(restrictions.c.id)
        if person is not None:
            query = query.where(restrictions.c.person == person_key(person))
        if active_only:
            query = query.where(restrictions.c.lifted_at.is_(None))
        with self.engine.connect() as conn:
            return [_restriction(r) for r in conn.execute(query).all()]

    def restricted(self, dataset: str, persons: Iterable[str]) -> set[str]:
        """Which of these persons (as given) restrict ``dataset`` now."""
        by_key: dict[str, list[str]] = {}
        for person in persons:
            by_key.setdefault(person_key(person), []).append(person)
        if not by_key:
            return set()
        try:
            with self.engine.connect() as conn:
                rows = conn.execute(select(restrictions.c.person).where(
                    restrictions.c.dataset == dataset, restrictions.c.lifted_at.is_(None),
                    restrictions.c.person.in_(list(by_key)))).all()
        except SQLAlchemyError as exc:
            raise AccessStoreUnavailable(f"restriction read failed: {exc.__class__.__name__}") from exc
        return {given for row in rows for given in by_key.get(row.person, [])}
