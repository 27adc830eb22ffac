"""``viss-bridge serve``, ``sync`` and ``provider``: running the bridge, its replication and demo providers."""

from __future__ import annotations

import os
import sys
from typing import Any

import click

from viss_bridge.config import Settings
from viss_bridge.cli.common import (settings_for, print_table, open_catalog)
from viss_bridge.cli.root import main


@main.command()
@click.option("--host")
@click.option("--port", type=int)
@click.option("--workers", type=int)
@click.option("--catalog-dir", type=click.Path(file_okay=False))
@click.option("--database-url")
@click.pass_context
def serve(ctx: click.Context, host: str | None, port: int | None, workers: int | None, catalog_dir: str | None,
          database_url: str | None) -> None:
    """Serve the bridge under gunicorn with the configured number of workers."""
    settings = settings_for(ctx, host=host, port=port, workers=workers, catalog_dir=catalog_dir,
                         database_url=database_url)
    _check_catalog(settings.catalog_dir)
    from viss_bridge.serving import serve as run

    def announce() -> None:
        from viss_bridge.db import redacted

        click.echo(f"viss-bridge serving on {settings.base_url} with {settings.workers} worker(s); "
                   f"catalog {settings.catalog_dir}")
        if settings.tls_certfile:
            click.echo("TLS: client certificates " + ("required" if settings.tls_require_client_cert else
                                                      "requested") + f" (CA {settings.tls_client_ca or 'none'})")
        if settings.trust_client_header:
            click.echo("WARNING: DEVELOPMENT MODE: trust_client_header = true -- message client headers are believed "
                       "without a certificate")
        sealing = (f"sealed by {settings.signing_cert}" if settings.signing_key
                   else "NOT sealed (no signing_cert/signing_key)")
        click.echo(f"message log: node {settings.node_id} in {redacted(settings.message_log_url)}, "
                   f"{sealing}, " + (f"time-stamped by {settings.tsa_url}" if settings.tsa_url else "no TSA"))

    syncer = _start_sync_loop(ctx, settings)
    try:
        run(settings, on_ready=announce)
    finally:
        if syncer is not None and syncer.poll() is None:
            syncer.terminate()


def _start_sync_loop(ctx: click.Context, settings: Settings) -> Any:
    """With sync_interval > 0, `serve` keeps replicated legacy datasets fresh in a child process."""
    if settings.sync_interval <= 0:
        return None
    import subprocess

    env = dict(os.environ, VISS_BRIDGE_DATABASE_URL=settings.database_url, VISS_BRIDGE_CATALOG_DIR=settings.catalog_dir)
    command = [sys.executable, "-m", "viss_bridge.cli"]
    if ctx.obj.get("config"):
        command += ["--config", ctx.obj["config"]]
    command += ["sync", "--all", "--every", str(settings.sync_interval)]
    click.echo(f"syncing replicated legacy datasets every {settings.sync_interval} s (pid in the process list: viss-bridge sync)")
    return subprocess.Popen(command, env=env)


def _check_catalog(folder: str) -> None:
    from viss_bridge.catalog.catalog import CatalogError, load_catalog

    try:
        load_catalog(folder)
    except CatalogError as exc:
        raise click.ClickException(f"the catalog cannot be published:\n{exc}") from None


# -- catalog --------------------------------------------------------------------



@main.command()
@click.argument("datasets", nargs=-1)
@click.option("--all", "all_", is_flag=True, help="Every dataset whose source is legacy_soap with mode: replicated.")
@click.option("--full", is_flag=True, help="Forget the cursor and pull everything again.")
@click.option("--every", type=float, help="Repeat every N seconds (default: the sync_interval setting; 0 runs once).")
@click.option("--max-pages", type=int, help="Stop after N pages (the cursor keeps the place).")
@click.option("--status", is_flag=True, help="Show every dataset's sync cursor, progress and last error, and exit.")
@click.option("--catalog-dir", type=click.Path())
@click.pass_context
def sync(ctx: click.Context, datasets: tuple[str, ...], all_: bool, full: bool, every: float | None,
         max_pages: int | None, status: bool, catalog_dir: str | None) -> None:
    """Replicate legacy providers' records into the store: full first, then incremental, resumable."""
    import time as _time

    from viss_bridge.upstream.pool import ProviderPool
    from viss_bridge.upstream.sync import SyncState, chosen_datasets, sync_dataset

    settings = settings_for(ctx)
    if status:
        from viss_bridge.db import make_engine

        sync_state = SyncState(make_engine(settings.database_url))
        sync_state.create_schema()
        rows = [(c.dataset, "yes" if c.full_done else "no", c.changed_since.isoformat(), c.after_key or "-",
                 str(c.pages), str(c.records), moved.isoformat(timespec="seconds"), c.last_error or "-")
                for c, moved in sync_state.all() if not datasets or c.dataset in datasets]
        print_table(("dataset", "full done", "changed since", "after key", "pages", "records", "last sync", "last error"), rows)
        return
    from viss_bridge.cli.progress import progress_bar

    interval = settings.sync_interval if every is None else every
    state = None
    from viss_bridge.upstream.platform import PlatformConnection, PlatformPool

    # The provider calls of a sync go on the node's message log like those made while serving (both kinds).
    sink = _sync_log_sink(settings)
    pool = ProviderPool(sink=sink)
    platform = PlatformPool(PlatformConnection.from_settings(settings), sink=sink)
    failed = False
    while True:
        try:
            loaded, store = open_catalog(ctx, catalog_dir)
        except click.ClickException as exc:
            if not interval:
                raise
            click.echo(f"sync: {exc.message}; trying again in {interval} s", err=True)
            _time.sleep(interval)
            continue
        if state is None:
            state = SyncState(store.engine)
            state.create_schema()
        try:
            chosen = chosen_datasets(loaded, datasets, all_)
        except KeyError as exc:
            raise click.ClickException(f"no dataset '{exc.args[0]}' in the catalog") from None
        if not chosen and not (all_ and interval):
            raise click.ClickException("name a dataset, or use --all for every replicated legacy dataset")
        failed = False
        for dataset in chosen:
            try:
                with progress_bar(f"syncing {dataset.dataset} (records)") as progress:
                    result = sync_dataset(dataset, store, pool, state, full=full, max_pages=max_pages,
                                          progress=progress, platform=platform)
            except ValueError as exc:
                raise click.ClickException(str(exc)) from None
            for note in result.notes:
                click.echo(f"{dataset.dataset}: {note}")
            failed = failed or result.error is not None
            click.echo(result.summary(store.count(dataset)), err=result.error is not None)
        full = False
        if not interval:
            break
        _time.sleep(interval)
    if failed:
        raise SystemExit(1)


def _sync_log_sink(settings: Any) -> Any:
    """Hands each provider exchange of a sync to the message log (a call that cannot be logged fails)."""
    from viss_bridge.facade.logging_sink import MessageLogSink
    from viss_bridge.facade.sources import ProviderLegSink
    from viss_bridge.msglog import LogUnavailable, MessageLog

    msglog = MessageLog.from_settings(settings)
    try:
        msglog.open()
    except LogUnavailable as exc:  # nothing is fetched that could not be logged
        raise click.ClickException(f"the message log cannot be opened, so nothing is synced: {exc}") from None
    return ProviderLegSink([MessageLogSink(msglog)])


@main.command()
@click.argument("registers", nargs=-1)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8091, show_default=True, help="Port of the first register; the next ones follow.")
@click.option("--size", default=200, show_default=True, help="Synthetic world size (as for `demo`).")
def provider(registers: tuple[str, ...], host: str, port: int, size: int) -> None:
    """Run demo legacy providers (persons, addresses, vehicles): generation-II registers with their own WSDLs."""
    from viss_bridge.demo.legacy_providers.registers import REGISTERS
    from viss_bridge.demo.legacy_providers.server import run_providers

    names = list(registers) or list(REGISTERS)
    unknown = [n for n in names if n not in REGISTERS]
    if unknown:
        raise click.ClickException(f"unknown register {unknown[0]}; known: {', '.join(REGISTERS)}")

    def ready(servers: list[Any]) -> None:
        for server in servers:
            click.echo(f"legacy provider {server.register.name:<10} {server.url}  WSDL {server.wsdl_url}  "
                       f"control {server.base_url}/control")
        sys.stdout.flush()

    run_providers(names, host, port, size, on_ready=ready)


# -- certificates ---------------------------------------------------------------
