"""Support's page: who read one person's data (the data tracker), and the person's restrictions.

One person at a time, and only with a reason: the lookup is an exchange on the message log
(``console/tracker.lookup``, the account, the reason, the person as data subject) written before
the page shows anything; if the log cannot take it, nothing is shown.
"""

from __future__ import annotations

import time

from werkzeug.wrappers import Response

from viss_bridge.console.accounts import SUPPORT
from viss_bridge.console.records import record_step
from viss_bridge.console.web import Page, PageContext

SHOWN = 200


def tracker(ctx: PageContext) -> Response:
    if ctx.request.method == "GET":
        return ctx.render("tracker.html", person="", reason="", usage=None, error="")
    started = time.perf_counter()
    person, reason = ctx.form.get("person", "").strip(), ctx.form.get("reason", "").strip()
    if not person or not reason:
        return ctx.render("tracker.html", person=person, reason=reason, usage=None, status=400,
                          error="Give a person and a reason.")
    usage, total = ctx.node.tracker.usage(person, 0, SHOWN)
    restrictions = ctx.node.tracker.restrictions(person)
    fault = record_step(ctx.node, ctx.account.name, "tracker.lookup", {"person": person, "reason": reason},
                        {"total": total, "shown": len(usage), "restrictions": [r.dataset for r in restrictions]},
                        remote_addr=ctx.request.remote_addr, subjects=[person], started=started)
    if fault is not None:
        return ctx.render("tracker.html", person=person, reason=reason, usage=None, status=503,
                          error="The message log could not be written; nothing is shown.")
    return ctx.render("tracker.html", person=person, reason=reason, usage=usage, total=total,
                      restrictions=restrictions, error="")


PAGES = [Page("/tracker", SUPPORT, tracker, methods=("GET", "POST"), title="Data tracker", group="support")]
