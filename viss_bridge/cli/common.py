"""What every command group of the CLI shares: settings, stores, tables, the acting operator."""

from __future__ import annotations

from typing import Any

import click

from viss_bridge.config import ConfigError, Settings, load_settings


def settings_for(ctx: click.Context, **overrides: Any) -> Settings:
    try:
        settings = load_settings(ctx.obj.get("config"), **overrides)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    return settings




def catalog_dir_of(ctx: click.Context, folder: str | None) -> str:
    return folder or settings_for(ctx).catalog_dir




def open_catalog(ctx: click.Context, catalog_dir: str | None) -> tuple[Any, Any]:
    from viss_bridge.catalog.catalog import CatalogError, load_catalog
    from viss_bridge.catalog.store import DatasetStore
    from viss_bridge.db import make_engine

    settings = settings_for(ctx)
    try:
        loaded = load_catalog(catalog_dir or settings.catalog_dir)
    except CatalogError as exc:
        raise click.ClickException(str(exc)) from None
    store = DatasetStore(make_engine(settings.database_url))
    store.create_schema()
    return loaded, store


def record_counts(store: Any) -> dict[str, int]:
    from viss_bridge.catalog.store import StoreUnavailable

    try:
        return store.counts()
    except StoreUnavailable:
        return {}


def print_table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
    widths = [max(len(str(x)) for x in column) for column in zip(header, *rows)] if rows else [len(h) for h in header]
    for row in (header, *rows):
        click.echo("  ".join(str(value).ljust(width) for value, width in zip(row, widths)).rstrip())




def access_registry(ctx: click.Context) -> Any:
    from viss_bridge.access.registry import AccessRegistry
    from viss_bridge.db import make_engine

    from viss_bridge.facade.logging_sink import MessageLogAuditSink
    from viss_bridge.msglog import MessageLog

    settings = settings_for(ctx)
    msglog = MessageLog.from_settings(settings)
    require_log_identity(msglog, settings.node_id)
    registry = AccessRegistry(make_engine(settings.database_url))
    registry.create_schema()
    # An operator's access-control steps go on the node's signed chain too, as the bridge's own do.
    registry.audit.committed_sinks.append(MessageLogAuditSink(msglog))
    return registry


def require_log_identity(msglog: Any, node_id: str) -> None:
    """Refuse to write to a message log as a node that is not there and cannot seal.

    Run against a shared log without the node's settings, a command would start a chain for the
    default node id that nobody seals, and ``log verify`` would fail on it for ever. Appending is
    fine to a chain that exists (its node seals it), with the node's signing key, or to a log that
    has no chain yet (a fresh single-node install, sealed once its bridge starts).
    """
    try:
        nodes = msglog.store.nodes()
    except Exception:  # no log tables yet (or unreachable: the write itself says so)
        return
    if not nodes or node_id in nodes or msglog.signing_key is not None:
        return
    raise click.ClickException(
        f"the message log holds the chains of node(s) {', '.join(nodes)}, not of node '{node_id}', and no signing "
        f"key is configured: this command would start an unsealed chain. Run it with the settings of the node it "
        f"acts for (--config, or VISS_BRIDGE_NODE_ID with VISS_BRIDGE_SIGNING_CERT/KEY)")


def client_id_arg(value: str) -> str:
    from viss_bridge.facade.xroad_headers import XRoadId

    try:
        return XRoadId.parse_client(value).provider
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None




def acting_operator() -> "Any":
    """The local operator as an actor with operator rights: only this in-process call makes one
    (a name such as ``cli:root`` a caller sends or registers never does)."""
    from viss_bridge.access.requests import Actor

    return Actor(actor_name(), operator=True)


def actor_name() -> str:
    import getpass

    try:
        return f"cli:{getpass.getuser()}"
    except Exception:  # noqa: BLE001 - no user name in some containers
        return "cli:operator"




def migration_tracker(ctx: click.Context) -> Any:
    from viss_bridge.db import make_engine
    from viss_bridge.migration.tracking import MigrationTracker

    tracker = MigrationTracker(make_engine(settings_for(ctx).database_url))
    tracker.create_schema()
    return tracker

# -- legacy providers and replication ----------------------------------



def log_store(ctx: click.Context, database_url: str | None, read_only: bool = True) -> Any:
    """The log database; read-only unless the command must write (archive, purge)."""
    from viss_bridge.msglog.store import LogStore

    settings = settings_for(ctx)
    return LogStore(database_url or settings.message_log_url, read_only=read_only)


def trust_store(ctx: click.Context, trust: tuple[str, ...]) -> Any:
    from viss_bridge.security.pki import CertificateError, TrustStore

    paths = list(trust) or ([settings_for(ctx).trust_anchors] if settings_for(ctx).trust_anchors else [])
    if not paths:
        raise click.ClickException("say which CAs to trust: --trust CA.pem (or set trust_anchors)")
    try:
        return TrustStore.from_files(*paths)
    except (OSError, ValueError, CertificateError) as exc:
        raise click.ClickException(f"cannot read the trust anchors: {exc}") from None


db_option = click.option("--database-url", help="Log database (default: log_database_url, else beside/in database_url).")
trust_option = click.option("--trust", multiple=True, type=click.Path(exists=True, dir_okay=False),
                             help="Trusted CA certificate(s), PEM (default: trust_anchors).")
