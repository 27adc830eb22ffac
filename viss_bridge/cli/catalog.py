"""``viss-bridge catalog ...``: validate, list, show, load and publish (DCAT) the dataset catalog."""

from __future__ import annotations


import click

from viss_bridge.cli.common import (settings_for, print_table, open_catalog, record_counts, catalog_dir_of)
from viss_bridge.cli.root import main


@main.group()
def catalog() -> None:
    """Inspect, validate and load datasets."""


@catalog.command("validate")
@click.argument("folder", required=False, type=click.Path())
@click.pass_context
def catalog_validate(ctx: click.Context, folder: str | None) -> None:
    """Check every manifest; print each problem with file, line and field."""
    from viss_bridge.catalog.catalog import CatalogError, load_catalog

    folder = catalog_dir_of(ctx, folder)
    try:
        loaded = load_catalog(folder)
    except CatalogError as exc:
        for error in exc.errors:
            click.echo(str(error), err=True)
        raise SystemExit(1) from None
    click.echo(f"{folder}: {len(loaded)} dataset(s) valid: {', '.join(d.dataset for d in loaded)}")
    # the legacy contract mappings beside it, against their WSDLs and these datasets
    from pathlib import Path

    from viss_bridge.facade.legacy_contract import validate_contracts

    contracts_dir = Path(folder) / "legacy"
    valid, errors = validate_contracts(contracts_dir, loaded)
    for error in errors:
        click.echo(str(error), err=True)
    if valid or errors:
        click.echo(f"{contracts_dir}: {len(valid)} legacy contract(s) valid: {', '.join(valid)}")
    if errors:
        raise SystemExit(1)


@catalog.command("list")
@click.option("--catalog-dir", type=click.Path())
@click.pass_context
def catalog_list(ctx: click.Context, catalog_dir: str | None) -> None:
    """Datasets with owner, access level and record count."""
    loaded, store = open_catalog(ctx, catalog_dir)
    counts = record_counts(store)
    rows = [(d.dataset, d.version, d.access.value, d.owner, str(counts.get(d.dataset, "?")), d.title.en) for d in loaded]
    print_table(("dataset", "version", "access", "owner", "records", "title"), rows)


@catalog.command("show")
@click.argument("name")
@click.option("--catalog-dir", type=click.Path())
@click.pass_context
def catalog_show(ctx: click.Context, name: str, catalog_dir: str | None) -> None:
    """One dataset's manifest as published, with its record count."""
    import yaml

    from viss_bridge.catalog.manifest import manifest_to_yaml_dict

    loaded, store = open_catalog(ctx, catalog_dir)
    dataset = loaded.get(name)
    if dataset is None:
        raise click.ClickException(f"no dataset '{name}' in {loaded.folders[0]}; known: {', '.join(loaded.datasets)}")
    click.echo(f"# {dataset.origin}")
    click.echo(yaml.safe_dump(manifest_to_yaml_dict(dataset), allow_unicode=True, sort_keys=False).rstrip())
    click.echo(f"# records: {record_counts(store).get(name, '?')}")


@catalog.command("load")
@click.argument("name")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--replace", "replace_all", is_flag=True, help="Replace the dataset's records instead of upserting.")
@click.option("--catalog-dir", type=click.Path())
@click.pass_context
def catalog_load(ctx: click.Context, name: str, file: str, replace_all: bool, catalog_dir: str | None) -> None:
    """Load records from a .jsonl, .json or .csv file (all rows are checked before any is written)."""
    from viss_bridge.catalog.loading import RecordFileError, read_records

    loaded, store = open_catalog(ctx, catalog_dir)
    dataset = loaded.get(name)
    if dataset is None:
        raise click.ClickException(f"no dataset '{name}' in the catalog")
    try:
        records = read_records(dataset, file)
    except RecordFileError as exc:
        raise click.ClickException(str(exc)) from None
    from viss_bridge.catalog.loading import reporting
    from viss_bridge.cli.progress import progress_bar

    with progress_bar(f"loading {name}", len(records)) as progress:
        rows = reporting(records, progress, len(records))
        written = store.replace_all(dataset, rows) if replace_all else store.upsert(dataset, rows)
    click.echo(f"{name}: {written} record(s) {'replaced' if replace_all else 'loaded'}; now {store.count(dataset)}")


@catalog.command("reindex")
@click.argument("names", nargs=-1)
@click.option("--all", "everything", is_flag=True, help="Rebuild every dataset's entries, changed or not.")
@click.option("--catalog-dir", type=click.Path())
@click.pass_context
def catalog_reindex(ctx: click.Context, names: tuple[str, ...], everything: bool, catalog_dir: str | None) -> None:
    """Rebuild search index entries: of NAMES, of every dataset (--all), or (default) of the datasets whose
    ``indexes:`` changed since their entries were built, as a server does when it publishes the catalog."""
    from viss_bridge.catalog.store import StoreUnavailable

    loaded, store = open_catalog(ctx, catalog_dir)
    unknown = [n for n in names if loaded.get(n) is None]
    if unknown:
        raise click.ClickException(f"no dataset '{unknown[0]}' in {loaded.folders[0]}")
    try:
        if names or everything:
            chosen = [loaded.get(n) for n in names] if names else list(loaded)
            for dataset in chosen:
                entries = store.reindex(dataset) or 0
                click.echo(f"{dataset.dataset}: {entries} index entries ({', '.join(dataset.indexes) or 'no indexes'})")
        else:
            rebuilt = store.ensure_indexes(loaded)
            click.echo(f"rebuilt: {', '.join(rebuilt)}" if rebuilt else "every dataset's index entries are current")
    except StoreUnavailable as exc:
        raise click.ClickException(str(exc)) from None


@catalog.command("dcat")
@click.option("--format", "fmt", type=click.Choice(["turtle", "json-ld"]), default="turtle", show_default=True)
@click.option("--base-url", help="Public address the endpoint URLs start with (default: the public_url setting).")
@click.option("--catalog-dir", type=click.Path())
@click.pass_context
def catalog_dcat(ctx: click.Context, fmt: str, base_url: str | None, catalog_dir: str | None) -> None:
    """The DCAT-AP 3.0 catalogue that GET /dcat serves, on stdout (refused manifests on stderr)."""
    from viss_bridge.catalog.catalog import CatalogError, load_catalog_keeping
    from viss_bridge.catalog.dcat import serialize
    from viss_bridge.facade.dcat_face import dcat_graph
    from viss_bridge.facade.legacy_contract import LegacyContracts

    settings = settings_for(ctx, **({"catalog_dir": catalog_dir} if catalog_dir else {}),
                         **({"public_url": base_url} if base_url else {}))
    try:
        loaded, errors = load_catalog_keeping(None, settings.catalog_dir)
    except CatalogError as exc:
        raise click.ClickException(str(exc)) from None
    for error in errors:
        click.echo(f"not listed: {error}", err=True)
    graph = dcat_graph(settings, loaded, LegacyContracts(settings.legacy_folder))
    click.echo(serialize(graph, fmt).decode("utf-8"), nl=False)


@catalog.command("import-platform")
@click.argument("url")
@click.option("--out", type=click.Path(file_okay=False), help="Folder for the drafts (default: the catalog folder).")
@click.option("--permission", help="Draft only the dataset(s) this platform permission is for, reading under it.")
@click.option("--prefix", default="", help="Put this before each platform dataset name (e.g. platform_).")
@click.option("--dataset", "datasets", multiple=True, help="Draft only this platform dataset (repeatable).")
@click.option("--mode", type=click.Choice(["live", "replicated"]), default="live", show_default=True,
              help="live: every lookup asks the platform; replicated: `viss-bridge sync` copies it.")
@click.option("--force", is_flag=True, help="Replace existing manifest files.")
@click.pass_context
def catalog_import_platform(ctx: click.Context, url: str, out: str | None, permission: str | None, prefix: str,
                            datasets: tuple[str, ...], mode: str, force: bool) -> None:
    """Draft manifests (source.kind: platform) from a platform's service_list and openapi.json.

    URL is the platform's REST API base, e.g. https://platform.example/rest. The connection (certificate,
    key, CA bundle, token) is this node's platform_* settings."""
    from pathlib import Path

    from viss_bridge.upstream.errors import UpstreamError
    from viss_bridge.upstream.platform import PlatformConnection, PlatformPool
    from viss_bridge.upstream.platform_import import import_platform

    settings = settings_for(ctx)
    pool = PlatformPool(PlatformConnection.from_settings(settings))
    folder = Path(out) if out else Path(settings.catalog_dir)
    try:
        result = import_platform(url, lambda path, number: pool.document(url, path, number), folder, prefix=prefix,
                                 datasets=datasets, permission=permission, mode=mode, force=force)
    except UpstreamError as exc:
        raise click.ClickException(f"{exc.cause}: {exc.message}") from None
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    for path, draft in zip(result.written, result.drafts):
        click.echo(f"drafted {draft.name} (platform dataset {draft.remote}): {path}")
        for note in draft.notes:
            click.echo(f"  note: {note}")
    for line in result.skipped:
        click.echo(f"skipped {line}", err=True)
    if not result.written:
        raise click.ClickException("no manifest drafted")
    click.echo(f"{len(result.written)} draft(s) in {folder}; review the TODO(decide) lines, then "
               f"`viss-bridge catalog validate {folder}`")
