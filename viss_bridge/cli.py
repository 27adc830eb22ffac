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
@click.option("--provider-port", default=8091, show_default=True,
              help="First port of the demo legacy providers (persons, addresses); 0: do not start them.")
@click.pass_context
def demo(ctx: click.Context, data_dir: str, size: int, host: str, port: int, workers: int, reset: bool,
         prepare_only: bool, database_url: str | None, provider_port: int) -> None:
    """Serve the bridge on loopback with the demo registers on an embedded SQLite."""
    from viss_bridge.demo.seed import DEMO_CLIENTS, example_person_code, prepare_demo

    paths, counts = prepare_demo(data_dir, size=size, reset=reset, database_url=database_url)
    click.echo(f"demo data in {paths.data_dir}: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    # The demo is a development node: it believes the client named in the message (no certificates).
    settings = _settings(ctx, database_url=paths.database_url, catalog_dir=str(paths.catalog_dir),
                         host=host, port=port, workers=workers, trust_client_header=True)
    if prepare_only:
        return
    from viss_bridge.demo.viss_client import prepare_viss

    viss_settings = prepare_viss(paths.data_dir, [(c.client_id, "AU:" + c.client_id.split("/")[2]) for c in DEMO_CLIENTS])
    settings = _settings(ctx, database_url=paths.database_url, catalog_dir=str(paths.catalog_dir),
                         host=host, port=port, workers=workers, trust_client_header=True, **viss_settings)
    settings, tsa_process = _demo_message_log(settings, paths.data_dir)
    person = example_person_code(data_dir, database_url) or "010190-10009"
    client = DEMO_CLIENTS[0].client_id
    providers = None
    provider_lines: list[str] = []
    if provider_port:
        from viss_bridge.demo.providers_runner import start_demo_providers, wire_demo_providers

        providers = start_demo_providers(host, provider_port, size, paths.data_dir / "providers.log")
        wired = wire_demo_providers(paths.catalog_dir, paths.database_url, providers.addresses, [client])
        provider_lines = ["Demo legacy providers (generation-II registers, own WSDLs; control: GET/POST .../control):"]
        provider_lines += [f"  {name:<10} {url}   WSDL {url}?wsdl" for name, url in providers.addresses.items()]
        provider_lines += [f"  datasets from them: {', '.join(n for n in wired if ':' not in n)}"]
        provider_lines += [f"  {n}" for n in wired if ":" in n]
        provider_lines += ["  resync: viss-bridge sync --all   (VISS_BRIDGE_DATABASE_URL=" + paths.database_url
                           + " VISS_BRIDGE_CATALOG_DIR=" + str(paths.catalog_dir) + ")", ""]

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
            f"  access requests       {base}/access       WSDL {base}/access?wsdl   (docs/access.md)",
            f"  data tracker          {base}/xroad (findUsage...)  WSDL {base}/tracker?wsdl",
            f"  legacy contracts      {base}/legacy/fpr  {base}/legacy/var   WSDL: add ?wsdl (original WSDLs)",
            f"  VISS request service  {base}/viss        WSDL {base}/viss?wsdl   (SOAP 1.2, WS-Addressing, WS-Security)",
            f"    try: python -m viss_bridge.demo.viss_client --data-dir {paths.data_dir} --url {base}/viss "
            f"--key person_code={person}",
            "",
            "DEVELOPMENT MODE: trust_client_header = true -- the client named in the X-Road header is believed",
            "without a certificate. Never run a production node like this (see docs/access.md).",
            "",
            *provider_lines,
            "Example call (client " + client + " reads person " + person + "):",
            f"  curl -s -H 'Content-Type: text/xml; charset=utf-8' --data-binary @{request_file} {base}/xroad",
            "",
            f"Message log: sealed by {settings.signing_cert}, time-stamped by the development TSA at {settings.tsa_url}",
            f"  viss-bridge log find --message-id demo-1          (with VISS_BRIDGE_DATABASE_URL={settings.database_url})",
            f"  viss-bridge log verify --trust {settings.trust_anchors}",
            f"  VISS_BRIDGE_SIGNING_CERT={settings.signing_cert} VISS_BRIDGE_SIGNING_KEY={settings.signing_key} \\",
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
        if providers is not None:
            providers.stop()
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

    from viss_bridge.facade.logging_sink import MessageLogAuditSink
    from viss_bridge.msglog import MessageLog

    settings = _settings(ctx)
    registry = AccessRegistry(make_engine(settings.database_url))
    registry.create_schema()
    # An operator's access-control steps go on the node's signed chain too, as the bridge's own do.
    registry.audit.committed_sinks.append(MessageLogAuditSink(MessageLog.from_settings(settings)))
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
    rows = [(c.client_id, ", ".join(sorted(registry.allowed_datasets(c.client_id))) or "-",
             str(len(registry.certificates(c.client_id))), c.name)
            for c in registry.clients()]
    _table(("client", "datasets", "certs", "name"), rows)


@clients.command("add")
@click.argument("client_id")
@click.option("--name", default="")
@click.option("--cert", "certs", multiple=True, type=click.Path(exists=True, dir_okay=False),
              help="PEM certificate the connection authenticates with (repeatable).")
@click.pass_context
def clients_add(ctx: click.Context, client_id: str, name: str, certs: tuple[str, ...]) -> None:
    """Register a connection (a consumer's client identifier), optionally with its certificate(s)."""
    registry = _registry(ctx)
    client_id = _client_id(client_id)
    registry.add_client(client_id, name)
    click.echo(f"client {client_id} registered")
    for path in certs:
        _add_cert(registry, client_id, path)


def _add_cert(registry: Any, client_id: str, path: str) -> None:
    from viss_bridge.access.identity import CertificateError, CertificateInfo
    from viss_bridge.access.registry import PermissionProblem

    try:
        info = CertificateInfo.from_pem(Path(path).read_bytes())
        registry.add_certificate(client_id, info, actor=_actor())
    except (CertificateError, PermissionProblem) as exc:
        raise click.ClickException(f"{path}: {exc}") from None
    click.echo(f"certificate {info.fingerprint} ({info.subject}, valid to {info.not_after:%Y-%m-%d}) "
               f"authenticates {client_id}")


def _operator() -> "Any":
    """The local operator as an actor with operator rights: only this in-process call makes one
    (a name such as ``cli:root`` a caller sends or registers never does)."""
    from viss_bridge.access.requests import Actor

    return Actor(_actor(), operator=True)


def _actor() -> str:
    import getpass

    try:
        return f"cli:{getpass.getuser()}"
    except Exception:  # noqa: BLE001 - no user name in some containers
        return "cli:operator"


@clients.command("show")
@click.argument("client_id")
@click.pass_context
def clients_show(ctx: click.Context, client_id: str) -> None:
    """One connection: its certificates and permissions."""
    registry = _registry(ctx)
    client_id = _client_id(client_id)
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
    _add_cert(_registry(ctx), _client_id(client_id), pem)


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
    from viss_bridge.cli_access import end_of

    registry = _registry(ctx)
    client_id = _client_id(client_id)
    if registry.client(client_id) is None:
        raise click.ClickException(f"client {client_id} is not registered; run 'viss-bridge clients add' first")
    try:
        permission = registry.grant(
            client_id, dataset, purpose=purpose or GRANT_PURPOSE, legal_basis=legal_basis or GRANT_LEGAL_BASIS,
            legal_obligation=legal_obligation,
            fields=[f.strip() for f in fields.split(",") if f.strip()] if fields else None,
            valid_to=end_of(valid_to), quota=quota, actor=_actor())
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
    numbers = _registry(ctx).revoke(_client_id(client_id), dataset, actor=_actor(), reason=reason)
    click.echo(f"{client_id} may no longer call {dataset}" + (f" (revoked {', '.join(numbers)})" if numbers else ""))


from viss_bridge.cli_access import register as _register_access  # noqa: E402  (access, tracker commands)

_register_access(main)


# -- migration ------------------------------------------------------------------

@main.group()
def migrate() -> None:
    """Move legacy services onto datasets: inventory, scaffold, shadow, status, report."""


@migrate.command("inventory")
@click.argument("wsdls", nargs=-1, required=True)
@click.option("--format", "fmt", type=click.Choice(["table", "json", "csv"]), default="table", show_default=True)
@click.option("--fields", "with_fields", is_flag=True, help="In the table, list every field under its operation.")
@click.option("--allow-network", is_flag=True, help="Fetch URLs and remote imports (never done otherwise).")
@click.option("--schema-dir", "schema_dirs", multiple=True, type=click.Path(file_okay=False, exists=True),
              help="Folder with local copies of remote schemas (matched by file name). Repeatable.")
@click.option("--record", is_flag=True, help="Record the services in the migration database (state: inventoried).")
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Write to this file instead of the terminal.")
@click.pass_context
def migrate_inventory(ctx: click.Context, wsdls: tuple[str, ...], fmt: str, with_fields: bool, allow_network: bool,
                      schema_dirs: tuple[str, ...], record: bool, output: str | None) -> None:
    """Services, ports, operations and flattened fields of WSDL files, folders or URLs.

    A WSDL that cannot be read is reported (file and cause) and the others continue;
    the exit status is 1 when any failed.
    """
    from viss_bridge.migration.inventory import render_csv, render_json, render_table, run_inventory

    result = run_inventory(wsdls, allow_network=allow_network, schema_dirs=schema_dirs)
    text = {"json": render_json, "csv": render_csv}.get(fmt, lambda r: render_table(r, with_fields))(result)
    if output:
        Path(output).write_text(text if text.endswith("\n") else text + "\n", encoding="utf-8")
        click.echo(f"wrote {output}")
    else:
        click.echo(text.rstrip("\n"))
    if record and result.inventories:
        tracker = _tracker(ctx)
        for inventory in result.inventories:
            for name in tracker.record_inventory(inventory):
                click.echo(f"recorded {name}", err=True)
    for error in result.errors:
        click.echo(f"error: {error}", err=True)
    if result.errors:
        raise SystemExit(1)


@migrate.command("scaffold")
@click.argument("wsdl")
@click.option("-o", "--output", "out", required=True, type=click.Path(file_okay=False),
              help="Catalog folder to write the drafts to (manifests here, contract mapping in legacy/).")
@click.option("--name", help="The /legacy/<name> of the contract (default: from the service, e.g. pmlp-fizpersonas-v1-0).")
@click.option("--prefix", help="Prefix of the dataset names (default: the institution, e.g. pmlp).")
@click.option("--owner", help="Data owner's X-Road member/subsystem (default: a placeholder marked TODO).")
@click.option("--access", type=click.Choice(["open", "public", "restricted", "private"]), default="restricted",
              show_default=True)
@click.option("--consumer", help="Identity old callers get for permission checks (written into the mapping).")
@click.option("--consumer-network", "consumer_networks", multiple=True,
              help="A network (CIDR) whose unauthenticated old callers stand for --consumer (repeatable).")
@click.option("--provider-url", help="Address of the legacy provider: the drafts get a legacy_soap source.")
@click.option("--mode", type=click.Choice(["live", "replicated"]), default="live", show_default=True,
              help="With --provider-url: answer live, or replicate with `viss-bridge sync`.")
@click.option("--allow-network", is_flag=True)
@click.option("--schema-dir", "schema_dirs", multiple=True, type=click.Path(file_okay=False, exists=True))
@click.option("--force", is_flag=True, help="Overwrite existing drafts.")
@click.option("--record", is_flag=True, help="Record the service in the migration database.")
@click.pass_context
def migrate_scaffold(ctx: click.Context, wsdl: str, out: str, name: str | None, prefix: str | None, owner: str | None,
                     access: str, consumer: str | None, consumer_networks: tuple[str, ...], provider_url: str | None,
                     mode: str, allow_network: bool, schema_dirs: tuple[str, ...], force: bool, record: bool) -> None:
    """Draft dataset manifests and a /legacy contract mapping from a WSDL, marked TODO(decide) where a person decides."""
    from viss_bridge.migration.scaffold import ScaffoldError, scaffold
    from viss_bridge.migration.wsdl import WsdlError, read_wsdl

    try:
        inventory = read_wsdl(wsdl, allow_network=allow_network, schema_dirs=schema_dirs)
        results = scaffold(inventory, out, name=name, prefix=prefix, owner=owner, access=access, consumer=consumer,
                           provider_url=provider_url, mode=mode, force=force, consumer_networks=consumer_networks)
    except (WsdlError, ScaffoldError) as exc:
        raise click.ClickException(str(exc)) from None
    for result in results:
        click.echo(f"{result.service}: contract /legacy/{result.contract}, dataset(s) {', '.join(result.datasets)}")
        for file in result.files:
            click.echo(f"  wrote {file}")
        for op, served in result.changes:
            click.echo(f"  {op}: change feed, " + ("mapped as a 'changes' operation of the same dataset"
                                                  if served else "not mapped (its records match no lookup)"))
        for skipped in result.skipped_operations:
            click.echo(f"  not mapped: {skipped}")
        click.echo(f"  {result.todo_count} TODO(decide) mark(s) to settle; check with: viss-bridge catalog validate {out}")
    if record:
        tracker = _tracker(ctx)
        tracker.record_inventory(inventory)


@migrate.command("shadow")
@click.option("--service", help="The tracked legacy service (as in `migrate status`), e.g. PMLP/FizPersonas/v1-0.")
@click.option("--legacy-url", help="The legacy provider's SOAP endpoint.")
@click.option("--bridge-url", help="The bridge's endpoint for the same contract (/legacy/<name>).")
@click.option("--requests", "requests_dir", type=click.Path(file_okay=False, exists=True),
              help="Folder of saved SOAP request files (*.xml), replayed in file-name order.")
@click.option("--from-log", "from_log", is_flag=True,
              help="Replay requests recorded in the message log instead (see --log-service, --since, --until).")
@click.option("--log-service", help="With --from-log: the log's service (prefix), e.g. legacy/fpr "
                                    "(default: legacy/<name> from a /legacy/<name> bridge URL).")
@click.option("--log-leg", type=click.Choice(["consumer", "provider"]), default="consumer", show_default=True,
              help="With --from-log: requests consumers sent to the bridge, or the bridge to legacy providers.")
@click.option("--since", help="With --from-log: only requests logged at or after this ISO UTC time.")
@click.option("--until", help="With --from-log: only requests logged at or before this ISO UTC time.")
@click.option("--wsdl", help="The service's WSDL: values are compared by their XSD types and SOAPAction is set.")
@click.option("--unordered", multiple=True, help="Path of a repeated element whose order does not matter, e.g. "
                                                 "Person/Address. Repeatable; * matches any name.")
@click.option("--ignore", multiple=True, help="Path to leave out of the comparison. Repeatable.")
@click.option("--plan", "plan_file", type=click.Path(dir_okay=False, exists=True),
              help="Compare several services as a YAML plan says (instead of the options above; see docs).")
@click.option("--rate", type=float, help="Requests per second at most (token bucket).  [default: 5]")
@click.option("--burst", type=int, help="Requests at once at most after an idle period.  [default: 1]")
@click.option("--timeout", type=float, help="Seconds to wait for each answer.  [default: 10]")
@click.option("--limit", type=int, help="Replay at most this many requests (per service).")
@click.option("--record", is_flag=True, help="Store the run and its parity in the migration database.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Also write the full JSON report here.")
@click.option("--fail-under", type=float, help="Exit with status 1 when parity (percent) is below this "
                                               "(for any service).")
@click.pass_context
def migrate_shadow(ctx: click.Context, service: str | None, legacy_url: str | None, bridge_url: str | None,
                   requests_dir: str | None, from_log: bool, log_service: str | None, log_leg: str,
                   since: str | None, until: str | None, wsdl: str | None, unordered: tuple[str, ...],
                   ignore: tuple[str, ...], plan_file: str | None, rate: float | None, burst: int | None,
                   timeout: float | None, limit: int | None, record: bool, fmt: str, output: str | None,
                   fail_under: float | None) -> None:
    """Replay saved requests against the legacy provider and the bridge; report parity and every differing field."""
    import json

    from viss_bridge.migration.plan import FromLog, PlanError, PlannedService, ShadowPlan, load_plan

    if plan_file:
        if any((service, legacy_url, bridge_url, requests_dir, from_log, wsdl, unordered, ignore)):
            raise click.UsageError("--plan replaces --service, --legacy-url, --bridge-url, --requests, --from-log, "
                                   "--wsdl, --unordered and --ignore")
        try:
            plan, base = load_plan(plan_file)
        except PlanError as exc:
            raise click.ClickException(str(exc)) from None
    else:
        missing = [name for name, value in (("--service", service), ("--legacy-url", legacy_url),
                                            ("--bridge-url", bridge_url)) if not value]
        if missing:
            raise click.UsageError(f"missing {', '.join(missing)} (or give --plan FILE)")
        if bool(requests_dir) == from_log:
            raise click.UsageError("give either --requests FOLDER or --from-log")
        try:
            planned = PlannedService(
                service=service, legacy_url=legacy_url, bridge_url=bridge_url, wsdl=wsdl,  # type: ignore[arg-type]
                requests=str(Path(requests_dir).resolve()) if requests_dir else None,
                from_log=FromLog(service=log_service, leg=log_leg, since=since, until=until) if from_log else None,
                unordered=unordered, ignore=ignore)
        except ValueError as exc:
            raise click.UsageError(str(exc)) from None
        plan, base = ShadowPlan(services=(planned,)), Path.cwd()
    tracker = _tracker(ctx) if record else None
    if tracker is not None:
        unknown = [s.service for s in plan.services if tracker.get(s.service) is None]
        if unknown:
            raise click.ClickException(f"not tracked: {', '.join(unknown)}; run 'viss-bridge migrate inventory WSDL "
                                       "--record' first (or leave out --record)")
    reports = []
    below = False
    for planned in plan.services:
        report = _shadow_one(ctx, planned, base, rate=rate or planned.rate or plan.rate,
                             burst=burst or planned.burst or plan.burst, timeout=timeout or plan.timeout,
                             limit=limit or planned.limit)
        reports.append(report)
        if fmt == "text":
            click.echo(report.render_text())
        if tracker is not None:
            state = tracker.record_shadow(planned.service, report.total, report.count("equal"),
                                          report.count("different"), report.count("error"),
                                          differing=report.differing_fields())
            click.echo(f"recorded: {planned.service} is {state.state.replace('_', ' ')}, parity {state.parity:.1f}%",
                       err=True)
        if fail_under is not None and report.parity < fail_under:
            below = True
    data = reports[0].to_json() if len(reports) == 1 and not plan_file else \
        {"services": [r.to_json() for r in reports],
         "summary": [{"service": r.service, "requests": r.total, "parity": r.parity} for r in reports]}
    if fmt == "json":
        click.echo(json.dumps(data, indent=2, ensure_ascii=False))
    elif len(reports) > 1:
        _table(("service", "requests", "equal", "different", "errors", "parity"),
               [(r.service, str(r.total), str(r.count("equal")), str(r.count("different")), str(r.count("error")),
                 f"{r.parity:.1f}%") for r in reports])
    if output:
        Path(output).write_text(json.dumps(data, indent=2, ensure_ascii=False), encoding="utf-8")
    if below:
        raise SystemExit(1)


def _shadow_one(ctx: click.Context, planned: Any, base: Path, *, rate: float, burst: int, timeout: float,
                limit: int | None) -> Any:
    """One service of a shadow run: its requests, its comparison options, its own token bucket."""
    from viss_bridge.migration.compare import CompareOptions, types_from_inventory
    from viss_bridge.migration.shadow import (ShadowTarget, folder_requests, log_requests, replay,
                                              soap_actions_from_inventory)
    from viss_bridge.migration.wsdl import WsdlError, read_wsdl

    options = CompareOptions(unordered=planned.unordered, ignore=planned.ignore)
    actions: dict[str, str] = {}
    if planned.wsdl:
        try:
            inventory = read_wsdl(str(base / planned.wsdl))
        except WsdlError as exc:
            raise click.ClickException(str(exc)) from None
        options.types = types_from_inventory(inventory)
        actions = soap_actions_from_inventory(inventory)
    if planned.from_log is not None:
        settings = _settings(ctx)
        log_url = settings.message_log_url
        log_service = planned.from_log.service
        if not log_service and "/legacy/" in planned.bridge_url:
            log_service = "legacy/" + planned.bridge_url.split("/legacy/", 1)[1].strip("/").split("?")[0]
        try:
            saved = log_requests(log_url, leg=planned.from_log.leg, service=log_service, since=planned.from_log.since,
                                 until=planned.from_log.until, limit=limit or 1000)
        except ImportError:
            raise click.ClickException("this installation has no message log (viss_bridge.msglog)") from None
        if not saved:
            raise click.ClickException(f"{planned.service}: the message log has no {planned.from_log.leg} requests "
                                       f"for service {log_service or '(any)'} in that time range")
    else:
        folder = base / planned.requests
        try:
            saved = folder_requests(folder)
        except FileNotFoundError as exc:
            raise click.ClickException(str(exc)) from None
        if not saved:
            raise click.ClickException(f"{folder}: no *.xml request files")
    target = ShadowTarget(planned.service, planned.legacy_url, planned.bridge_url, options, actions)
    return replay(target, saved, rate=rate, burst=burst, timeout=timeout, limit=limit)


@migrate.command("status")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.pass_context
def migrate_status(ctx: click.Context, fmt: str) -> None:
    """Every tracked legacy service: state, parity of the latest shadow run, datasets."""
    import json

    from viss_bridge.migration.tracking import STATE_LABELS, summary

    states = _tracker(ctx).services()
    figures = summary(states)
    if fmt == "json":
        differences = _tracker(ctx).latest_differences()
        services = [dict(s.to_json(), differing_fields=differences.get(s.name, {})) for s in states]
        click.echo(json.dumps({"services": services, "summary": figures}, indent=2, ensure_ascii=False))
        return
    rows = [(s.name, STATE_LABELS.get(s.state, s.state), "-" if s.parity is None else f"{s.parity:.1f}%",
             str(s.shadow_requests), str(s.complexity), ", ".join(s.datasets) or "-",
             s.updated_at.strftime("%Y-%m-%d %H:%M")) for s in states]
    _table(("service", "state", "parity", "shadowed", "complexity", "datasets", "updated"), rows)
    counts = ", ".join(f"{STATE_LABELS[k]} {v}" for k, v in figures["counts"].items())
    click.echo(f"{figures['total']} service(s): {counts}; moved {figures['moved_percent']:.1f}%")


@migrate.command("history")
@click.argument("service")
@click.pass_context
def migrate_history(ctx: click.Context, service: str) -> None:
    """One service's state changes (who, when, why) and shadow runs."""
    from viss_bridge.migration.tracking import STATE_LABELS

    tracker = _tracker(ctx)
    state = tracker.get(service)
    if state is None:
        raise click.ClickException(f"no service '{service}' is tracked")
    click.echo(f"{state.name} ({state.title}): {STATE_LABELS[state.state]}; WSDL {state.wsdl or '-'}; "
               f"datasets {', '.join(state.datasets) or '-'}")
    _table(("time", "from", "to", "by", "note"),
           [(e.at.strftime("%Y-%m-%d %H:%M:%S"), STATE_LABELS.get(e.from_state or "", "-"), STATE_LABELS[e.to_state],
             e.actor, e.note) for e in tracker.events(service)])
    runs = tracker.shadow_history(service)
    if runs:
        click.echo("shadow runs:")
        _table(("time", "requests", "equal", "different", "errors", "parity", "fields differing (requests)"),
               [(r["at"].strftime("%Y-%m-%d %H:%M:%S"), str(r["requests"]), str(r["equal"]), str(r["different"]),
                 str(r["errors"]), f"{r['parity']:.1f}%",
                 ", ".join(f"{k} ({v})" for k, v in r["differing"].items()) or "-") for r in runs])


@migrate.command("mark")
@click.argument("service")
@click.argument("state", type=click.Choice(["inventoried", "mapped", "shadowing", "switched_over", "switched-over",
                                            "retired"]))
@click.option("--dataset", "datasets", multiple=True, help="Dataset(s) now answering the service. Repeatable.")
@click.option("--note", default="", help="Why (kept in the service's history).")
@click.option("--min-parity", default=100.0, show_default=True,
              help="Switching over needs at least this parity (percent) in the latest shadow run.")
@click.option("--force", is_flag=True, help="Allow a move outside the usual order or below the parity threshold.")
@click.pass_context
def migrate_mark(ctx: click.Context, service: str, state: str, datasets: tuple[str, ...], note: str,
                 min_parity: float, force: bool) -> None:
    """Move a legacy service to another migration state (recorded with who, when and why)."""
    from viss_bridge.migration.tracking import STATE_LABELS, TransitionRefused

    try:
        result = _tracker(ctx).transition(service, state.replace("-", "_"), note=note, force=force,
                                          min_parity=min_parity, datasets=datasets or None)
    except TransitionRefused as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"{result.name}: {STATE_LABELS[result.state]}")


@migrate.command("report")
@click.option("-o", "--output", default="migration-report.html", show_default=True, type=click.Path(dir_okay=False),
              help="The HTML report (self-contained: open it from a file).")
@click.option("--markdown", type=click.Path(dir_okay=False), help="Also write Markdown for a ticket to this file "
                                                                  "('-' prints it).")
@click.option("--title", default="Legacy service migration", show_default=True)
@click.pass_context
def migrate_report(ctx: click.Context, output: str, markdown: str | None, title: str) -> None:
    """Progress and parity report: HTML with inline SVG charts, and Markdown."""
    from viss_bridge.migration.report import render_html, render_markdown

    tracker = _tracker(ctx)
    states, events, differences = tracker.services(), tracker.events(), tracker.latest_differences()
    Path(output).write_text(render_html(states, events, title=title, differences=differences), encoding="utf-8")
    click.echo(f"wrote {output} ({len(states)} service(s))")
    if markdown == "-":
        click.echo(render_markdown(states, differences=differences))
    elif markdown:
        Path(markdown).write_text(render_markdown(states, differences=differences), encoding="utf-8")
        click.echo(f"wrote {markdown}")


def _tracker(ctx: click.Context) -> Any:
    from viss_bridge.db import make_engine
    from viss_bridge.migration.tracking import MigrationTracker

    tracker = MigrationTracker(make_engine(_settings(ctx).database_url))
    tracker.create_schema()
    return tracker

# -- legacy providers and replication (issue 3) ----------------------------------

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
    from viss_bridge.upstream.sync import SyncJob, SyncState, replicated_datasets

    settings = _settings(ctx)
    if status:
        from viss_bridge.db import make_engine

        sync_state = SyncState(make_engine(settings.database_url))
        sync_state.create_schema()
        rows = [(c.dataset, "yes" if c.full_done else "no", c.changed_since.isoformat(), c.after_key or "-",
                 str(c.pages), str(c.records), moved.isoformat(timespec="seconds"), c.last_error or "-")
                for c, moved in sync_state.all() if not datasets or c.dataset in datasets]
        _table(("dataset", "full done", "changed since", "after key", "pages", "records", "last sync", "last error"), rows)
        return
    interval = settings.sync_interval if every is None else every
    state = None
    pool = ProviderPool()
    failed = False
    while True:
        try:
            loaded, store = _open(ctx, catalog_dir)
        except click.ClickException as exc:
            if not interval:
                raise
            click.echo(f"sync: {exc.message}; trying again in {interval} s", err=True)
            _time.sleep(interval)
            continue
        if state is None:
            state = SyncState(store.engine)
            state.create_schema()
        chosen = replicated_datasets(loaded) if all_ else []
        for name in datasets:
            dataset = loaded.get(name)
            if dataset is None:
                raise click.ClickException(f"no dataset '{name}' in the catalog")
            chosen.append(dataset)
        if not chosen and not (all_ and interval):
            raise click.ClickException("name a dataset, or use --all for every replicated legacy dataset")
        failed = False
        for dataset in chosen:
            if full:
                state.reset(dataset.dataset)
            try:
                job = SyncJob(dataset, store, pool, state)
            except ValueError as exc:
                raise click.ClickException(str(exc)) from None
            result = job.run(max_pages=max_pages)
            cursor = result.cursor
            where = f"cursor {cursor.changed_since.isoformat()} / {cursor.after_key or '-'}" if cursor else ""
            for note in result.notes:
                click.echo(f"{dataset.dataset}: {note}")
            if result.error is not None:
                failed = True
                click.echo(f"{dataset.dataset}: stopped after {result.pages} page(s), {result.records} record(s): "
                           f"{result.error.cause}: {result.error.message}; {where}; run again to resume", err=True)
            else:
                state_text = "up to date" if result.complete else "more pages remain"
                click.echo(f"{dataset.dataset}: {'full' if result.full else 'incremental'} sync, {result.pages} page(s), "
                           f"{result.records} record(s) in {result.seconds} s; {state_text}; {store.count(dataset)} in store; {where}")
        full = False
        if not interval:
            break
        _time.sleep(interval)
    if failed:
        raise SystemExit(1)


@main.command()
@click.argument("registers", nargs=-1)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8091, show_default=True, help="Port of the first register; the next ones follow.")
@click.option("--size", default=200, show_default=True, help="Synthetic world size (as for `demo`).")
def provider(registers: tuple[str, ...], host: str, port: int, size: int) -> None:
    """Run demo legacy providers (persons, addresses): generation-II registers with their own WSDLs."""
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
    return LogStore(database_url or settings.message_log_url, read_only=read_only)


def _trust(ctx: click.Context, trust: tuple[str, ...]) -> Any:
    from viss_bridge.security.pki import CertificateError, TrustStore

    paths = list(trust) or ([_settings(ctx).trust_anchors] if _settings(ctx).trust_anchors else [])
    if not paths:
        raise click.ClickException("say which CAs to trust: --trust CA.pem (or set trust_anchors)")
    try:
        return TrustStore.from_files(*paths)
    except (OSError, ValueError, CertificateError) as exc:
        raise click.ClickException(f"cannot read the trust anchors: {exc}") from None


_db_option = click.option("--database-url", help="Log database (default: log_database_url, else beside/in database_url).")
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
        bar = click.progressbar(length=1, label="records", file=sys.stderr) if sys.stderr.isatty() and not as_json else None

        def progress(done: int, total: int) -> None:  # one bar, restarted for each node
            assert bar is not None
            if bar.pos >= bar.length:
                bar.pos, bar.finished = 0, False
            bar.length = total
            bar.update(done)
        try:
            report = verify_log(store, _trust(ctx, trust), nodes=list(nodes) or None,
                                unsealed_grace=None if unsealed_grace < 0 else unsealed_grace,
                                require_timestamps=require_timestamps, known_seals=kept,
                                progress=progress if bar else None)
        finally:
            if bar:
                bar.render_finish()
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
    settings = _settings(ctx)
    if not (settings.signing_cert and settings.signing_key):
        raise click.ClickException("no signing_cert/signing_key configured: the container is signed with the node key")
    key = SigningKey.from_files(settings.signing_cert, settings.signing_key)
    store = _log_store(ctx, database_url)
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


@evidence.command("renew")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help="The renewed .asice to write.")
@click.option("--tsa-url", help="RFC 3161 TSA (default: the configured tsa_url).")
@click.pass_context
def evidence_renew(ctx: click.Context, file: str, output: str, tsa_url: str | None) -> None:
    """Add an archive time-stamp (XAdES-A) to a container, before its time-stamps' TSA certificates expire."""
    from viss_bridge.msglog.evidence import EvidenceError, renew_container

    url = tsa_url or _settings(ctx).tsa_url
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


if __name__ == "__main__":  # pragma: no cover
    main()
