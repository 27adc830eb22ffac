"""``viss-bridge console user ...``: the web console's accounts and roles (docs/console.md)."""

from __future__ import annotations

import sys
from typing import Any

import click

from viss_bridge.cli.root import main

ROLE = click.Choice(["operator", "security_officer", "data_owner", "migration", "support"])


def _accounts(ctx: click.Context) -> Any:
    from viss_bridge.cli.common import settings_for
    from viss_bridge.console.accounts import AccountStore
    from viss_bridge.db import make_engine

    store = AccountStore(make_engine(settings_for(ctx).database_url))
    store.create_schema()
    return store


def _fail(exc: Exception) -> click.ClickException:
    return click.ClickException(str(exc))


@main.group("console")
def console_group() -> None:
    """The web console at /console/: accounts, roles, one-time login links."""


@console_group.group("user")
def user() -> None:
    """Console accounts and their roles."""


@user.command("add")
@click.argument("name")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input (one line).")
@click.option("--password-file", type=click.Path(exists=True, dir_okay=False), help="Read the password from a file.")
@click.option("--certificate", type=click.Path(exists=True, dir_okay=False),
              help="A TLS client certificate (PEM) that logs this account in.")
@click.pass_context
def user_add(ctx: click.Context, name: str, password_stdin: bool, password_file: str | None,
             certificate: str | None) -> None:
    """Add an account (a password, a certificate, or both; none: one-time links only)."""
    from pathlib import Path

    from viss_bridge.access.identity import CertificateInfo
    from viss_bridge.console.accounts import AccountProblem

    if password_stdin and password_file:
        raise click.UsageError("give --password-stdin or --password-file, not both")
    password = None
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    elif password_file:
        lines = Path(password_file).read_text().splitlines()
        password = lines[0] if lines else ""
    fingerprint = CertificateInfo.from_pem(Path(certificate).read_bytes()).fingerprint if certificate else None
    try:
        account = _accounts(ctx).add(name, password, fingerprint)
    except AccountProblem as exc:
        raise _fail(exc) from None
    click.echo(f"console account {account.name} added"
               + (" with a password" if account.has_password else "")
               + (f", certificate SHA-256 {fingerprint}" if fingerprint else "")
               + "; give it roles with: viss-bridge console user grant NAME ROLE")


@user.command("password")
@click.argument("name")
@click.option("--password-stdin", is_flag=True, required=True, help="Read the new password from standard input.")
@click.pass_context
def user_password(ctx: click.Context, name: str, password_stdin: bool) -> None:
    """Set an account's password."""
    from viss_bridge.console.accounts import AccountProblem

    try:
        _accounts(ctx).set_password(name, sys.stdin.readline().rstrip("\r\n"))
    except AccountProblem as exc:
        raise _fail(exc) from None
    click.echo(f"password of {name} set")


@user.command("grant")
@click.argument("name")
@click.argument("role", type=ROLE)
@click.option("--owner", default="", help="data_owner: the owner id it acts for (e.g. LV/GOV/90000000001/FPR).")
@click.pass_context
def user_grant(ctx: click.Context, name: str, role: str, owner: str) -> None:
    """Give an account a role."""
    from viss_bridge.console.accounts import AccountProblem

    try:
        account = _accounts(ctx).grant(name, role, owner)
    except AccountProblem as exc:
        raise _fail(exc) from None
    click.echo(f"{name}: " + ", ".join(g.role + (f" ({g.scope})" if g.scope else "") for g in account.grants))


@user.command("revoke")
@click.argument("name")
@click.argument("role", type=ROLE)
@click.option("--owner", default=None, help="data_owner: only this owner id (default: every one).")
@click.pass_context
def user_revoke(ctx: click.Context, name: str, role: str, owner: str | None) -> None:
    """Take a role away (effective on the account's next page)."""
    from viss_bridge.console.accounts import AccountProblem

    try:
        account = _accounts(ctx).revoke(name, role, owner)
    except AccountProblem as exc:
        raise _fail(exc) from None
    click.echo(f"{name}: " + (", ".join(g.role + (f" ({g.scope})" if g.scope else "") for g in account.grants)
                              or "no roles"))


@user.command("list")
@click.pass_context
def user_list(ctx: click.Context) -> None:
    """Every account with its roles."""
    from viss_bridge.cli.common import print_table

    print_table(("account", "login", "roles"),
                [(a.name, "+".join(x for x, on in (("password", a.has_password),
                                                    ("certificate", bool(a.certificate_sha256))) if on) or "link",
                  ", ".join(g.role + (f" ({g.scope})" if g.scope else "") for g in a.grants) or "-")
                 for a in _accounts(ctx).list()])


@user.command("link")
@click.argument("name")
@click.option("--minutes", default=30, show_default=True, help="How long the link is valid.")
@click.pass_context
def user_link(ctx: click.Context, name: str, minutes: int) -> None:
    """Print a one-time login link for an account (valid once, for --minutes)."""
    from viss_bridge.cli.common import settings_for
    from viss_bridge.console.accounts import AccountProblem

    try:
        token = _accounts(ctx).make_link(name, minutes)
    except AccountProblem as exc:
        raise _fail(exc) from None
    click.echo(f"{settings_for(ctx).base_url}/console/link?token={token}")
