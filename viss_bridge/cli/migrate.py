"""``viss-bridge migrate ...``: inventory, scaffold, shadow comparison, status and report of the migration."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from viss_bridge.cli.common import (settings_for, print_table, migration_tracker)
from viss_bridge.cli.root import main


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

    A WSDL that cannot be read is reported (file and cause) and the others continue; an
    operation whose types cannot be resolved is reported as a problem naming the operation
    and the type, and the rest of its WSDL is still listed. Each operation lists its
    constructs. The exit status is 1 when any WSDL failed or any operation has a problem.
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
        tracker = migration_tracker(ctx)
        for inventory in result.inventories:
            for name in tracker.record_inventory(inventory):
                click.echo(f"recorded {name}", err=True)
    for error in result.errors:
        click.echo(f"error: {error}", err=True)
    for problem in result.problems:
        click.echo(f"problem: {problem}", err=True)
    if result.errors or result.problems:
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
    """Draft dataset manifests and a /legacy contract mapping (format v2) from a WSDL.

    Every element of every response is carried (objects, lists, wrappers, attributes, simple
    content, constants, result codes, paging); request elements naming a field, also inside a
    nested list, become searches with their indexes. TODO(decide) marks what a person decides:
    names, owner, access, subject, not-found answers (and a key only when it is a guess).
    """
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
        for search in result.searches:
            click.echo(f"  search: {search}")
        for skipped in result.skipped_operations:
            click.echo(f"  not mapped: {skipped}")
        click.echo(f"  {result.todo_count} TODO(decide) mark(s) to settle; check with: viss-bridge catalog validate {out}")
    if record:
        tracker = migration_tracker(ctx)
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
    tracker = migration_tracker(ctx) if record else None
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
                             limit=limit or planned.limit, quiet=fmt != "text")
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
        print_table(("service", "requests", "equal", "different", "errors", "parity"),
               [(r.service, str(r.total), str(r.count("equal")), str(r.count("different")), str(r.count("error")),
                 f"{r.parity:.1f}%") for r in reports])
    if output:
        Path(output).write_text(json.dumps(data, indent=2, ensure_ascii=False), encoding="utf-8")
    if below:
        raise SystemExit(1)


def _shadow_one(ctx: click.Context, planned: Any, base: Path, *, rate: float, burst: int, timeout: float,
                limit: int | None, quiet: bool = False) -> Any:
    """One service of a shadow run: its requests, its comparison options, its own token bucket."""
    from viss_bridge.cli.progress import progress_bar
    from viss_bridge.migration.shadow import ShadowSetupError, planned_requests, planned_target, replay

    try:
        target = planned_target(planned, base)
        saved = planned_requests(planned, base, settings_for(ctx).message_log_url, limit)
    except ShadowSetupError as exc:
        raise click.ClickException(str(exc)) from None
    total = min(len(saved), limit) if limit else len(saved)
    done = 0
    with progress_bar(f"shadowing {planned.service} (requests)", total, quiet=quiet) as progress:
        def step(_outcome: Any) -> None:
            nonlocal done
            done += 1
            progress(done, total)

        return replay(target, saved, rate=rate, burst=burst, timeout=timeout, limit=limit, on_outcome=step)


@migrate.command("status")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.pass_context
def migrate_status(ctx: click.Context, fmt: str) -> None:
    """Every tracked legacy service: state, parity of the latest shadow run, datasets."""
    import json

    from viss_bridge.migration.tracking import STATE_LABELS, summary

    states = migration_tracker(ctx).services()
    figures = summary(states)
    if fmt == "json":
        differences = migration_tracker(ctx).latest_differences()
        services = [dict(s.to_json(), differing_fields=differences.get(s.name, {})) for s in states]
        click.echo(json.dumps({"services": services, "summary": figures}, indent=2, ensure_ascii=False))
        return
    rows = [(s.name, STATE_LABELS.get(s.state, s.state), "-" if s.parity is None else f"{s.parity:.1f}%",
             str(s.shadow_requests), str(s.complexity), ", ".join(s.datasets) or "-",
             s.updated_at.strftime("%Y-%m-%d %H:%M")) for s in states]
    print_table(("service", "state", "parity", "shadowed", "complexity", "datasets", "updated"), rows)
    counts = ", ".join(f"{STATE_LABELS[k]} {v}" for k, v in figures["counts"].items())
    click.echo(f"{figures['total']} service(s): {counts}; moved {figures['moved_percent']:.1f}%")


@migrate.command("history")
@click.argument("service")
@click.pass_context
def migrate_history(ctx: click.Context, service: str) -> None:
    """One service's state changes (who, when, why) and shadow runs."""
    from viss_bridge.migration.tracking import STATE_LABELS

    tracker = migration_tracker(ctx)
    state = tracker.get(service)
    if state is None:
        raise click.ClickException(f"no service '{service}' is tracked")
    click.echo(f"{state.name} ({state.title}): {STATE_LABELS[state.state]}; WSDL {state.wsdl or '-'}; "
               f"datasets {', '.join(state.datasets) or '-'}")
    print_table(("time", "from", "to", "by", "note"),
           [(e.at.strftime("%Y-%m-%d %H:%M:%S"), STATE_LABELS.get(e.from_state or "", "-"), STATE_LABELS[e.to_state],
             e.actor, e.note) for e in tracker.events(service)])
    runs = tracker.shadow_history(service)
    if runs:
        click.echo("shadow runs:")
        print_table(("time", "requests", "equal", "different", "errors", "parity", "fields differing (requests)"),
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
        result = migration_tracker(ctx).transition(service, state.replace("-", "_"), note=note, force=force,
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

    tracker = migration_tracker(ctx)
    states, events, differences = tracker.services(), tracker.events(), tracker.latest_differences()
    Path(output).write_text(render_html(states, events, title=title, differences=differences), encoding="utf-8")
    click.echo(f"wrote {output} ({len(states)} service(s))")
    if markdown == "-":
        click.echo(render_markdown(states, differences=differences))
    elif markdown:
        Path(markdown).write_text(render_markdown(states, differences=differences), encoding="utf-8")
        click.echo(f"wrote {markdown}")
