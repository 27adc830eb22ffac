"""Migration team's pages: the migration report live, parity over time, the differences, the shadow runs.

Read from :class:`viss_bridge.migration.tracking.MigrationTracker` (the tables ``viss-bridge migrate``
writes); the charts are those of the HTML report (migration/report.py), drawn from the same rows.
"""

from __future__ import annotations

from typing import Any

from markupsafe import Markup
from werkzeug.wrappers import Response

from viss_bridge.console.accounts import MIGRATION
from viss_bridge.console.charts import line
from viss_bridge.console.web import Page, PageContext


def tracker(ctx: PageContext) -> Any:
    from viss_bridge.migration.tracking import MigrationTracker

    found = MigrationTracker(ctx.node.engine)
    found.create_schema()
    return found


def operation_and_field(path: str) -> tuple[str, str]:
    """``GetPersonResponse/Person/GivenName`` -> (``GetPerson``, ``Person/GivenName``): a difference's path
    starts at the Body element, which is the operation's response element."""
    head, _, rest = path.partition("/")
    return head.removesuffix("Response"), rest or head


def report(ctx: PageContext) -> Response:
    from viss_bridge.migration.report import parity_svg, progress_svg
    from viss_bridge.migration.tracking import STATE_LABELS, STATES, summary

    migration = tracker(ctx)
    states = migration.services()
    differences = migration.latest_differences()
    figures = summary(states)
    rows = []
    for state in states:
        history = migration.shadow_history(state.name)
        rows.append({"state": state, "label": STATE_LABELS.get(state.state, state.state),
                     "trend": line([(h["at"].strftime("%Y-%m-%d %H:%M"), h["parity"]) for h in history]),
                     "runs": len(history),
                     "differences": [(*operation_and_field(p), n) for p, n in differences.get(state.name, {}).items()]
                     if state.parity is not None else []})
    return ctx.render("migration.html", figures=figures, rows=rows, states=STATES, labels=STATE_LABELS,
                      progress=Markup(progress_svg(figures["counts"], figures["total"])),
                      parity=Markup(parity_svg(states)))


def service(ctx: PageContext) -> Response:
    migration = tracker(ctx)
    name = ctx.args.get("name", "")
    state = migration.get(name)
    if state is None:
        return ctx.render("error.html", status=404, message="Not found")
    runs = [{**run, "differences": [(*operation_and_field(p), n) for p, n in run["differing"].items()]}
            for run in reversed(migration.shadow_history(name))]
    return ctx.render("migration_service.html", state=state, runs=runs, events=migration.events(name),
                      trend=line([(r["at"].strftime("%Y-%m-%d %H:%M"), r["parity"]) for r in reversed(runs)],
                                 width=520, height=90))


PAGES = [
    Page("/migration", MIGRATION, report, title="Migration", group="migration"),
    Page("/migration/service", MIGRATION, service),
]
