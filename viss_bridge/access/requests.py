"""Access requests instead of inter-agency agreements.

A consumer asks for a dataset (fields, purpose, legal basis, optionally an end
date and a quota). The data owner (the manifest's ``owner``, or the member it
belongs to) lists the pending requests and approves one, possibly narrowing
the fields, the validity or the quota, or rejects it with a reason. Approval
creates the permission in the same transaction. The owner can later revoke
the permission. Every step is an audit event (see :mod:`viss_bridge.access.audit`).

Used by the ``/access`` SOAP admin service and by ``viss-bridge access ...``.
"""

from __future__ import annotations

import builtins
import datetime as dt
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Iterable

from sqlalchemy import insert, select, update

from viss_bridge.access import audit
from viss_bridge.access.audit import AuditEvent
from viss_bridge.access.registry import (AccessRegistry, Permission, PermissionProblem, aware, new_number, now_utc)
from viss_bridge.access.tables import access_requests, clients

if TYPE_CHECKING:
    from viss_bridge.catalog.manifest import Dataset

PENDING, APPROVED, REJECTED = "pending", "approved", "rejected"


@dataclass(frozen=True)
class Actor:
    """Who takes a step, and whether as an operator (who acts for every data owner).

    ``operator`` is set only by code, never read from a name: the local CLI makes its actor an
    operator (:func:`viss_bridge.cli.common.acting_operator`), and ``/access`` does so only for an authenticated
    connection listed in the ``operator_clients`` setting. A plain string actor is never an
    operator, whatever it is called (``cli:root`` registered as a client is just a client)."""

    name: str
    operator: bool = False


def as_actor(actor: "Actor | str") -> Actor:
    return actor if isinstance(actor, Actor) else Actor(actor)


class NotAllowed(PermissionProblem):
    """The actor may not do this step (not the data owner, not the requester)."""


@dataclass(frozen=True)
class AccessRequest:
    request_id: str
    client_id: str
    dataset: str
    fields: tuple[str, ...] | None
    purpose: str
    legal_basis: str
    legal_obligation: bool
    valid_to: dt.datetime | None
    quota: int | None
    status: str
    created_at: dt.datetime
    decided_at: dt.datetime | None
    decided_by: str | None
    reason: str | None
    permission_number: str | None

    def to_json(self) -> dict[str, Any]:
        return {"request_id": self.request_id, "client": self.client_id, "dataset": self.dataset,
                "fields": list(self.fields) if self.fields is not None else "all", "purpose": self.purpose,
                "legal_basis": self.legal_basis, "legal_obligation": self.legal_obligation,
                "valid_to": self.valid_to.isoformat() if self.valid_to else None, "quota": self.quota,
                "status": self.status, "created_at": self.created_at.isoformat(),
                "decided_at": self.decided_at.isoformat() if self.decided_at else None,
                "decided_by": self.decided_by, "reason": self.reason, "permission": self.permission_number}


def _request(row: Any) -> AccessRequest:
    return AccessRequest(request_id=row.request_id, client_id=row.client_id, dataset=row.dataset,
                         fields=tuple(json.loads(row.fields)) if row.fields is not None else None,
                         purpose=row.purpose, legal_basis=row.legal_basis,
                         legal_obligation=bool(row.legal_obligation), valid_to=aware(row.valid_to), quota=row.quota,
                         status=row.status, created_at=aware(row.created_at), decided_at=aware(row.decided_at),
                         decided_by=row.decided_by, reason=row.reason, permission_number=row.permission_number)


def is_owner(actor: "Actor | str", dataset: "Dataset") -> bool:
    """The owner subsystem itself, or the member it belongs to; operators act for every owner."""
    who = as_actor(actor)
    if who.operator:
        return True
    owner = dataset.owner
    member = "/".join(owner.split("/")[:3])
    return who.name in (owner, member)


class AccessRequests:
    def __init__(self, registry: AccessRegistry, datasets: Callable[[str], "Dataset | None"]) -> None:
        self.registry = registry
        self.engine = registry.engine
        self.datasets = datasets

    def _dataset(self, name: str) -> "Dataset":
        dataset = self.datasets(name)
        if dataset is None:
            raise PermissionProblem(f"unknown dataset: {name}")
        return dataset

    @staticmethod
    def _check_fields(dataset: "Dataset", fields: Iterable[str] | None) -> list[str] | None:
        if fields is None:
            return None
        chosen = sorted({f.strip() for f in fields if f and f.strip()})
        if not chosen:
            return None
        known = {f.name for f in dataset.fields}
        unknown = [f for f in chosen if f not in known]
        if unknown:
            raise PermissionProblem(f"dataset {dataset.dataset} has no field(s) {', '.join(unknown)}; "
                                    f"its fields are {', '.join(sorted(known))}")
        return chosen

    # -- consumer -----------------------------------------------------------------

    def submit(self, client_id: str, dataset: str, *, purpose: str, legal_basis: str,
               fields: Iterable[str] | None = None, legal_obligation: bool = False,
               valid_to: dt.datetime | None = None, quota: int | None = None,
               actor: "Actor | str | None" = None) -> AccessRequest:
        d = self._dataset(dataset)
        chosen = self._check_fields(d, fields)
        if not purpose.strip() or not legal_basis.strip():
            raise PermissionProblem("an access request needs a purpose and a legal basis")
        if quota is not None and quota < 1:
            raise PermissionProblem("a quota must be at least 1")
        request_id = new_number("R")
        created = now_utc()
        with self.registry.audit.begin() as conn:
            if conn.execute(select(clients.c.client_id).where(clients.c.client_id == client_id)).first() is None:
                raise PermissionProblem(f"client {client_id} is not registered")
            conn.execute(insert(access_requests).values(
                request_id=request_id, client_id=client_id, dataset=d.dataset,
                fields=json.dumps(chosen) if chosen is not None else None, purpose=purpose.strip(),
                legal_basis=legal_basis.strip(), legal_obligation=legal_obligation, valid_to=valid_to, quota=quota,
                status=PENDING, created_at=created))
            row = conn.execute(select(access_requests).where(access_requests.c.request_id == request_id)).first()
            request = _request(row)
            self.registry.audit.write(conn, AuditEvent(audit.REQUEST_CREATED, as_actor(actor).name if actor else client_id, "request",
                                                       request_id, request.to_json()))
        return request

    # -- owner ----------------------------------------------------------------------

    def get(self, request_id: str) -> AccessRequest | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(access_requests).where(access_requests.c.request_id == request_id)).first()
        return _request(row) if row else None

    def list(self, *, actor: "Actor | str | None" = None, status: str | None = None, dataset: str | None = None,
             client_id: str | None = None) -> list[AccessRequest]:
        """Requests visible to ``actor``: those for datasets it owns plus its own (operators see all)."""
        query = select(access_requests).order_by(access_requests.c.created_at, access_requests.c.request_id)
        if status:
            query = query.where(access_requests.c.status == status)
        if dataset:
            query = query.where(access_requests.c.dataset == dataset)
        if client_id:
            query = query.where(access_requests.c.client_id == client_id)
        with self.engine.connect() as conn:
            rows = [_request(r) for r in conn.execute(query).all()]
        if actor is None or as_actor(actor).operator:
            return rows
        who = as_actor(actor)
        visible = []
        for request in rows:
            d = self.datasets(request.dataset)
            if request.client_id == who.name or (d is not None and is_owner(who, d)):
                visible.append(request)
        return visible

    def _pending_for_owner(self, conn: Any, request_id: str, actor: Actor) -> tuple[AccessRequest, "Dataset"]:
        row = conn.execute(select(access_requests).where(access_requests.c.request_id == request_id)).first()
        if row is None:
            raise PermissionProblem(f"no access request {request_id}")
        request = _request(row)
        d = self._dataset(request.dataset)
        if not is_owner(actor, d):
            raise NotAllowed(f"{actor.name} is not the owner of {d.dataset} ({d.owner}) and may not decide {request_id}")
        if request.status != PENDING:
            raise PermissionProblem(f"access request {request_id} is already {request.status}")
        return request, d

    @staticmethod
    def _claim(conn: Any, request_id: str, status: str, actor: str, reason: str | None) -> None:
        """Decide a request exactly once: a conditional UPDATE, so two owners deciding at once
        cannot both succeed (the second finds it decided and its transaction rolls back)."""
        result = conn.execute(update(access_requests)
                              .where(access_requests.c.request_id == request_id, access_requests.c.status == PENDING)
                              .values(status=status, decided_at=now_utc(), decided_by=actor, reason=reason))
        if result.rowcount != 1:
            raise PermissionProblem(f"access request {request_id} was decided by someone else just now")

    def approve(self, request_id: str, actor: "Actor | str", *, fields: Iterable[str] | None = None,
                valid_from: dt.datetime | None = None, valid_to: dt.datetime | None = None,
                quota: int | None = None, note: str = "") -> tuple[AccessRequest, Permission]:
        """Approve, optionally narrowing: fields to a subset, an earlier end, a smaller quota."""
        who = as_actor(actor)
        with self.registry.audit.begin() as conn:
            request, d = self._pending_for_owner(conn, request_id, who)
            chosen = self._check_fields(d, fields)
            granted_fields: list[str] | None
            if chosen is None:
                granted_fields = list(request.fields) if request.fields is not None else None
            else:
                if request.fields is not None and not set(chosen) <= set(request.fields):
                    extra = sorted(set(chosen) - set(request.fields))
                    raise PermissionProblem(f"approval may only narrow the requested fields; not requested: "
                                            f"{', '.join(extra)}")
                granted_fields = chosen
            end = valid_to or request.valid_to
            if request.valid_to is not None and end is not None and end > request.valid_to:
                raise PermissionProblem("approval may only shorten the requested validity")
            limit = quota if quota is not None else request.quota
            if request.quota is not None and limit is not None and limit > request.quota:
                raise PermissionProblem("approval may only lower the requested quota")
            self._claim(conn, request_id, APPROVED, who.name, note or None)
            permission = self.registry.grant(request.client_id, d.dataset, purpose=request.purpose,
                                             legal_basis=request.legal_basis,
                                             legal_obligation=request.legal_obligation, fields=granted_fields,
                                             valid_from=valid_from or now_utc(), valid_to=end, quota=limit,
                                             actor=who.name, request_id=request_id, conn=conn)
            conn.execute(update(access_requests).where(access_requests.c.request_id == request_id).values(
                permission_number=permission.number))
            self.registry.audit.write(conn, AuditEvent(audit.REQUEST_APPROVED, who.name, "request", request_id,
                                                       {"permission": permission.number, "note": note,
                                                        "fields": granted_fields if granted_fields is not None
                                                        else "all",
                                                        "valid_to": end.isoformat() if end else None,
                                                        "quota": limit}))
            row = conn.execute(select(access_requests).where(access_requests.c.request_id == request_id)).first()
        return _request(row), permission

    def reject(self, request_id: str, actor: "Actor | str", reason: str) -> AccessRequest:
        if not reason.strip():
            raise PermissionProblem("a rejection needs a reason the consumer can act on")
        who = as_actor(actor)
        with self.registry.audit.begin() as conn:
            self._pending_for_owner(conn, request_id, who)
            self._claim(conn, request_id, REJECTED, who.name, reason.strip())
            self.registry.audit.write(conn, AuditEvent(audit.REQUEST_REJECTED, who.name, "request", request_id,
                                                       {"reason": reason.strip()}))
            row = conn.execute(select(access_requests).where(access_requests.c.request_id == request_id)).first()
        return _request(row)

    def revoke(self, number: str, actor: "Actor | str", reason: str = "") -> Permission:
        who = as_actor(actor)
        permission = self.registry.permission(number)
        if permission is None:
            raise PermissionProblem(f"no permission {number}")
        d = self._dataset(permission.dataset)
        if not is_owner(who, d):
            raise NotAllowed(f"{who.name} is not the owner of {d.dataset} ({d.owner}) and may not revoke {number}")
        return self.registry.revoke_permission(number, who.name, reason)

    def permissions_visible_to(self, actor: "Actor | str", dataset: str | None = None
                               ) -> builtins.list[Permission]:  # `list` here is the method above
        """Permissions of the datasets ``actor`` owns, and its own."""
        who = as_actor(actor)
        result = []
        for permission in self.registry.permissions(dataset=dataset):
            d = self.datasets(permission.dataset)
            if permission.client_id == who.name or (d is not None and is_owner(who, d)):
                result.append(permission)
        return result
