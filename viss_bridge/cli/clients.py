"""``viss-bridge clients ...``: consumer identities, their certificates and the datasets each may call."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from viss_bridge.cli.common import (print_table, access_registry, client_id_arg, actor_name)
from viss_bridge.cli.root import main


@main.group()
def clients() -> None:
    """Consumer identities and the datasets each may call."""


@clients.command("list")
@click.pass_context
def clients_list(ctx: click.Context) -> None:
    registry = access_registry(ctx)
    rows = [(c.client_id, ", ".join(sorted(registry.allowed_datasets(c.client_id))) or "-",
             str(len(registry.certificates(c.client_id))), c.name)
            for c in registry.clients()]
    print_table(("client", "datasets", "certs", "name"), rows)


@clients.command("add")
@click.argument("client_id")
@click.option("--name", default="")
@click.option("--cert", "certs", multiple=True, type=click.Path(exists=True, dir_okay=False),
              help="PEM certificate the connection authenticates with (repeatable).")
@click.pass_context
def clients_add(ctx: click.Context, client_id: str, name: str, certs: tuple[str, ...]) -> None:
    """Register a connection (a consumer's client identifier), optionally with its certificate(s)."""
    registry = access_registry(ctx)
    client_id = client_id_arg(client_id)
    registry.add_client(client_id, name)
    click.echo(f"client {client_id} registered")
    for path in certs:
        _add_cert(registry, client_id, path)


def _add_cert(registry: Any, client_id: str, path: str) -> None:
    from viss_bridge.access.identity import CertificateError, CertificateInfo
    from viss_bridge.access.registry import PermissionProblem

    try:
        info = CertificateInfo.from_pem(Path(path).read_bytes())
        registry.add_certificate(client_id, info, actor=actor_name())
    except (CertificateError, PermissionProblem) as exc:
        raise click.ClickException(f"{path}: {exc}") from None
    click.echo(f"certificate {info.fingerprint} ({info.subject}, valid to {info.not_after:%Y-%m-%d}) "
               f"authenticates {client_id}")


@clients.command("show")
@click.argument("client_id")
@click.pass_context
def clients_show(ctx: click.Context, client_id: str) -> None:
    """One connection: its certificates and permissions."""
    registry = access_registry(ctx)
    client_id = client_id_arg(client_id)
    client = registry.client(client_id)
    if client is None:
        raise click.ClickException(f"client {client_id} is not registered")
    click.echo(f"{client.client_id}  {client.name}")
    for cert in registry.certificates(client_id):
        click.echo(f"  certificate {cert['fingerprint']}  {cert['subject']}  valid to {cert['not_after'][:10]}")
    for p in registry.permissions(client_id=client_id):
        fields = "all fields" if p.fields is None else ", ".join(p.fields)
        click.echo(f"  permission {p.number}  {p.state():<13} {p.dataset}  ({fields}; used {p.used}"
                   f"{'/' + str(p.quota) if p.quota else ''})")


@clients.command("cert")
@click.argument("client_id")
@click.argument("pem", type=click.Path(exists=True, dir_okay=False))
@click.pass_context
def clients_cert(ctx: click.Context, client_id: str, pem: str) -> None:
    """Add a certificate to a registered connection (e.g. during a key rotation)."""
    _add_cert(access_registry(ctx), client_id_arg(client_id), pem)


@clients.command("grant")
@click.argument("client_id")
@click.argument("dataset")
@click.option("--purpose", help="Purpose of use.")
@click.option("--legal-basis", help="Legal basis (default: given).")
@click.option("--legal-obligation", is_flag=True, help="The legal basis is a legal obligation (overrides restrictions).")
@click.option("--fields", help="Comma-separated readable fields (default: all).")
@click.option("--valid-to", type=click.DateTime(formats=["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S"]), help="Last day (or moment) of validity, UTC.")
@click.option("--quota", type=click.IntRange(min=1), help="Number of calls allowed (default: unlimited).")
@click.pass_context
def clients_grant(ctx: click.Context, client_id: str, dataset: str, purpose: str | None, legal_basis: str | None,
                  legal_obligation: bool, fields: str | None, valid_to: Any, quota: int | None) -> None:
    """Grant a permission directly (without an access request). Plain grants are idempotent."""
    from viss_bridge.access.registry import GRANT_LEGAL_BASIS, GRANT_PURPOSE, PermissionProblem
    from viss_bridge.cli.access import end_of

    registry = access_registry(ctx)
    client_id = client_id_arg(client_id)
    if registry.client(client_id) is None:
        raise click.ClickException(f"client {client_id} is not registered; run 'viss-bridge clients add' first")
    try:
        permission = registry.grant(
            client_id, dataset, purpose=purpose or GRANT_PURPOSE, legal_basis=legal_basis or GRANT_LEGAL_BASIS,
            legal_obligation=legal_obligation,
            fields=[f.strip() for f in fields.split(",") if f.strip()] if fields else None,
            valid_to=end_of(valid_to), quota=quota, actor=actor_name())
    except PermissionProblem as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"{client_id} may call {dataset} (permission {permission.number})")


@clients.command("revoke")
@click.argument("client_id")
@click.argument("dataset")
@click.option("--reason", default="")
@click.pass_context
def clients_revoke(ctx: click.Context, client_id: str, dataset: str, reason: str) -> None:
    """Revoke every active permission of a client for a dataset."""
    numbers = access_registry(ctx).revoke(client_id_arg(client_id), dataset, actor=actor_name(), reason=reason)
    click.echo(f"{client_id} may no longer call {dataset}" + (f" (revoked {', '.join(numbers)})" if numbers else ""))
