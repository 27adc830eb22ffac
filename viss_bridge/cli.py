"""The ``viss-bridge`` command. Thin: parses arguments and calls the packages."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import click

from viss_bridge.config import ConfigError, Settings, load_settings, replace


def _settings(ctx: click.Context, **overrides: Any) -> Settings:
    try:
        settings = load_settings(ctx.obj.get("config"), **overrides)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    return settings


@click.group()
@click.option("--config", "config", type=click.Path(dir_okay=False), envvar="VISS_BRIDGE_CONFIG",
              help="Settings file (TOML). Environment variables VISS_BRIDGE_* override it.")
@click.version_option(package_name="viss-bridge")
@click.pass_context
def main(ctx: click.Context, config: str | None) -> None:
    """viss-bridge: generation-II SOAP services answered from the dataset catalog."""
    ctx.ensure_object(dict)
    ctx.obj["config"] = config


# -- demo and serve -------------------------------------------------------------

@main.command()
@click.option("--data-dir", default="var/demo", show_default=True, help="Where the demo keeps its catalog and SQLite file.")
@click.option("--size", default=200, show_default=True, help="Number of synthetic persons (other registers scale with it).")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8080, show_default=True)
@click.option("--workers", default=2, show_default=True)
@click.option("--reset", is_flag=True, help="Throw away the demo data folder's catalog and database first.")
@click.option("--prepare-only", is_flag=True, help="Prepare the data folder and exit without serving.")
@click.option("--database-url", help="Put the demo data in this database (e.g. PostgreSQL) instead of SQLite.")
@click.pass_context
def demo(ctx: click.Context, data_dir: str, size: int, host: str, port: int, workers: int, reset: bool,
         prepare_only: bool, database_url: str | None) -> None:
    """Serve the bridge on loopback with the demo registers on an embedded SQLite."""
    from viss_bridge.demo.seed import DEMO_CLIENTS, example_person_code, prepare_demo

    paths, counts = prepare_demo(data_dir, size=size, reset=reset, database_url=database_url)
    click.echo(f"demo data in {paths.data_dir}: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    settings = _settings(ctx, database_url=paths.database_url, catalog_dir=str(paths.catalog_dir),
                         host=host, port=port, workers=workers)
    if prepare_only:
        return
    settings, tsa_process = _demo_message_log(settings, paths.data_dir)
    person = example_person_code(data_dir, database_url) or "010190-10009"
    client = DEMO_CLIENTS[0].client_id

    def announce() -> None:
        from viss_bridge.catalog.catalog import load_catalog
        from viss_bridge.facade.xroad import lookup_request

        base = settings.base_url
        dataset = load_catalog(paths.catalog_dir).get("fpr_person")
        request_file = paths.data_dir / "example-request.xml"
        if dataset is not None:
            request_file.write_bytes(lookup_request(dataset, client, {"person_code": person}, "demo-1",
                                                    user_id="LV00000000000"))
        lines = [
            "",
            f"viss-bridge demo is serving on {base}  (Ctrl+C stops it)",
            f"  X-Road 4.0 endpoint   {base}/xroad        WSDL {base}/xroad?wsdl",
            f"  catalog-native        {base}/catalog      WSDL {base}/catalog?wsdl",
            f"  listClients           {base}/listClients",
            f"  health / metrics      {base}/health  {base}/metrics",
            f"  catalog folder        {paths.catalog_dir}  (add a manifest: it is published within seconds)",
            "",
            "Example call (client " + client + " reads person " + person + "):",
            f"  curl -s -H 'Content-Type: text/xml; charset=utf-8' --data-binary @{request_file} {base}/xroad",
            "",
            f"Message log: sealed by {settings.signing_cert}, time-stamped by the development TSA at {settings.tsa_url}",
            f"  viss-bridge log find --message-id demo-1          (with VISS_BRIDGE_DATABASE_URL={settings.database_url})",
            f"  viss-bridge log verify --trust {settings.trust_anchors}",
            f"  viss-bridge log export --message-id demo-1 -o demo-1.asice && "
            f"viss-bridge evidence verify demo-1.asice --trust {settings.trust_anchors}",
            "",
        ]
        click.echo("\n".join(lines))
        sys.stdout.flush()

    from viss_bridge.serving import serve

    try:
        serve(settings, on_ready=announce)
    finally:
        if tsa_process is not None:
            tsa_process.terminate()


def _die_with_parent() -> None:
    """Linux: the demo's helper process gets SIGTERM when the demo exits, however it exits."""
    import ctypes
    import signal

    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def _demo_message_log(settings: Settings, data_dir: Path) -> tuple[Settings, Any]:
    """The demo seals its log with a development PKI and real time-stamps from a development TSA process."""
    import subprocess
    import time

    from viss_bridge.security.pki import init_dev_pki

    if settings.signing_key:  # configured by the operator: use theirs
        return settings, None
    pki = init_dev_pki(data_dir / "certs")
    changes: dict[str, Any] = {"signing_cert": str(pki.node.cert), "signing_key": str(pki.node.key),
                               "trust_anchors": str(pki.ca_cert), "sign_responses": settings.sign_responses or "xroad"}
    process = None
    if not settings.tsa_url:
        import socket

        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            tsa_port = sock.getsockname()[1]
        process = subprocess.Popen([sys.executable, "-m", "viss_bridge.cli", "tsa", "serve", "--cert", str(pki.tsa.cert),
                                    "--key", str(pki.tsa.key), "--port", str(tsa_port)], stdout=subprocess.DEVNULL,
                                   preexec_fn=_die_with_parent)
        changes["tsa_url"] = f"http://127.0.0.1:{tsa_port}/"
        time.sleep(0.5)
    return replace(settings, **changes), process


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
    settings = _settings(ctx, host=host, port=port, workers=workers, catalog_dir=catalog_dir,
                         database_url=database_url)
    _check_catalog(settings.catalog_dir)
    from viss_bridge.serving import serve as run

    def announce() -> None:
        from viss_bridge.db import redacted

        click.echo(f"viss-bridge serving on {settings.base_url} with {settings.workers} worker(s); "
                   f"catalog {settings.catalog_dir}")
        sealing = (f"sealed by {settings.signing_cert}" if settings.signing_key
                   else "NOT sealed (no signing_cert/signing_key)")
        click.echo(f"message log: node {settings.node_id} in {redacted(settings.log_database_url or settings.database_url)}, "
                   f"{sealing}, " + (f"time-stamped by {settings.tsa_url}" if settings.tsa_url else "no TSA"))

    run(settings, on_ready=announce)


def _check_catalog(folder: str) -> None:
    from viss_bridge.catalog.catalog import CatalogError, load_catalog

    try:
        load_catalog(folder)
    except CatalogError as exc:
        raise click.ClickException(f"the catalog cannot be published:\n{exc}") from None


# -- catalog --------------------------------------------------------------------

@main.group()
def catalog() -> None:
    """Inspect, validate and load datasets."""


def _catalog_dir(ctx: click.Context, folder: str | None) -> str:
    return folder or _settings(ctx).catalog_dir


@catalog.command("validate")
@click.argument("folder", required=False, type=click.Path())
@click.pass_context
def catalog_validate(ctx: click.Context, folder: str | None) -> None:
    """Check every manifest; print each problem with file, line and field."""
    from viss_bridge.catalog.catalog import CatalogError, load_catalog

    folder = _catalog_dir(ctx, folder)
    try:
        loaded = load_catalog(folder)
    except CatalogError as exc:
        for error in exc.errors:
            click.echo(str(error), err=True)
        raise SystemExit(1) from None
    click.echo(f"{folder}: {len(loaded)} dataset(s) valid: {', '.join(d.dataset for d in loaded)}")


@catalog.command("list")
@click.option("--catalog-dir", type=click.Path())
@click.pass_context
def catalog_list(ctx: click.Context, catalog_dir: str | None) -> None:
    """Datasets with owner, access level and record count."""
    loaded, store = _open(ctx, catalog_dir)
    counts = _counts(store)
    rows = [(d.dataset, d.version, d.access.value, d.owner, str(counts.get(d.dataset, "?")), d.title.en) for d in loaded]
    _table(("dataset", "version", "access", "owner", "records", "title"), rows)


@catalog.command("show")
@click.argument("name")
@click.option("--catalog-dir", type=click.Path())
@click.pass_context
def catalog_show(ctx: click.Context, name: str, catalog_dir: str | None) -> None:
    """One dataset's manifest as published, with its record count."""
    import yaml

    from viss_bridge.catalog.manifest import manifest_to_yaml_dict

    loaded, store = _open(ctx, catalog_dir)
    dataset = loaded.get(name)
    if dataset is None:
        raise click.ClickException(f"no dataset '{name}' in {loaded.folders[0]}; known: {', '.join(loaded.datasets)}")
    click.echo(f"# {dataset.origin}")
    click.echo(yaml.safe_dump(manifest_to_yaml_dict(dataset), allow_unicode=True, sort_keys=False).rstrip())
    click.echo(f"# records: {_counts(store).get(name, '?')}")


@catalog.command("load")
@click.argument("name")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--replace", "replace_all", is_flag=True, help="Replace the dataset's records instead of upserting.")
@click.option("--catalog-dir", type=click.Path())
@click.pass_context
def catalog_load(ctx: click.Context, name: str, file: str, replace_all: bool, catalog_dir: str | None) -> None:
    """Load records from a .jsonl, .json or .csv file (all rows are checked before any is written)."""
    from viss_bridge.catalog.loading import RecordFileError, read_records

    loaded, store = _open(ctx, catalog_dir)
    dataset = loaded.get(name)
    if dataset is None:
        raise click.ClickException(f"no dataset '{name}' in the catalog")
    try:
        records = read_records(dataset, file)
    except RecordFileError as exc:
        raise click.ClickException(str(exc)) from None
    written = store.replace_all(dataset, records) if replace_all else store.upsert(dataset, records)
    click.echo(f"{name}: {written} record(s) {'replaced' if replace_all else 'loaded'}; now {store.count(dataset)}")


def _open(ctx: click.Context, catalog_dir: str | None) -> tuple[Any, Any]:
    from viss_bridge.catalog.catalog import CatalogError, load_catalog
    from viss_bridge.catalog.store import DatasetStore
    from viss_bridge.db import make_engine

    settings = _settings(ctx)
    try:
        loaded = load_catalog(catalog_dir or settings.catalog_dir)
    except CatalogError as exc:
        raise click.ClickException(str(exc)) from None
    store = DatasetStore(make_engine(settings.database_url))
    store.create_schema()
    return loaded, store


def _counts(store: Any) -> dict[str, int]:
    from viss_bridge.catalog.store import StoreUnavailable

    try:
        return store.counts()
    except StoreUnavailable:
        return {}


def _table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
    widths = [max(len(str(x)) for x in column) for column in zip(header, *rows)] if rows else [len(h) for h in header]
    for row in (header, *rows):
        click.echo("  ".join(str(value).ljust(width) for value, width in zip(row, widths)).rstrip())


# -- clients --------------------------------------------------------------------

@main.group()
def clients() -> None:
    """Consumer identities and the datasets each may call."""


def _registry(ctx: click.Context) -> Any:
    from viss_bridge.access.registry import AccessRegistry
    from viss_bridge.db import make_engine

    registry = AccessRegistry(make_engine(_settings(ctx).database_url))
    registry.create_schema()
    return registry


def _client_id(value: str) -> str:
    from viss_bridge.facade.xroad_headers import XRoadId

    try:
        return XRoadId.parse_client(value).provider
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


@clients.command("list")
@click.pass_context
def clients_list(ctx: click.Context) -> None:
    registry = _registry(ctx)
    rows = [(c.client_id, ", ".join(sorted(registry.allowed_datasets(c.client_id))) or "-", c.name)
            for c in registry.clients()]
    _table(("client", "datasets", "name"), rows)


@clients.command("add")
@click.argument("client_id")
@click.option("--name", default="")
@click.pass_context
def clients_add(ctx: click.Context, client_id: str, name: str) -> None:
    _registry(ctx).add_client(_client_id(client_id), name)
    click.echo(f"client {client_id} registered")


@clients.command("grant")
@click.argument("client_id")
@click.argument("dataset")
@click.pass_context
def clients_grant(ctx: click.Context, client_id: str, dataset: str) -> None:
    registry = _registry(ctx)
    client_id = _client_id(client_id)
    if registry.client(client_id) is None:
        raise click.ClickException(f"client {client_id} is not registered; run 'viss-bridge clients add' first")
    registry.grant(client_id, dataset)
    click.echo(f"{client_id} may call {dataset}")


@clients.command("revoke")
@click.argument("client_id")
@click.argument("dataset")
@click.pass_context
def clients_revoke(ctx: click.Context, client_id: str, dataset: str) -> None:
    _registry(ctx).revoke(_client_id(client_id), dataset)
    click.echo(f"{client_id} may no longer call {dataset}")


# -- certificates ---------------------------------------------------------------

@main.group()
def certs() -> None:
    """Development PKI (throw-away keys made on this machine; never commit them)."""


@certs.command("init")
@click.option("--dir", "folder", default="certs", show_default=True, type=click.Path(file_okay=False))
@click.option("--force", is_flag=True, help="Replace an existing development PKI.")
def certs_init(folder: str, force: bool) -> None:
    """Create a root CA, node signing, time-stamping, TLS and demo consumer/provider certificates."""
    from viss_bridge.security.pki import init_dev_pki, load_certificate, subject_cn

    pki = init_dev_pki(folder, force=force)
    rows = [("root CA", str(pki.ca_cert))]
    rows += [(label, str(ident.cert)) for label, ident in (("node signing", pki.node), ("time-stamping", pki.tsa),
                                                           ("TLS server", pki.tls))]
    rows += [(f"consumer {cid}", str(ident.cert)) for cid, ident in pki.consumers.items()]
    rows += [(f"provider {pid}", str(ident.cert)) for pid, ident in pki.providers.items()]
    _table(("certificate", "file"), rows)
    ca = load_certificate(pki.ca_cert)
    click.echo(f"trust anchor: {subject_cn(ca)}, valid until {ca.not_valid_after_utc:%Y-%m-%d}; "
               f"private keys (*.key) are mode 0600 and must never be committed")


# -- message log, evidence, development TSA -------------------------------------------------

@main.group("log")
def log_group() -> None:
    """The message log: verify, find, export evidence, seal, archive (docs/security-officer.md)."""


def _log_store(ctx: click.Context, database_url: str | None, read_only: bool = True) -> Any:
    """The log database; read-only unless the command must write (archive, purge)."""
    from viss_bridge.msglog.store import LogStore

    settings = _settings(ctx)
    return LogStore(database_url or settings.log_database_url or settings.database_url, read_only=read_only)


def _trust(ctx: click.Context, trust: tuple[str, ...]) -> Any:
    from viss_bridge.security.pki import CertificateError, TrustStore

    paths = list(trust) or ([_settings(ctx).trust_anchors] if _settings(ctx).trust_anchors else [])
    if not paths:
        raise click.ClickException("say which CAs to trust: --trust CA.pem (or set trust_anchors)")
    try:
        return TrustStore.from_files(*paths)
    except (OSError, ValueError, CertificateError) as exc:
        raise click.ClickException(f"cannot read the trust anchors: {exc}") from None


_db_option = click.option("--database-url", help="Log database (default: log_database_url, else database_url).")
_trust_option = click.option("--trust", multiple=True, type=click.Path(exists=True, dir_okay=False),
                             help="Trusted CA certificate(s), PEM (default: trust_anchors).")


@log_group.command("verify")
@_db_option
@_trust_option
@click.option("--node", "nodes", multiple=True, help="Only these nodes (default: every node in the log).")
@click.option("--unsealed-grace", default=300.0, show_default=True,
              help="Seconds a record may wait for its seal before it counts as a missing seal (-1: never).")
@click.option("--require-timestamps", is_flag=True, help="A seal without an RFC 3161 time-stamp is a failure.")
@click.option("--known-seals", type=click.Path(exists=True, file_okay=False),
              help="A folder of seals kept outside the database ('log export-seals'): each must be in the log.")
@click.option("--json", "as_json", is_flag=True, help="Print the findings as JSON (for monitoring).")
@click.pass_context
def log_verify(ctx: click.Context, database_url: str | None, trust: tuple[str, ...], nodes: tuple[str, ...],
               unsealed_grace: float, require_timestamps: bool, known_seals: str | None, as_json: bool) -> None:
    """Check chains, records, seals, Merkle roots and time-stamps of every node; exit 1 on any problem."""
    from viss_bridge.msglog.store import LogUnavailable
    from viss_bridge.msglog.verify import verify_log

    store = _log_store(ctx, database_url)
    kept = [p.read_bytes() for p in sorted(Path(known_seals).glob("*.xml"))] if known_seals else []
    try:
        report = verify_log(store, _trust(ctx, trust), nodes=list(nodes) or None,
                            unsealed_grace=None if unsealed_grace < 0 else unsealed_grace,
                            require_timestamps=require_timestamps, known_seals=kept)
    except LogUnavailable as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(report.json() if as_json else report.text())
    if not report.ok:
        raise SystemExit(1)


@log_group.command("find")
@_db_option
@click.option("--message-id")
@click.option("--exchange", "exchange_id", help="Exchange id (the UUID in a fault's faultDetail).")
@click.option("--client")
@click.option("--service")
@click.option("--person", help="A data subject (e.g. personal code) in the answer.")
@click.option("--since", help="ISO time, UTC (e.g. 2026-11-28T06:00:00Z).")
@click.option("--until", help="ISO time, UTC.")
@click.option("--node")
@click.option("--limit", default=100, show_default=True)
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def log_find(ctx: click.Context, database_url: str | None, as_json: bool, since: str | None, until: str | None,
             **criteria: Any) -> None:
    """List records matching every criterion given, newest first."""
    import json

    from viss_bridge.msglog.find import find_records

    def iso(value: str | None) -> str | None:
        import datetime as dt

        if not value:
            return None
        moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        moment = moment if moment.tzinfo else moment.replace(tzinfo=dt.timezone.utc)
        return moment.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")

    from viss_bridge.msglog.store import LogUnavailable

    try:
        rows = find_records(_log_store(ctx, database_url), since=iso(since), until=iso(until), **criteria)
    except LogUnavailable as exc:
        raise click.ClickException(str(exc)) from None
    if as_json:
        click.echo(json.dumps(rows, indent=2, ensure_ascii=False))
        return
    _table(("record", "time", "leg", "dir", "client", "service", "message id", "status", "fault", "exchange"),
           [(f"{r['node_id']}/{r['seq']}", r["recorded_at"], r["leg"], r["direction"], r["client"] or "-",
             r["service"] or "-", r["message_id"] or "-", str(r["status"] or "-"), r["fault_code"] or "-",
             r["exchange_id"]) for r in rows])
    click.echo(f"{len(rows)} record(s)")


@log_group.command("export")
@_db_option
@click.option("--message-id")
@click.option("--exchange", "exchange_id")
@click.option("--record", "record", help="NODE/SEQ of any record of the exchange.")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help="The .asice file to write.")
@click.pass_context
def log_export(ctx: click.Context, database_url: str | None, message_id: str | None, exchange_id: str | None,
               record: str | None, output: str) -> None:
    """Write one exchange (every record of it) as an ASiC-E evidence container."""
    from viss_bridge.msglog.evidence import EvidenceError, export_exchange, find_exchange_records
    from viss_bridge.msglog.store import LogUnavailable

    node = seq = None
    if record:
        node, _, number = record.rpartition("/")
        if not node or not number.isdigit():
            raise click.BadParameter("use NODE/SEQ, e.g. node-1/42", param_hint="--record")
        seq = int(number)
    store = _log_store(ctx, database_url)
    try:
        records = find_exchange_records(store, exchange_id=exchange_id, message_id=message_id, node=node, seq=seq)
        data = export_exchange(store, records)
    except (EvidenceError, LogUnavailable) as exc:
        raise click.ClickException(str(exc)) from None
    Path(output).write_bytes(data)
    click.echo(f"{output}: {len(records)} record(s) "
               f"({', '.join(r['node_id'] + '/' + str(r['seq']) for r in records)}), {len(data)} bytes")


@log_group.command("seal")
@_db_option
@click.pass_context
def log_seal(ctx: click.Context, database_url: str | None) -> None:
    """Seal every record not sealed yet now (the running bridge does this by itself every few seconds)."""
    from viss_bridge.msglog import MessageLog

    settings = _settings(ctx)
    if database_url:
        settings = replace(settings, log_database_url=database_url)
    msglog = MessageLog.from_settings(settings)
    if msglog.signing_key is None:
        raise click.ClickException("no signing_cert/signing_key configured: cannot seal")
    count = msglog.seal_pending(force=True)
    click.echo(f"node {settings.node_id}: sealed {count} record(s); sealed up to {msglog.status.sealed_seq}")


@log_group.command("export-seals")
@_db_option
@click.option("-o", "--output", required=True, type=click.Path(file_okay=False), help="Folder to write seals to.")
@click.option("--since-seq", default=0, show_default=True, help="Only seals ending after this sequence number.")
@click.option("--node")
@click.pass_context
def log_export_seals(ctx: click.Context, database_url: str | None, output: str, since_seq: int, node: str | None) -> None:
    """Copy seals (and their time-stamps) out of the database, to keep where its administrators cannot reach."""
    from viss_bridge.msglog.store import LogUnavailable
    from viss_bridge.msglog.verify import export_seals

    try:
        count = export_seals(_log_store(ctx, database_url), output, since_seq, node)
    except LogUnavailable as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"{count} seal(s) written to {output}")


@log_group.command("archive")
@_db_option
@click.option("--older-than-days", type=float, help="Default: archive_after_days.")
@click.option("--dir", "folder", type=click.Path(file_okay=False), help="Default: archive_dir.")
@click.option("--node", "nodes", multiple=True, help="Default: every node.")
@click.pass_context
def log_archive(ctx: click.Context, database_url: str | None, older_than_days: float | None, folder: str | None,
                nodes: tuple[str, ...]) -> None:
    """Move whole seals of old records into archive files that continue the chain (records stay until purged)."""
    from viss_bridge.msglog.archive import ArchiveError, archive_node

    settings = _settings(ctx)
    store = _log_store(ctx, database_url, read_only=False)
    for node in nodes or store.nodes():
        try:
            path = archive_node(store, node, folder or settings.archive_dir,
                                settings.archive_after_days if older_than_days is None else older_than_days)
        except ArchiveError as exc:
            raise click.ClickException(f"node {node}: {exc}") from None
        click.echo(f"node {node}: " + (f"archived to {path}" if path else "nothing old enough to archive"))


@log_group.command("purge")
@_db_option
@click.option("--retention-days", type=float, help="Default: retention_days (0 or less: purge nothing).")
@click.option("--node", "nodes", multiple=True)
@click.pass_context
def log_purge(ctx: click.Context, database_url: str | None, retention_days: float | None, nodes: tuple[str, ...]) -> None:
    """Retention: delete from the database only archived records (archive file intact) older than the period."""
    from viss_bridge.msglog.archive import ArchiveError, purge_node

    days = _settings(ctx).retention_days if retention_days is None else retention_days
    if days <= 0 and retention_days is None:
        click.echo("retention_days is not set: nothing is deleted")
        return
    store = _log_store(ctx, database_url, read_only=False)
    for node in nodes or store.nodes():
        try:
            click.echo(f"node {node}: deleted {purge_node(store, node, days)} archived record(s)")
        except ArchiveError as exc:
            raise click.ClickException(f"node {node}: {exc}") from None


@log_group.command("verify-archive")
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@_trust_option
@click.pass_context
def log_verify_archive(ctx: click.Context, files: tuple[str, ...], trust: tuple[str, ...]) -> None:
    """Verify archive files on their own; given several of one node in order, also that each continues the last."""
    from viss_bridge.msglog.archive import verify_archive

    store = _trust(ctx, trust)
    ok = True
    for index, file in enumerate(files):
        report = verify_archive(file, store, previous=files[index - 1] if index else None)
        click.echo(report.text())
        ok = ok and report.ok
    if not ok:
        raise SystemExit(1)


@main.group()
def evidence() -> None:
    """Evidence containers exported by 'viss-bridge log export'."""


@evidence.command("verify")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--trust", multiple=True, required=True, type=click.Path(exists=True, dir_okay=False),
              help="Trusted CA certificate(s), PEM: YOUR copy, not one from the container.")
def evidence_verify(file: str, trust: tuple[str, ...]) -> None:
    """Verify a container offline and print a report; exit 1 if anything fails."""
    from viss_bridge.msglog.evidence import verify_container
    from viss_bridge.security.pki import TrustStore

    report = verify_container(Path(file).read_bytes(), TrustStore.from_files(*trust), name=file)
    click.echo(report.text())
    if not report.ok:
        raise SystemExit(1)


@main.group()
def tsa() -> None:
    """The development time-stamping authority (RFC 3161 over HTTP)."""


@tsa.command("serve")
@click.option("--cert", default="certs/tsa.pem", show_default=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--key", default="certs/tsa.key", show_default=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=3161, show_default=True)
def tsa_serve(cert: str, key: str, host: str, port: int) -> None:
    """Answer application/timestamp-query with tokens signed by the development TSA certificate."""
    from viss_bridge.msglog.tsp import DevTsa, make_server
    from viss_bridge.security.pki import load_certificate, load_private_key

    server = make_server(DevTsa(load_certificate(cert), load_private_key(key)), host, port)
    click.echo(f"development TSA on http://{host}:{server.server_address[1]}/ (certificate {cert}); Ctrl+C stops it")
    sys.stdout.flush()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":  # pragma: no cover
    main()
