"""The audit trail of access control: every step that changes who may read what.

Each step (an access request made, approved, rejected; a permission granted or
revoked; a certificate registered; a person's restriction added or lifted) is
an :class:`AuditEvent`. It is written as a row of ``access_audit`` **in the same
database transaction as the change itself**, so a change without its audit row
cannot exist.

Other receivers (the message log, which signs the records into its chain) hook
in through :class:`AuditSink`: add a sink to :data:`DEFAULT_SINKS` (every
registry created afterwards in this process uses it) or to one registry's
``audit.sinks``. A sink is called inside the transaction, before commit, with
that transaction's connection; if it raises, the change is rolled back and the
caller gets :class:`AuditFailed`, so no step happens that the sinks did not see.
A sink that keeps its records in the same database must write through the
connection it is given (a second connection to the same SQLite file would wait
for this transaction's write lock).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from dataclasses import asdict, dataclass, field
import threading
from contextlib import contextmanager
from typing import Any, Iterator, Protocol

from sqlalchemy import insert, select
from sqlalchemy.engine import Connection, Engine

from viss_bridge.access.tables import access_audit

log = logging.getLogger(__name__)

# Actions, as written in the ``action`` column (stable names: reports and the message log rely on them).
REQUEST_CREATED = "request.created"
REQUEST_APPROVED = "request.approved"
REQUEST_REJECTED = "request.rejected"
PERMISSION_GRANTED = "permission.granted"
PERMISSION_REVOKED = "permission.revoked"
PERMISSION_MIGRATED = "permission.migrated"
CONNECTION_CERTIFICATE_ADDED = "connection.certificate-added"
CONNECTION_CERTIFICATE_REMOVED = "connection.certificate-removed"
RESTRICTION_ADDED = "restriction.added"
RESTRICTION_LIFTED = "restriction.lifted"


@dataclass(frozen=True)
class AuditEvent:
    """One access-control step: who did what to which object, with the details that matter."""

    action: str
    actor: str  # the authenticated client, "cli:<user>" for an operator, or "person:<code>"
    object_kind: str  # request | permission | connection | restriction
    object_id: str
    details: dict[str, Any] = field(default_factory=dict)
    at: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.timezone.utc))

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["at"] = self.at.isoformat()
        return data


class AuditSink(Protocol):
    """Receives every audit event inside the transaction of its change; raising aborts the change."""

    def record(self, event: AuditEvent, connection: Connection) -> None: ...


class CommittedAuditSink(Protocol):
    """Receives every audit event after its change has committed (the signed message log).

    Used where a sink cannot write inside the change's transaction: the message log keeps its own
    connection and, on SQLite, would wait for this transaction's write lock. A failure here is logged;
    the change and its ``access_audit`` row stand.
    """

    def committed(self, event: AuditEvent) -> None: ...


class AuditFailed(RuntimeError):
    """An audit sink refused an event; the change it described was rolled back."""


# Sinks every new AuditTrail starts with (the message log registers itself here).
DEFAULT_SINKS: list[AuditSink] = []


class AuditTrail:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.sinks: list[AuditSink] = list(DEFAULT_SINKS)
        self.committed_sinks: list[CommittedAuditSink] = []
        self._local = threading.local()

    @contextmanager
    def begin(self) -> Iterator[Connection]:
        """``engine.begin()`` that hands the events written in it to the committed sinks once it commits."""
        pending: list[AuditEvent] = []
        stack = self._local.__dict__.setdefault("stack", [])
        stack.append(pending)
        try:
            with self.engine.begin() as conn:
                yield conn
        finally:
            stack.pop()
        for event in pending:  # only reached when the transaction committed
            for sink in self.committed_sinks:
                try:
                    sink.committed(event)
                except Exception as exc:  # the change stands; say loudly that its signed record is missing
                    log.error("audit event committed but not written to the message log", exc_info=exc,
                              extra={"action": event.action, "object_id": event.object_id})

    def write(self, conn: Connection, event: AuditEvent) -> None:
        """Write the event in the caller's transaction, then hand it to every sink."""
        conn.execute(insert(access_audit).values(
            at=event.at, action=event.action, actor=event.actor, object_kind=event.object_kind,
            object_id=event.object_id, details=json.dumps(event.details, ensure_ascii=False, sort_keys=True,
                                                          default=str)))
        stack = getattr(self._local, "stack", None)
        if stack:
            stack[-1].append(event)
        for sink in self.sinks:
            try:
                sink.record(event, conn)
            except Exception as exc:
                log.error("audit sink failed; rolling the change back", exc_info=exc,
                          extra={"action": event.action, "object_id": event.object_id})
                raise AuditFailed(f"the audit record for {event.action} {event.object_id} could not be written: "
                                  f"{exc}") from exc

    def events(self, object_id: str | None = None, limit: int = 1000) -> list[AuditEvent]:
        """Events, oldest first; for one object if ``object_id`` is given."""
        query = select(access_audit).order_by(access_audit.c.id)
        if object_id is not None:
            query = query.where(access_audit.c.object_id == object_id)
        with self.engine.connect() as conn:
            rows = conn.execute(query.limit(limit)).all()
        return [AuditEvent(action=r.action, actor=r.actor, object_kind=r.object_kind, object_id=r.object_id,
                           details=json.loads(r.details or "{}"),
                           at=r.at if r.at.tzinfo else r.at.replace(tzinfo=dt.timezone.utc)) for r in rows]
