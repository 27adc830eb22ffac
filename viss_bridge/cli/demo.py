"""``viss-bridge demo``: the bridge on an embedded SQLite with demo registers and demo providers."""

from __future__ import annotations

import sys

import click

from viss_bridge.cli.common import (settings_for)
from viss_bridge.cli.root import main


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
              help="First port of the demo legacy providers (persons, addresses, vehicles); 0: do not start them.")
@click.option("--platform-port", default=8081, show_default=True,
              help="Port of a second node playing the platform (its /rest face answers platform_company); 0: none.")
@click.pass_context
def demo(ctx: click.Context, data_dir: str, size: int, host: str, port: int, workers: int, reset: bool,
         prepare_only: bool, database_url: str | None, provider_port: int, platform_port: int) -> None:
    """Serve the bridge on loopback with the demo registers on an embedded SQLite."""
    from viss_bridge.demo.seed import DEMO_CLIENTS, example_person_code, prepare_demo

    from viss_bridge.cli.progress import progress_bar

    with progress_bar("preparing demo registers (records)") as progress:
        paths, counts = prepare_demo(data_dir, size=size, reset=reset, database_url=database_url, progress=progress)
    click.echo(f"demo data in {paths.data_dir}: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    # The demo is a development node: it believes the client named in the message (no certificates).
    settings = settings_for(ctx, database_url=paths.database_url, catalog_dir=str(paths.catalog_dir),
                         host=host, port=port, workers=workers, trust_client_header=True)
    if prepare_only:
        return
    from viss_bridge.demo.viss_client import prepare_viss

    viss_settings = prepare_viss(paths.data_dir, [(c.client_id, "AU:" + c.client_id.split("/")[2]) for c in DEMO_CLIENTS])
    settings = settings_for(ctx, database_url=paths.database_url, catalog_dir=str(paths.catalog_dir),
                         host=host, port=port, workers=workers, trust_client_header=True, **viss_settings)
    from viss_bridge.demo.node import demo_message_log

    settings, tsa_process = demo_message_log(settings, paths.data_dir)
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

    platform_node = None
    platform_lines: list[str] = []
    if platform_port:  # a second node as the generation-III platform; two datasets here answered through it
        from viss_bridge.config import replace
        from viss_bridge.demo.platform_node import LIVE, REPLICA, start_platform, wire_platform

        inherit = {f"VISS_BRIDGE_{k.upper()}": str(getattr(settings, k)) for k in
                   ("signing_cert", "signing_key", "trust_anchors", "tsa_url") if getattr(settings, k)}
        settings = replace(settings, platform_client=settings.platform_client or settings.provider)
        try:
            platform_node = start_platform(paths.data_dir, paths.database_url, settings.platform_client, host,
                                           platform_port, inherit, reset=reset)
            notes, company = wire_platform(paths.catalog_dir, paths.database_url, platform_node, [client], settings)
        except Exception:
            if providers is not None:
                providers.stop()
            if platform_node is not None:
                platform_node.stop()
            raise
        platform_lines = [
            f"The platform (a second node, DAGR-style REST): {platform_node.rest_url}/service_list   "
            f"(data {platform_node.data_dir}, log {platform_node.log_file})",
            f"  answered through it here: {LIVE} (live), {REPLICA} (replicated) on every face; "
            f"permission {platform_node.permission} of connection {settings.platform_client}",
            *(f"  {note}" for note in notes),
            f"  try: curl -s -H 'X-Road-Client: {client}' {settings.base_url}/rest/{LIVE}/{company or '40003000001'}",
            f"  resync: viss-bridge sync {REPLICA}   (VISS_BRIDGE_DATABASE_URL={paths.database_url} "
            f"VISS_BRIDGE_CATALOG_DIR={paths.catalog_dir} VISS_BRIDGE_PLATFORM_CLIENT={settings.platform_client})",
            ""]

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
            f"  REST (DAGR style)     {base}/rest/service_list   OpenAPI {base}/rest/openapi.json   (docs/rest.md)",
            f"  X-Road REST (PR-REST) {base}/r1/{dataset.owner if dataset is not None else 'LV/GOV/90000100015/FPR'}"
            f"/listMethods   (send X-Road-Client: {client}; docs/rest.md)",
            f"  DCAT-AP catalogue     {base}/dcat   (Turtle; JSON-LD with Accept: application/ld+json)",
            f"  listClients           {base}/listClients",
            f"  health / metrics      {base}/health  {base}/metrics",
            f"  catalog folder        {paths.catalog_dir}  (add a manifest: it is published within seconds)",
            f"  access requests       {base}/access       WSDL {base}/access?wsdl   (docs/access.md)",
            f"  data tracker          {base}/xroad (findUsage...)  WSDL {base}/tracker?wsdl",
            f"  legacy contracts      {base}/legacy/fpr  {base}/legacy/var  {base}/legacy/csdd   WSDL: add ?wsdl (original WSDLs)",
            f"  VISS request service  {base}/viss        WSDL {base}/viss?wsdl   (SOAP 1.2, WS-Addressing, WS-Security)",
            f"    try: python -m viss_bridge.demo.viss_client --data-dir {paths.data_dir} --url {base}/viss "
            f"--key person_code={person}",
            "",
            "DEVELOPMENT MODE: trust_client_header = true -- the client named in the X-Road header is believed",
            "without a certificate. Never run a production node like this (see docs/access.md).",
            "",
            *provider_lines,
            *platform_lines,
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
        lines += console_lines(base)
        click.echo("\n".join(lines))
        sys.stdout.flush()

    def console_lines(base: str) -> list[str]:
        from viss_bridge.catalog.catalog import load_catalog
        from viss_bridge.console.demo import demo_login_token
        from viss_bridge.db import make_engine

        engine = make_engine(settings.database_url)
        try:
            token = demo_login_token(engine, [d.owner for d in load_catalog(paths.catalog_dir)])
        finally:
            engine.dispose()
        return ["Web console (every role; docs/console.md): this one-time login link works once, for 30 minutes:",
                f"  {base}/console/link?token={token}", ""]

    from viss_bridge.serving import serve

    try:
        serve(settings, on_ready=announce)
    finally:
        if providers is not None:
            providers.stop()
        if platform_node is not None:
            platform_node.stop()
        if tsa_process is not None:
            tsa_process.terminate()
