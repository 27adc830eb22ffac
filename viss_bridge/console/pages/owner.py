"""Data owner's pages: the access requests work list and the permissions of the owner's datasets.

A decision goes through :class:`viss_bridge.access.requests.AccessRequests`, exactly as
``viss-bridge access approve --as OWNER`` does: the owner id the account holds is the actor, the
workflow checks ownership and narrowing itself, and its audit events reach the signed chain
through the node's audit sink. The console adds one record naming the person who clicked.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from werkzeug.wrappers import Response

from viss_bridge.access.registry import PermissionProblem
from viss_bridge.access.requests import Actor, is_owner
from viss_bridge.console.accounts import DATA_OWNER
from viss_bridge.console.records import record_step
from viss_bridge.console.web import Page, PageContext


def _owners(ctx: PageContext) -> list[Actor]:
    return [Actor(scope) for scope in ctx.account.scopes(DATA_OWNER)]


def _acting_for(ctx: PageContext, dataset_name: str) -> Actor | None:
    """The account's owner id that owns ``dataset_name`` (the workflow checks it again)."""
    dataset = ctx.node.access_requests.datasets(dataset_name)
    return next((a for a in _owners(ctx) if dataset is not None and is_owner(a, dataset)), None)


def _visible_requests(ctx: PageContext, status: str | None) -> list[Any]:
    seen: dict[str, Any] = {}
    for actor in _owners(ctx):
        for request in ctx.node.access_requests.list(actor=actor, status=status):
            dataset = ctx.node.access_requests.datasets(request.dataset)
            if dataset is not None and is_owner(actor, dataset):  # the owner's datasets, not its own asks
                seen[request.request_id] = request
    return sorted(seen.values(), key=lambda r: r.created_at)


def requests_page(ctx: PageContext, message: str = "", error: str = "", status: int = 200) -> Response:
    pending = _visible_requests(ctx, "pending")
    decided = [r for r in _visible_requests(ctx, None) if r.status != "pending"][-20:]
    return ctx.render("requests.html", pending=pending, decided=list(reversed(decided)), owners=_owners(ctx),
                      message=message, error=error, status=status)


def _end_of(text: str) -> dt.datetime | None:
    if not text.strip():
        return None
    value = dt.datetime.fromisoformat(text.strip())
    if value.time() == dt.time(0, 0) and "T" not in text:
        value = value.replace(hour=23, minute=59, second=59)  # a date means through that whole day, as the CLI
    return value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)


def decide(ctx: PageContext) -> Response:
    form = ctx.form
    request_id = form.get("request_id", "")
    found = ctx.node.access_requests.get(request_id)
    actor = _acting_for(ctx, found.dataset) if found is not None else None
    if found is None or actor is None:
        return requests_page(ctx, error=f"{request_id}: not a request for a dataset you own", status=403)
    try:
        if form.get("decision") == "approve":
            fields = [f.strip() for f in form.get("fields", "").split(",") if f.strip()] or None
            quota = int(form["quota"]) if form.get("quota", "").strip() else None
            _, permission = ctx.node.access_requests.approve(request_id, actor, fields=fields,
                                                             valid_to=_end_of(form.get("valid_to", "")), quota=quota,
                                                             note=form.get("note", ""))
            ctx.node.policy.forget(permission.client_id)
            done = {"decision": "approved", "permission": permission.number, "fields": permission.fields,
                    "quota": permission.quota}
            message = f"{request_id} approved: permission {permission.number}"
        elif form.get("decision") == "reject":
            decided = ctx.node.access_requests.reject(request_id, actor, form.get("reason", ""))
            done = {"decision": "rejected", "reason": decided.reason}
            message = f"{request_id} rejected"
        else:
            return requests_page(ctx, error="say approve or reject", status=400)
    except (PermissionProblem, ValueError) as exc:
        return requests_page(ctx, error=f"{request_id}: {exc}", status=400)
    record_step(ctx.node, ctx.account.name, f"request.{form.get('decision')}", {"request": request_id,
                "as_owner": actor.name}, done, remote_addr=ctx.request.remote_addr, object_id=request_id)
    return requests_page(ctx, message=message)


def permissions_page(ctx: PageContext, message: str = "", error: str = "", status: int = 200) -> Response:
    seen: dict[str, Any] = {}
    for actor in _owners(ctx):
        for permission in ctx.node.access_requests.permissions_visible_to(actor):
            dataset = ctx.node.access_requests.datasets(permission.dataset)
            if dataset is not None and is_owner(actor, dataset):
                seen[permission.number] = permission
    rows = sorted(seen.values(), key=lambda p: (p.dataset, p.client_id, p.number))
    return ctx.render("permissions.html", permissions=rows, message=message, error=error, status=status,
                      owners=_owners(ctx))


def revoke(ctx: PageContext) -> Response:
    number = ctx.form.get("number", "")
    permission = ctx.node.registry.permission(number)
    actor = _acting_for(ctx, permission.dataset) if permission is not None else None
    if permission is None or actor is None:
        return permissions_page(ctx, error=f"{number}: not a permission of a dataset you own", status=403)
    try:
        revoked = ctx.node.access_requests.revoke(number, actor, ctx.form.get("reason", ""))
    except PermissionProblem as exc:
        return permissions_page(ctx, error=f"{number}: {exc}", status=400)
    ctx.node.policy.forget(revoked.client_id)
    record_step(ctx.node, ctx.account.name, "permission.revoke", {"permission": number, "as_owner": actor.name},
                {"state": revoked.state()}, remote_addr=ctx.request.remote_addr, object_id=number)
    return permissions_page(ctx, message=f"{number} revoked")


PAGES = [
    Page("/requests", DATA_OWNER, requests_page, title="Access requests", group="data_owner"),
    Page("/requests/decide", DATA_OWNER, decide, methods=("POST",)),
    Page("/permissions", DATA_OWNER, permissions_page, title="Permissions", group="data_owner"),
    Page("/permissions/revoke", DATA_OWNER, revoke, methods=("POST",)),
]
