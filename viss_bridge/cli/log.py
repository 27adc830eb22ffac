"""``viss-bridge log``, ``evidence``, ``tsa`` and ``certs``: the message log, evidence containers, trusted time, keys."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from viss_bridge.config import replace
from viss_bridge.cli.common import (settings_for, print_table, log_store, trust_store, db_option, trust_option)
from viss_bridge.cli.progress import progress_bar
from viss_bridge.cli.root import main


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
    print_table(("certificate", "file"), rows)
    ca = load_certificate(pki.ca_cert)
    click.echo(f"trust anchor: {subject_cn(ca)}, valid until {ca.not_valid_after_utc:%Y-%m-%d}; "
               f"private keys (*.key) are mode 0600 and must never be committed")


# -- message log, evidence, development TSA -------------------------------------------------

@main.group("log")
def log_group() -> None:
    """The message log: verify, find, export evidence, seal, archive (docs/security-officer.md)."""


@log_group.command("verify")
@db_option
@trust_option
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

    store = log_store(ctx, database_url)
    kept = [p.read_bytes() for p in sorted(Path(known_seals).glob("*.xml"))] if known_seals else []
    try:
        with progress_bar("verifying records", quiet=as_json) as bar:
            checked = {"done": 0, "total": 0}

            def progress(step: int, node_total: int) -> None:  # the verifier reports steps per node
                if checked["done"] >= checked["total"]:  # the next node begins
                    checked["total"] += node_total
                checked["done"] += step
                bar(checked["done"], checked["total"])

            report = verify_log(store, trust_store(ctx, trust), nodes=list(nodes) or None,
                                unsealed_grace=None if unsealed_grace < 0 else unsealed_grace,
                                require_timestamps=require_timestamps, known_seals=kept, progress=progress)
    except LogUnavailable as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(report.json() if as_json else report.text())
    if not report.ok:
        raise SystemExit(1)


@log_group.command("find")
@db_option
@click.option("--message-id")
@click.option("--exchange", "exchange_id", help="Exchange id (the UUID in a fault's faultDetail).")
@click.option("--client")
@click.option("--service", help="A service, or its start up to a '/' (a subsystem, a provider: pmlp-fpr).")
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
        rows = find_records(log_store(ctx, database_url), since=iso(since), until=iso(until), **criteria)
    except LogUnavailable as exc:
        raise click.ClickException(str(exc)) from None
    if as_json:
        click.echo(json.dumps(rows, indent=2, ensure_ascii=False))
        return
    print_table(("record", "time", "leg", "dir", "client", "service", "message id", "status", "fault", "exchange"),
           [(f"{r['node_id']}/{r['seq']}", r["recorded_at"], r["leg"], r["direction"], r["client"] or "-",
             r["service"] or "-", r["message_id"] or "-", str(r["status"] or "-"), r["fault_code"] or "-",
             r["exchange_id"]) for r in rows])
    click.echo(f"{len(rows)} record(s)")


@log_group.command("export")
@db_option
@click.option("--message-id")
@click.option("--exchange", "exchange_id")
@click.option("--record", "record", help="NODE/SEQ of any record of the exchange.")
@click.option("--person", help="Every exchange concerning this person (a data-subject request), in one container.")
@click.option("--since", help="With --person: from this time (ISO UTC, e.g. 2026-01-01T00:00:00Z).")
@click.option("--until", help="With --person: up to this time.")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help="The .asice file to write.")
@click.pass_context
def log_export(ctx: click.Context, database_url: str | None, message_id: str | None, exchange_id: str | None,
               record: str | None, person: str | None, since: str | None, until: str | None, output: str) -> None:
    """Write one exchange (every record of it), or all of one person's, as a signed ASiC-E evidence container."""
    from viss_bridge.msglog.evidence import EvidenceError, export_exchange, find_exchange_records, find_person_records
    from viss_bridge.msglog.store import LogUnavailable
    from viss_bridge.security.keys import SigningKey

    node = seq = None
    if record:
        node, _, number = record.rpartition("/")
        if not node or not number.isdigit():
            raise click.BadParameter("use NODE/SEQ, e.g. node-1/42", param_hint="--record")
        seq = int(number)
    settings = settings_for(ctx)
    if not (settings.signing_cert and settings.signing_key):
        raise click.ClickException("no signing_cert/signing_key configured: the container is signed with the node key")
    key = SigningKey.from_files(settings.signing_cert, settings.signing_key)
    store = log_store(ctx, database_url)
    try:
        if person:
            records = find_person_records(store, person, since, until)
        else:
            records = find_exchange_records(store, exchange_id=exchange_id, message_id=message_id, node=node, seq=seq)
        data = export_exchange(store, records, key, settings.tsa_url or None)
    except (EvidenceError, LogUnavailable) as exc:
        raise click.ClickException(str(exc)) from None
    Path(output).write_bytes(data)
    click.echo(f"{output}: {len(records)} record(s) "
               f"({', '.join(r['node_id'] + '/' + str(r['seq']) for r in records)}), {len(data)} bytes")


@log_group.command("seal")
@db_option
@click.pass_context
def log_seal(ctx: click.Context, database_url: str | None) -> None:
    """Seal every record not sealed yet now (the running bridge does this by itself every few seconds)."""
    from viss_bridge.msglog import MessageLog

    settings = settings_for(ctx)
    if database_url:
        settings = replace(settings, log_database_url=database_url)
    msglog = MessageLog.from_settings(settings)
    if msglog.signing_key is None:
        raise click.ClickException("no signing_cert/signing_key configured: cannot seal")
    count = msglog.seal_pending(force=True)
    click.echo(f"node {settings.node_id}: sealed {count} record(s); sealed up to {msglog.status.sealed_seq}")


@log_group.command("export-seals")
@db_option
@click.option("-o", "--output", required=True, type=click.Path(file_okay=False), help="Folder to write seals to.")
@click.option("--since-seq", default=0, show_default=True, help="Only seals ending after this sequence number.")
@click.option("--node")
@click.pass_context
def log_export_seals(ctx: click.Context, database_url: str | None, output: str, since_seq: int, node: str | None) -> None:
    """Copy seals (and their time-stamps) out of the database, to keep where its administrators cannot reach."""
    from viss_bridge.msglog.store import LogUnavailable
    from viss_bridge.msglog.verify import export_seals

    try:
        count = export_seals(log_store(ctx, database_url), output, since_seq, node)
    except LogUnavailable as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"{count} seal(s) written to {output}")


@log_group.command("archive")
@db_option
@click.option("--older-than-days", type=float, help="Default: archive_after_days.")
@click.option("--dir", "folder", type=click.Path(file_okay=False), help="Default: archive_dir.")
@click.option("--node", "nodes", multiple=True, help="Default: every node.")
@click.pass_context
def log_archive(ctx: click.Context, database_url: str | None, older_than_days: float | None, folder: str | None,
                nodes: tuple[str, ...]) -> None:
    """Move whole seals of old records into archive files that continue the chain (records stay until purged)."""
    from viss_bridge.msglog.archive import ArchiveError, archive_node

    from viss_bridge.cli.progress import progress_bar

    settings = settings_for(ctx)
    store = log_store(ctx, database_url, read_only=False)
    for node in nodes or store.nodes():
        try:
            with progress_bar(f"archiving node {node} (records)") as progress:
                path = archive_node(store, node, folder or settings.archive_dir,
                                    settings.archive_after_days if older_than_days is None else older_than_days,
                                    progress=progress)
        except ArchiveError as exc:
            raise click.ClickException(f"node {node}: {exc}") from None
        click.echo(f"node {node}: " + (f"archived to {path}" if path else "nothing old enough to archive"))


@log_group.command("purge")
@db_option
@click.option("--retention-days", type=float, help="Default: retention_days (0 or less: purge nothing).")
@click.option("--node", "nodes", multiple=True)
@click.pass_context
def log_purge(ctx: click.Context, database_url: str | None, retention_days: float | None, nodes: tuple[str, ...]) -> None:
    """Retention: delete from the database only archived records (archive file intact) older than the period."""
    from viss_bridge.msglog.archive import ArchiveError, purge_node

    days = settings_for(ctx).retention_days if retention_days is None else retention_days
    if days <= 0 and retention_days is None:
        click.echo("retention_days is not set: nothing is deleted")
        return
    store = log_store(ctx, database_url, read_only=False)
    for node in nodes or store.nodes():
        try:
            click.echo(f"node {node}: deleted {purge_node(store, node, days)} archived record(s)")
        except ArchiveError as exc:
            raise click.ClickException(f"node {node}: {exc}") from None


@log_group.command("verify-archive")
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@trust_option
@click.pass_context
def log_verify_archive(ctx: click.Context, files: tuple[str, ...], trust: tuple[str, ...]) -> None:
    """Verify archive files on their own; given several of one node in order, also that each continues the last."""
    from viss_bridge.msglog.archive import verify_archive

    store = trust_store(ctx, trust)
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


@evidence.command("renew")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help="The renewed .asice to write.")
@click.option("--tsa-url", help="RFC 3161 TSA (default: the configured tsa_url).")
@click.pass_context
def evidence_renew(ctx: click.Context, file: str, output: str, tsa_url: str | None) -> None:
    """Add an archive time-stamp (XAdES-A) to a container, before its time-stamps' TSA certificates expire."""
    from viss_bridge.msglog.evidence import EvidenceError, renew_container

    url = tsa_url or settings_for(ctx).tsa_url
    if not url:
        raise click.ClickException("no TSA: pass --tsa-url or configure tsa_url")
    try:
        data = renew_container(Path(file).read_bytes(), url)
    except EvidenceError as exc:
        raise click.ClickException(str(exc)) from None
    Path(output).write_bytes(data)
    click.echo(f"{output}: archive time-stamp added, {len(data)} bytes")


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
