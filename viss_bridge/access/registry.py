"""Connections (consumer identities with their certificates) and their permissions, as database rows.

A **connection** is a client identifier (``LV/GOV/CODE[/SUBSYSTEM]``) with the
X.509 certificates it authenticates with. A **permission** is modelled on the
data platform's: a number, the dataset, the purpose of use, the legal basis
(and whether it is a legal obligation, which overrides a person's
restriction), the readable fields (all, or a list), a validity window, a use
quota and a use count. Uses are counted by one conditional ``UPDATE`` so the
count is exact however many workers call at once.

The first version of the bridge kept bare (client, dataset) rows in
``client_permissions``; :meth:`AccessRegistry.create_schema` migrates those
into permissions with all fields, no expiry and no quota.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import secrets
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Iterable, Protocol, overload

from sqlalchemy import bindparam, case, delete, insert, or_, select, update
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from viss_bridge.access import audit
from viss_bridge.access.audit import AuditEvent, AuditTrail
from viss_bridge.access.identity import CertificateInfo, InvalidIdentifier, client_key
from viss_bridge.access.tables import (client_certificates, client_permissions, clients, metadata, permissions,
                                       usage_entries)

__all__ = ["AccessRegistry", "AccessStoreUnavailable", "Client", "Permission", "PermissionProblem", "UseRefused",
           "metadata", "clients", "client_permissions"]

GRANT_PURPOSE = "granted by an operator (viss-bridge clients grant)"
GRANT_LEGAL_BASIS = "given"


class AccessStoreUnavailable(RuntimeError):
    """The permission tables could not be read."""


class PermissionProblem(ValueError):
    """A permission operation that cannot be done as asked (unknown number, already revoked, bad fields...)."""


@dataclass(frozen=True)
class Client:
    client_id: str
    name: str


def now_utc() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


@overload
def aware(value: dt.datetime) -> dt.datetime: ...
@overload
def aware(value: None) -> None: ...
@overload
def aware(value: dt.datetime | None) -> dt.datetime | None: ...


def aware(value: dt.datetime | None) -> dt.datetime | None:
    """A timestamp read back as UTC: SQLite returns naive datetimes, PostgreSQL aware ones."""
    if value is None:
        return None
    return value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)


@dataclass(frozen=True)
class Permission:
    number: str
    client_id: str
    dataset: str
    purpose: str
    legal_basis: str
    legal_obligation: bool
    fields: tuple[str, ...] | None  # None: every field
    valid_from: dt.datetime
    valid_to: dt.datetime | None
    quota: int | None
    used: int
    status: str  # active | revoked (the stored status; see state())
    granted_by: str
    created_at: dt.datetime
    request_id: str | None = None
    revoked_at: dt.datetime | None = None
    revoked_by: str | None = None
    revoked_reason: str | None = None

    def state(self, now: dt.datetime | None = None) -> str:
        """active, revoked, not-yet-valid, expired or exhausted."""
        now = now or now_utc()
        if self.status != "active":
            return "revoked"
        if now < self.valid_from:
            return "not-yet-valid"
        if self.valid_to is not None and now >= self.valid_to:
            return "expired"
        if self.quota is not None and self.used >= self.quota:
            return "exhausted"
        return "active"

    def usable(self, now: dt.datetime | None = None) -> bool:
        return self.state(now) == "active"

    @property
    def remaining(self) -> int | None:
        return None if self.quota is None else max(self.quota - self.used, 0)

    def refusal(self, now: dt.datetime | None = None) -> str:
        """Why this permission cannot be used now, in words a consumer's developer understands."""
        state = self.state(now)
        if state == "revoked":
            why = f": {self.revoked_reason}" if self.revoked_reason else ""
            return f"permission {self.number} for {self.dataset} was revoked{why}"
        if state == "not-yet-valid":
            return f"permission {self.number} for {self.dataset} is valid only from {self.valid_from.isoformat()}"
        if state == "expired":
            assert self.valid_to is not None
            return f"permission {self.number} for {self.dataset} expired at {self.valid_to.isoformat()}"
        if state == "exhausted":
            return f"permission {self.number} for {self.dataset} has used its whole quota of {self.quota} calls"
        return f"permission {self.number} is usable"

    def to_json(self, now: dt.datetime | None = None) -> dict[str, Any]:
        return {
            "number": self.number, "client": self.client_id, "dataset": self.dataset, "purpose": self.purpose,
            "legal_basis": self.legal_basis, "legal_obligation": self.legal_obligation,
            "fields": list(self.fields) if self.fields is not None else "all",
            "valid_from": self.valid_from.isoformat(),
            "valid_to": self.valid_to.isoformat() if self.valid_to else None,
            "quota": self.quota, "used": self.used, "remaining": self.remaining,
            "status": self.state(now), "request_id": self.request_id, "granted_by": self.granted_by,
            "created_at": self.created_at.isoformat(),
            "revoked_at": self.revoked_at.isoformat() if self.revoked_at else None,
            "revoked_reason": self.revoked_reason,
        }


class UseRefused(RuntimeError):
    """A permission could not be used (revoked, expired or exhausted) at the moment of counting."""

    def __init__(self, permission: Permission | None, message: str) -> None:
        super().__init__(message)
        self.permission = permission
        self.reason = permission.state() if permission else "denied"


def _permission(row: Any) -> Permission:
    fields = tuple(json.loads(row.fields)) if row.fields is not None else None
    return Permission(number=row.number, client_id=row.client_id, dataset=row.dataset, purpose=row.purpose,
                      legal_basis=row.legal_basis, legal_obligation=bool(row.legal_obligation), fields=fields,
                      valid_from=aware(row.valid_from), valid_to=aware(row.valid_to), quota=row.quota,
                      used=int(row.used), status=row.status, granted_by=row.granted_by,
                      created_at=aware(row.created_at), request_id=row.request_id, revoked_at=aware(row.revoked_at),
                      revoked_by=row.revoked_by, revoked_reason=row.revoked_reason)


def new_number(prefix: str = "P") -> str:
    """A permission or request number: P-2026-3F9A0C1D (unique, not guessable, readable over the phone)."""
    return f"{prefix}-{now_utc():%Y}-{secrets.token_hex(4).upper()}"


@dataclass(frozen=True)
class UsageRow:
    """One person's record in one answer (a data tracker entry), written with the use count."""

    person: str
    client_id: str
    dataset: str
    purpose: str | None
    permission_number: str | None
    user_id: str | None
    message_id: str | None


class AccessRegistry:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.audit = AuditTrail(engine)

    def create_schema(self) -> None:
        metadata.create_all(self.engine)
        self._add_restriction_register()
        self._migrate_simple_permissions()

    def _add_restriction_register(self) -> None:
        """Databases from before restrictions followed the register get the column; old rows cover the
        dataset they named (its register by default). Safe to run in many workers at once."""
        from sqlalchemy import inspect, text

        from viss_bridge.access.tables import restrictions

        if "register" in {c["name"] for c in inspect(self.engine).get_columns(restrictions.name)}:
            return
        try:
            with self.engine.begin() as conn:
                conn.execute(text(f"ALTER TABLE {restrictions.name} ADD COLUMN register VARCHAR(255)"))
        except SQLAlchemyError:
            if "register" not in {c["name"] for c in inspect(self.engine).get_columns(restrictions.name)}:
                raise  # not another worker's doing
        with self.engine.begin() as conn:
            conn.execute(update(restrictions).where(restrictions.c.register.is_(None))
                         .values(register=restrictions.c.dataset))

    def _migrate_simple_permissions(self) -> None:
        """Turn (client, dataset) rows of the first version into permissions; safe to run in many workers."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(client_permissions)).all()
        for row in rows:
            number = "M-" + hashlib.sha256(f"{row.client_id}\x1f{row.dataset}".encode()).hexdigest()[:12].upper()
            try:
                with self.audit.begin() as conn:
                    conn.execute(delete(client_permissions).where(client_permissions.c.client_id == row.client_id,
                                                                  client_permissions.c.dataset == row.dataset))
                    self._insert_permission(conn, number=number, client_id=row.client_id, dataset=row.dataset,
                                            purpose=GRANT_PURPOSE, legal_basis=GRANT_LEGAL_BASIS,
                                            legal_obligation=False, fields=None,
                                            valid_from=aware(row.granted_at) or now_utc(), valid_to=None, quota=None,
                                            actor="migration", request_id=None, action=audit.PERMISSION_MIGRATED)
            except IntegrityError:
                pass  # another worker migrated it first

    # -- clients and certificates -------------------------------------------------

    def add_client(self, client_id: str, name: str = "") -> None:
        """Register a client; registering one that exists updates its name. The id must be a valid X-Road
        client identifier (each part checked): a name such as ``cli:root`` or a part holding ``/`` is refused."""
        try:
            client_id = client_key(client_id)
        except InvalidIdentifier as exc:
            raise PermissionProblem(str(exc)) from None
        with self.audit.begin() as conn:
            exists = conn.execute(select(clients.c.client_id).where(clients.c.client_id == client_id)).first()
            if exists:
                conn.execute(clients.update().where(clients.c.client_id == client_id).values(name=name))
            else:
                conn.execute(insert(clients).values(client_id=client_id, name=name, created_at=now_utc()))

    def clients(self) -> list[Client]:
        with self._reading() as conn:
            rows = conn.execute(select(clients.c.client_id, clients.c.name).order_by(clients.c.client_id)).all()
        return [Client(row.client_id, row.name) for row in rows]

    def client(self, client_id: str) -> Client | None:
        with self._reading() as conn:
            row = conn.execute(select(clients.c.client_id, clients.c.name)
                               .where(clients.c.client_id == client_id)).first()
        return Client(row.client_id, row.name) if row else None

    def add_certificate(self, client_id: str, certificate: CertificateInfo, actor: str = "cli") -> None:
        """Bind a certificate to a connection. A certificate belongs to one connection only."""
        with self.audit.begin() as conn:
            if conn.execute(select(clients.c.client_id).where(clients.c.client_id == client_id)).first() is None:
                raise PermissionProblem(f"client {client_id} is not registered")
            owner = conn.execute(select(client_certificates.c.client_id)
                                 .where(client_certificates.c.fingerprint == certificate.fingerprint)).first()
            if owner is not None:
                if owner.client_id == client_id:
                    return
                raise PermissionProblem(f"certificate {certificate.fingerprint} already belongs to {owner.client_id}")
            conn.execute(insert(client_certificates).values(
                fingerprint=certificate.fingerprint, client_id=client_id, subject=certificate.subject,
                issuer=certificate.issuer, serial=certificate.serial, not_after=certificate.not_after,
                pem=certificate.pem, added_at=now_utc()))
            self.audit.write(conn, AuditEvent(audit.CONNECTION_CERTIFICATE_ADDED, actor, "connection", client_id,
                                              {"fingerprint": certificate.fingerprint, "subject": certificate.subject,
                                               "not_after": certificate.not_after.isoformat()}))


    def certificates(self, client_id: str) -> list[dict[str, Any]]:
        with self._reading() as conn:
            rows = conn.execute(select(client_certificates).where(client_certificates.c.client_id == client_id)
                                .order_by(client_certificates.c.added_at)).all()
        return [{"fingerprint": r.fingerprint, "subject": r.subject, "issuer": r.issuer, "serial": r.serial,
                 "not_after": aware(r.not_after).isoformat()} for r in rows]

    def client_for_fingerprint(self, fingerprint: str) -> str | None:
        with self._reading() as conn:
            row = conn.execute(select(client_certificates.c.client_id)
                               .where(client_certificates.c.fingerprint == fingerprint)).first()
        return row.client_id if row else None

    # -- permissions ------------------------------------------------------------------

    def _insert_permission(self, conn: Connection, *, number: str, client_id: str, dataset: str, purpose: str,
                           legal_basis: str, legal_obligation: bool, fields: Iterable[str] | None,
                           valid_from: dt.datetime, valid_to: dt.datetime | None, quota: int | None, actor: str,
                           request_id: str | None, action: str = audit.PERMISSION_GRANTED) -> Permission:
        field_list = sorted(set(fields)) if fields is not None else None
        if valid_to is not None and valid_to <= valid_from:
            raise PermissionProblem("valid_to must be after valid_from")
        if quota is not None and quota < 1:
            raise PermissionProblem("a quota must be at least 1 (omit it for unlimited use)")
        if not purpose.strip() or not legal_basis.strip():
            raise PermissionProblem("a permission needs a purpose and a legal basis")
        created = now_utc()
        conn.execute(insert(permissions).values(
            number=number, client_id=client_id, dataset=dataset, purpose=purpose, legal_basis=legal_basis,
            legal_obligation=legal_obligation, fields=json.dumps(field_list) if field_list is not None else None,
            valid_from=valid_from, valid_to=valid_to, quota=quota, used=0, status="active", request_id=request_id,
            granted_by=actor, created_at=created))
        permission = Permission(number=number, client_id=client_id, dataset=dataset, purpose=purpose,
                                legal_basis=legal_basis, legal_obligation=legal_obligation,
                                fields=tuple(field_list) if field_list is not None else None, valid_from=valid_from,
                                valid_to=valid_to, quota=quota, used=0, status="active", granted_by=actor,
                                created_at=created, request_id=request_id)
        details = permission.to_json()
        for key in ("used", "remaining", "status", "created_at", "revoked_at", "revoked_reason", "number"):
            details.pop(key, None)
        self.audit.write(conn, AuditEvent(action, actor, "permission", number, details))
        return permission

    def grant(self, client_id: str, dataset: str, *, purpose: str = GRANT_PURPOSE,
              legal_basis: str = GRANT_LEGAL_BASIS, legal_obligation: bool = False,
              fields: Iterable[str] | None = None, valid_from: dt.datetime | None = None,
              valid_to: dt.datetime | None = None, quota: int | None = None, actor: str = "cli",
              request_id: str | None = None, conn: Connection | None = None) -> Permission:
        """Create a permission. A plain grant (all fields, no expiry, no quota) that already exists is returned as is."""
        plain = fields is None and valid_to is None and quota is None and request_id is None and valid_from is None
        if conn is None:
            with self.audit.begin() as own:
                return self.grant(client_id, dataset, purpose=purpose, legal_basis=legal_basis,
                                  legal_obligation=legal_obligation, fields=fields, valid_from=valid_from,
                                  valid_to=valid_to, quota=quota, actor=actor, request_id=request_id, conn=own)
        if conn.execute(select(clients.c.client_id).where(clients.c.client_id == client_id)).first() is None:
            raise PermissionProblem(f"client {client_id} is not registered")
        if plain:
            rows = conn.execute(select(permissions).where(
                permissions.c.client_id == client_id, permissions.c.dataset == dataset,
                permissions.c.status == "active", permissions.c.fields.is_(None), permissions.c.valid_to.is_(None),
                permissions.c.quota.is_(None), permissions.c.legal_basis == legal_basis,
                permissions.c.legal_obligation == legal_obligation)).all()
            if rows:
                return _permission(rows[0])
        return self._insert_permission(conn, number=new_number(), client_id=client_id, dataset=dataset,
                                       purpose=purpose, legal_basis=legal_basis, legal_obligation=legal_obligation,
                                       fields=fields, valid_from=valid_from or now_utc(), valid_to=valid_to,
                                       quota=quota, actor=actor, request_id=request_id)

    def revoke_permission(self, number: str, actor: str = "cli", reason: str = "") -> Permission:
        with self.audit.begin() as conn:
            row = conn.execute(select(permissions).where(permissions.c.number == number)).first()
            if row is None:
                raise PermissionProblem(f"no permission {number}")
            if row.status != "active":
                raise PermissionProblem(f"permission {number} is already revoked")
            at = now_utc()
            result = conn.execute(update(permissions).where(permissions.c.number == number,
                                                            permissions.c.status == "active")
                                  .values(status="revoked", revoked_at=at, revoked_by=actor,
                                          revoked_reason=reason or None))
            if result.rowcount != 1:  # revoked concurrently by someone else
                raise PermissionProblem(f"permission {number} is already revoked")
            self.audit.write(conn, AuditEvent(audit.PERMISSION_REVOKED, actor, "permission", number,
                                              {"client": row.client_id, "dataset": row.dataset, "reason": reason,
                                               "used": int(row.used)}))
            row = conn.execute(select(permissions).where(permissions.c.number == number)).first()
        return _permission(row)

    def revoke(self, client_id: str, dataset: str, actor: str = "cli", reason: str = "") -> list[str]:
        """Revoke every active permission of a client for a dataset (``viss-bridge clients revoke``)."""
        numbers = [p.number for p in self.permissions(client_id=client_id, dataset=dataset) if p.status == "active"]
        for number in numbers:
            self.revoke_permission(number, actor, reason)
        return numbers

    def permission(self, number: str) -> Permission | None:
        with self._reading() as conn:
            row = conn.execute(select(permissions).where(permissions.c.number == number)).first()
        return _permission(row) if row else None

    def permissions(self, client_id: str | None = None, dataset: str | None = None,
                    datasets: Iterable[str] | None = None, include_revoked: bool = True) -> list[Permission]:
        query = select(permissions).order_by(permissions.c.created_at, permissions.c.number)
        if client_id is not None:
            query = query.where(permissions.c.client_id == client_id)
        if dataset is not None:
            query = query.where(permissions.c.dataset == dataset)
        if datasets is not None:
            query = query.where(permissions.c.dataset.in_(list(datasets)))
        if not include_revoked:
            query = query.where(permissions.c.status == "active")
        with self._reading() as conn:
            rows = conn.execute(query).all()
        return [_permission(row) for row in rows]

    def allowed_datasets(self, client_id: str) -> set[str]:
        """Datasets the client holds a usable permission for now."""
        now = now_utc()
        return {p.dataset for p in self.permissions(client_id=client_id, include_revoked=False) if p.usable(now)}


    # -- counting uses -----------------------------------------------------------------

    def use(self, number: str | None, usage: list[UsageRow]) -> None:
        """Count one use of a permission and write the answer's tracker entries, in one transaction.

        The count is one conditional UPDATE: it succeeds only while the permission
        is active, valid and under quota, so concurrent workers can never exceed
        the quota. If it does not succeed, nothing is written and :class:`UseRefused`
        says why. ``number`` None (open or public data) writes only the entries.
        Serving paths use :meth:`reserve` / :meth:`release` / :meth:`write_usage` (through
        ``access.batch.AccessWrites``) instead, so that an answer the message log refuses is
        neither counted nor tracked.
        """
        try:
            with self.engine.begin() as conn:
                if number is not None:
                    refused = apply_use_writes(conn, [UseWrite(RESERVE, number)])[0]
                    if refused is not None:
                        raise refused
                apply_use_writes(conn, [UseWrite(TRACK, rows=tuple(usage))])
        except SQLAlchemyError as exc:
            raise AccessStoreUnavailable(f"permission store write failed: {exc.__class__.__name__}") from exc

    def reserve(self, number: str) -> None:
        """Take one use of the permission now (the same exact conditional UPDATE), committed at once.

        Committing the reservation before the answer is logged keeps quotas exact under concurrency;
        :meth:`release` gives it back when the answer is not served after all.
        """
        self._alone(UseWrite(RESERVE, number))

    def release(self, number: str) -> None:
        """Give back a use taken by :meth:`reserve` whose answer was refused (e.g. LoggingFailed)."""
        self._alone(UseWrite(RELEASE, number))

    def write_usage(self, usage: list[UsageRow]) -> None:
        """Write the tracker entries of an answer whose log records have committed."""
        if usage:
            self._alone(UseWrite(TRACK, rows=tuple(usage)))

    def _alone(self, write: "UseWrite") -> None:
        try:
            with self.engine.begin() as conn:
                refused = apply_use_writes(conn, [write])[0]
        except SQLAlchemyError as exc:
            raise AccessStoreUnavailable(f"permission store write failed: {exc.__class__.__name__}") from exc
        if refused is not None:
            raise refused

    def _reading(self) -> _ReadGuard:
        return _ReadGuard(self.engine)


class _ReadGuard:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.conn: Connection | None = None

    def __enter__(self) -> Connection:
        try:
            self.conn = self.engine.connect()
        except SQLAlchemyError as exc:
            raise AccessStoreUnavailable(f"permission store unreachable: {exc.__class__.__name__}") from exc
        return self.conn

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        assert self.conn is not None
        self.conn.close()
        if exc is not None and isinstance(exc, SQLAlchemyError):
            raise AccessStoreUnavailable(f"permission store read failed: {exc.__class__.__name__}") from exc


# -- per-answer writes: the one place that counts uses and writes tracker entries ---------------------

RESERVE, RELEASE, TRACK = "reserve", "release", "track"


@dataclass(frozen=True)
class UseWrite:
    """One answer's write to the access store: reserve a use, give one back, or its tracker entries."""

    kind: str  # RESERVE | RELEASE | TRACK
    number: str | None = None
    rows: tuple[UsageRow, ...] = ()
    count: bool = False  # TRACK: also count one use of ``number`` (a permission without quota, counted once served)


# Built once: a statement object is compiled once and its cache key memoised, where a statement built
# per call paid SQLAlchemy's construction and cache-key work on every answer.
_TAKE = (update(permissions)
         .where(permissions.c.number == bindparam("n"), permissions.c.status == "active",
                permissions.c.valid_from <= bindparam("at"),
                or_(permissions.c.valid_to.is_(None), permissions.c.valid_to > bindparam("at")),
                or_(permissions.c.quota.is_(None), permissions.c.used + bindparam("k") <= permissions.c.quota))
         .values(used=permissions.c.used + bindparam("k")))
_GIVE_BACK = (update(permissions).where(permissions.c.number == bindparam("n"), permissions.c.used > 0)
              .values(used=case((permissions.c.used > bindparam("k"), permissions.c.used - bindparam("k")), else_=0)))
_ROW = select(permissions).where(permissions.c.number == bindparam("n"))
_COUNT = update(permissions).where(permissions.c.number == bindparam("n")).values(used=permissions.c.used + bindparam("k"))
_TRACK = insert(usage_entries)


class UseStatements(Protocol):
    """The five statements the per-answer writes need, run in the caller's open transaction.

    :class:`CoreUseStatements` runs them through SQLAlchemy Core (tools, tests, in-memory SQLite);
    ``access.batch`` runs them as plain SQL on a worker thread's own DB-API connection, where
    SQLAlchemy's per-statement work cost more than the database's own (issue 12).
    """

    def give_back(self, number: str, k: int) -> None: ...

    def take(self, number: str, at: dt.datetime, k: int) -> bool: ...

    def row(self, number: str) -> Permission | None: ...

    def count(self, number: str, k: int) -> None: ...

    def insert_entries(self, rows: list[dict[str, Any]]) -> None: ...


class CoreUseStatements:
    """:class:`UseStatements` on an SQLAlchemy connection (its transaction is the caller's)."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def give_back(self, number: str, k: int) -> None:
        self.conn.execute(_GIVE_BACK, {"n": number, "k": k})

    def take(self, number: str, at: dt.datetime, k: int) -> bool:
        return bool(self.conn.execute(_TAKE, {"n": number, "at": at, "k": k}).rowcount == 1)

    def row(self, number: str) -> Permission | None:
        found = self.conn.execute(_ROW, {"n": number}).first()
        return _permission(found) if found else None

    def count(self, number: str, k: int) -> None:
        self.conn.execute(_COUNT, {"n": number, "k": k})

    def insert_entries(self, rows: list[dict[str, Any]]) -> None:
        self.conn.execute(_TRACK, rows)


def apply_use_writes(target: "Connection | UseStatements", writes: list[UseWrite],
                     now: dt.datetime | None = None) -> list[UseRefused | None]:
    """Apply ``writes`` in the caller's transaction; one result per write: None, or why a reserve was refused.

    ``target``: an SQLAlchemy connection, or the :class:`UseStatements` to run (plain SQL on the hot path).
    A TRACK with ``count`` also adds one use of an unlimited permission whose answer was served (checked
    usable before it was logged: :meth:`access.batch.AccessWrites.unlimited`).

    Exact however many writes share the transaction: give-backs first (they free quota), then every
    permission's reserves as one conditional ``UPDATE ... used = used + k WHERE ... used + k <= quota``;
    when that does not fit, one at a time, so exactly as many as the quota holds succeed, and the rest
    are refused with the reason the row gives. The tracker entries go in one multi-row INSERT.
    Concurrent transactions (other workers, other nodes) serialise on the permission row.
    """
    run = CoreUseStatements(target) if isinstance(target, Connection) else target
    now = now or now_utc()
    results: list[UseRefused | None] = [None] * len(writes)
    give_back: dict[str, int] = {}
    served: dict[str, int] = {}
    take: dict[str, list[int]] = {}
    rows: list[dict[str, Any]] = []
    for index, write in enumerate(writes):
        if write.kind == RELEASE and write.number is not None:
            give_back[write.number] = give_back.get(write.number, 0) + 1
        elif write.kind == RESERVE and write.number is not None:
            take.setdefault(write.number, []).append(index)
        elif write.kind == TRACK:
            if write.count and write.number is not None:
                served[write.number] = served.get(write.number, 0) + 1
            rows.extend({"at": now, "person": u.person, "client_id": u.client_id, "dataset": u.dataset,
                         "purpose": u.purpose, "permission_number": u.permission_number, "user_id": u.user_id,
                         "message_id": u.message_id} for u in write.rows)
    for number, count in give_back.items():
        run.give_back(number, count)
    for number, indexes in take.items():
        if run.take(number, now, len(indexes)):
            continue
        for position, index in enumerate(indexes):
            if len(indexes) > 1 and run.take(number, now, 1):
                continue
            permission = run.row(number)
            message = permission.refusal(now) if permission else f"permission {number} no longer exists"
            for rest in indexes[position:]:  # the row refused one use: it refuses every later one too
                results[rest] = UseRefused(permission, message)  # one exception object per caller's thread
            break
    for number, count in served.items():
        run.count(number, count)
    if rows:
        run.insert_entries(rows)
    return results
