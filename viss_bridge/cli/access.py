"""``viss-bridge access ...`` and ``viss-bridge tracker``: access requests, permissions, persons' data.

Registered on the main command group (``viss_bridge.cli.root``). Operators act
with the actor ``cli:<user>`` (an operator may decide for every data owner);
``--as CLIENT`` acts as a connection instead (a consumer requesting, an owner
deciding), with the same checks as the ``/access`` SOAP service.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import click

from viss_bridge.cli.root import main

DATE = click.DateTime(formats=["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S"])


def _utc(value: dt.datetime | None) -> dt.datetime | None:
    return value.replace(tzinfo=dt.timezone.utc) if value is not None and value.tzinfo is None else value


def end_of(value: dt.datetime | None) -> dt.datetime | None:
    """``--valid-to 2027-12-31`` means through that whole day (UTC)."""
    if value is not None and value.time() == dt.time(0, 0):
        value = value.replace(hour=23, minute=59, second=59)
    return _utc(value)


def _services(ctx: click.Context) -> tuple[Any, Any, Any]:
    """(registry, requests workflow, tracker) on the configured database and catalog."""
    from viss_bridge.access.requests import AccessRequests
    from viss_bridge.access.tracker import DataTracker
    from viss_bridge.catalog.catalog import CatalogError, load_catalog
    from viss_bridge.cli.common import access_registry, settings_for

    settings = settings_for(ctx)
    registry = access_registry(ctx)
    try:
        catalog = load_catalog(settings.catalog_dir)
    except CatalogError as exc:
        raise click.ClickException(str(exc)) from None
    return registry, AccessRequests(registry, catalog.get), DataTracker(registry.engine, registry.audit)


def _fail(exc: Exception) -> click.ClickException:
    return click.ClickException(str(exc))


def _fields(text: str | None) -> list[str] | None:
    return [f.strip() for f in text.split(",") if f.strip()] if text else None


def _when(value: dt.datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M") if value else "-"


@click.group()
def access() -> None:
    """Access requests, permissions and persons' restrictions (docs/access.md)."""


@access.command("request")
@click.argument("client_id")
@click.argument("dataset")
@click.option("--purpose", required=True, help="What the data will be used for.")
@click.option("--legal-basis", required=True, help="The law or regulation that allows the processing.")
@click.option("--legal-obligation", is_flag=True, help="The legal basis obliges you to process the data.")
@click.option("--fields", help="Comma-separated fields (default: all).")
@click.option("--valid-to", type=DATE, help="Requested last day (or moment) of validity, UTC.")
@click.option("--quota", type=click.IntRange(min=1), help="Requested number of calls.")
@click.pass_context
def access_request(ctx: click.Context, client_id: str, dataset: str, purpose: str, legal_basis: str,
                   legal_obligation: bool, fields: str | None, valid_to: dt.datetime | None, quota: int | None) -> None:
    """A consumer (CLIENT_ID) asks for access to DATASET."""
    from viss_bridge.access.registry import PermissionProblem
    from viss_bridge.cli.common import actor_name, client_id_arg

    _, requests, _ = _services(ctx)
    try:
        request = requests.submit(client_id_arg(client_id), dataset, purpose=purpose, legal_basis=legal_basis,
                                  fields=_fields(fields), legal_obligation=legal_obligation,
                                  valid_to=end_of(valid_to), quota=quota, actor=actor_name())
    except PermissionProblem as exc:
        raise _fail(exc) from None
    click.echo(f"access request {request.request_id} submitted: {request.client_id} asks for {request.dataset} "
               f"({'all fields' if request.fields is None else ', '.join(request.fields)}); status {request.status}")


@access.command("requests")
@click.option("--status", type=click.Choice(["pending", "approved", "rejected"]))
@click.option("--dataset")
@click.option("--as", "as_client", help="List as this connection (its own requests and its datasets').")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def access_requests(ctx: click.Context, status: str | None, dataset: str | None, as_client: str | None,
                    as_json: bool) -> None:
    """List access requests (a data owner's work list with --status pending)."""
    from viss_bridge.cli.common import print_table

    _, requests, _ = _services(ctx)
    rows = requests.list(actor=as_client, status=status, dataset=dataset)
    if as_json:
        click.echo(json.dumps([r.to_json() for r in rows], indent=2, ensure_ascii=False))
        return
    print_table(("request", "status", "client", "dataset", "fields", "purpose", "legal basis", "created"),
           [(r.request_id, r.status, r.client_id, r.dataset, "all" if r.fields is None else ",".join(r.fields),
             r.purpose, r.legal_basis + (" (obligation)" if r.legal_obligation else ""), _when(r.created_at))
            for r in rows])


@access.command("approve")
@click.argument("request_id")
@click.option("--fields", help="Narrow the readable fields (a subset of those requested).")
@click.option("--valid-from", type=DATE)
@click.option("--valid-to", type=DATE, help="Narrow the validity (not later than requested).")
@click.option("--quota", type=click.IntRange(min=1), help="Narrow the quota (not more than requested).")
@click.option("--note", default="")
@click.option("--as", "as_client", help="Decide as this owner connection instead of as an operator.")
@click.pass_context
def access_approve(ctx: click.Context, request_id: str, fields: str | None, valid_from: dt.datetime | None,
                   valid_to: dt.datetime | None, quota: int | None, note: str, as_client: str | None) -> None:
    """Approve an access request; this creates the permission."""
    from viss_bridge.access.registry import PermissionProblem
    from viss_bridge.cli.common import acting_operator

    _, requests, _ = _services(ctx)
    try:
        _, permission = requests.approve(request_id, as_client or acting_operator(), fields=_fields(fields),
                                         valid_from=_utc(valid_from), valid_to=end_of(valid_to), quota=quota,
                                         note=note)
    except PermissionProblem as exc:
        raise _fail(exc) from None
    click.echo(f"request {request_id} approved: permission {permission.number} for {permission.client_id} on "
               f"{permission.dataset} (fields {'all' if permission.fields is None else ', '.join(permission.fields)}; "
               f"valid to {_when(permission.valid_to)}; quota {permission.quota or 'unlimited'})")


@access.command("reject")
@click.argument("request_id")
@click.option("--reason", required=True, help="Why, in words the consumer can act on.")
@click.option("--as", "as_client")
@click.pass_context
def access_reject(ctx: click.Context, request_id: str, reason: str, as_client: str | None) -> None:
    """Reject an access request with a reason."""
    from viss_bridge.access.registry import PermissionProblem
    from viss_bridge.cli.common import acting_operator

    _, requests, _ = _services(ctx)
    try:
        request = requests.reject(request_id, as_client or acting_operator(), reason)
    except PermissionProblem as exc:
        raise _fail(exc) from None
    click.echo(f"request {request.request_id} rejected: {request.reason}")


@access.command("revoke")
@click.argument("number")
@click.option("--reason", default="")
@click.option("--as", "as_client")
@click.pass_context
def access_revoke(ctx: click.Context, number: str, reason: str, as_client: str | None) -> None:
    """Revoke a permission by its number (effective at once on every node)."""
    from viss_bridge.access.registry import PermissionProblem
    from viss_bridge.cli.common import acting_operator

    _, requests, _ = _services(ctx)
    try:
        permission = requests.revoke(number, as_client or acting_operator(), reason)
    except PermissionProblem as exc:
        raise _fail(exc) from None
    click.echo(f"permission {permission.number} of {permission.client_id} on {permission.dataset} revoked")


@access.command("permissions")
@click.option("--client", "client_id")
@click.option("--dataset")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def access_permissions(ctx: click.Context, client_id: str | None, dataset: str | None, as_json: bool) -> None:
    """Permissions with their state, use count and quota."""
    from viss_bridge.cli.common import print_table

    registry, _, _ = _services(ctx)
    rows = registry.permissions(client_id=client_id, dataset=dataset)
    if as_json:
        click.echo(json.dumps([p.to_json() for p in rows], indent=2, ensure_ascii=False))
        return
    print_table(("number", "state", "client", "dataset", "fields", "used", "quota", "valid to", "legal basis"),
           [(p.number, p.state(), p.client_id, p.dataset, "all" if p.fields is None else ",".join(p.fields),
             str(p.used), str(p.quota or "-"), _when(p.valid_to),
             p.legal_basis + (" (obligation)" if p.legal_obligation else "")) for p in rows])


@access.command("history")
@click.argument("object_id")
@click.pass_context
def access_history(ctx: click.Context, object_id: str) -> None:
    """The audit trail of one request, permission, connection or PERSON/DATASET restriction."""
    from viss_bridge.access.tracker import person_key

    registry, _, _ = _services(ctx)
    # A restriction's id is PERSON/DATASET with the person's code normalised as it was stored
    # (no dash, no LV prefix); a support worker types it as the person wrote it.
    person, slash, rest = object_id.partition("/")
    candidates = dict.fromkeys([object_id, f"{person_key(person)}/{rest}" if slash else object_id])
    events = sorted((e for oid in candidates for e in registry.audit.events(oid)), key=lambda e: e.at)
    for event in events:
        click.echo(f"{event.at:%Y-%m-%d %H:%M:%S}  {event.action:<28} {event.actor}  "
                   f"{json.dumps(event.details, ensure_ascii=False, sort_keys=True)}")


@access.command("restrict")
@click.argument("person")
@click.argument("dataset")
@click.option("--reason", default="")
@click.pass_context
def access_restrict(ctx: click.Context, person: str, dataset: str, reason: str) -> None:
    """Record a person's restriction of DATASET (for support staff acting on the person's request)."""
    from viss_bridge.cli.common import actor_name

    _, requests, tracker_ = _services(ctx)
    d = requests.datasets(dataset)
    if d is None or not d.subject:
        raise click.ClickException(f"{dataset} is not a dataset with personal data (no 'subject' in its manifest)")
    r = tracker_.restrict(person, d, reason, actor=f"{actor_name()} for person:{person}")
    covers = f" (register {r.register}: every dataset publishing it)" if r.register != r.dataset else ""
    click.echo(f"person {r.person} restricts {r.dataset}{covers} since {_when(r.created_at)}")


@access.command("lift")
@click.argument("person")
@click.argument("dataset")
@click.pass_context
def access_lift(ctx: click.Context, person: str, dataset: str) -> None:
    """Lift a person's restriction."""
    from viss_bridge.access.registry import PermissionProblem
    from viss_bridge.cli.common import actor_name

    _, requests, tracker_ = _services(ctx)
    try:
        r = tracker_.lift(person, requests.datasets(dataset) or dataset, actor=f"{actor_name()} for person:{person}")
    except PermissionProblem as exc:
        raise _fail(exc) from None
    click.echo(f"person {r.person}'s restriction of {r.dataset} lifted")


@click.command()
@click.argument("person")
@click.option("--offset", default=0, show_default=True)
@click.option("--limit", default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def tracker(ctx: click.Context, person: str, offset: int, limit: int, as_json: bool) -> None:
    """Who read PERSON's data (newest first), and the person's restrictions in force."""
    from viss_bridge.cli.common import print_table

    _, _, tracker_ = _services(ctx)
    entries, total = tracker_.usage(person, offset, limit)
    restrictions = tracker_.restrictions(person)
    if as_json:
        click.echo(json.dumps({"person": person, "total": total, "usage": [u.to_json() for u in entries],
                               "restrictions": [{"dataset": r.dataset, "since": r.created_at.isoformat(),
                                                 "reason": r.reason} for r in restrictions]},
                              indent=2, ensure_ascii=False))
        return
    click.echo(f"{total} access(es) to the data of {person}; showing {len(entries)} from {offset}")
    print_table(("when (UTC)", "consumer", "dataset", "purpose", "permission", "userId"),
           [(f"{u.at:%Y-%m-%d %H:%M:%S}", u.client_id, u.dataset, u.purpose or "-", u.permission_number or "-",
             u.user_id or "-") for u in entries])
    if restrictions:
        click.echo("restrictions in force: " + ", ".join(f"{r.dataset} (since {_when(r.created_at)})"
                                                       for r in restrictions))


main.add_command(access)
main.add_command(tracker)
