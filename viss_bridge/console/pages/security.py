"""Security officer's pages: the message log, chain and seal state, ``log verify``, evidence containers.

Every figure comes from the log's own tables through the msglog package (find, verify, evidence);
the console adds no second way of reading or checking the log.
"""

from __future__ import annotations

import datetime as dt
import re
import time
from typing import Any

from werkzeug.wrappers import Response

from viss_bridge.console.accounts import SECURITY_OFFICER
from viss_bridge.console.web import Page, PageContext

MAX_SHOWN_BODY = 64 * 1024
CHECK_LINE = re.compile(r"^  (.*?) +(OK|FAILED)  (.*)$")
SEARCH_FIELDS = ("message_id", "exchange_id", "client", "service", "person", "since", "until")


def trust_of(node: Any) -> Any:
    from viss_bridge.security.pki import TrustStore

    anchors = node.settings.trust_anchors
    return TrustStore.from_files(*[a.strip() for a in anchors.split(",") if a.strip()]) if anchors else None


def iso_utc(value: str) -> str | None:
    """A form's time (``2026-12-03T10:00``, taken as UTC unless it says otherwise) as the log writes times."""
    if not value.strip():
        return None
    moment = dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    moment = moment if moment.tzinfo else moment.replace(tzinfo=dt.timezone.utc)
    return moment.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def message_log(ctx: PageContext) -> Response:
    from viss_bridge.msglog.find import find_records

    criteria = {name: ctx.args.get(name, "").strip() for name in SEARCH_FIELDS}
    error = ""
    try:
        since, until = iso_utc(criteria["since"]), iso_utc(criteria["until"])
    except ValueError:
        since = until = None
        error = "times are ISO dates and times, e.g. 2026-12-03T10:00"
    rows = find_records(ctx.console.log_store, message_id=criteria["message_id"] or None,
                        exchange_id=criteria["exchange_id"] or None, client=criteria["client"] or None,
                        service=criteria["service"] or None, person=criteria["person"] or None, since=since,
                        until=until, limit=200)
    return ctx.render("log.html", rows=rows, criteria=criteria, error=error)


def exchange(ctx: PageContext) -> Response:
    from viss_bridge.msglog.evidence import EvidenceError, find_exchange_records

    exchange_id = ctx.args.get("id", "")
    try:
        records = find_exchange_records(ctx.console.log_store, exchange_id=exchange_id)
    except EvidenceError as exc:
        return ctx.render("error.html", status=404, message=str(exc))
    shown = []
    for record in records:
        body = record["body"]
        shown.append({**{k: v for k, v in record.items() if k not in ("body", "record_hash")},
                      "text": body[:MAX_SHOWN_BODY].decode("utf-8", errors="replace"),
                      "cut": len(body) > MAX_SHOWN_BODY, "length": len(body), "hash": record["record_hash"].hex()})
    return ctx.render("exchange.html", exchange_id=exchange_id, records=shown)


def chain_states(store: Any) -> list[dict[str, Any]]:
    """Per node: head, sealed, unsealed backlog, the last seal and its time-stamp, the TSA's state."""
    states = []
    rows = store.query("SELECT h.node_id, h.seq, s.sealed_seq, s.last_seal_at, s.tsa_failing_since, s.tsa_error "
                       "FROM msglog_head h LEFT JOIN msglog_sealer s ON s.node_id = h.node_id ORDER BY h.node_id")
    for node_id, head, sealed, last_at, failing, tsa_error in rows:
        last = store.query("SELECT first_seq, last_seq, created_at, tsa_time FROM msglog_seal WHERE node_id = ? "
                           "ORDER BY first_seq DESC LIMIT 1", (node_id,))
        stamped = store.query("SELECT COUNT(*), SUM(CASE WHEN tsr IS NULL THEN 0 ELSE 1 END) FROM msglog_seal "
                              "WHERE node_id = ?", (node_id,))[0]
        states.append({
            "node": node_id, "head": int(head), "sealed": int(sealed or 0), "unsealed": int(head) - int(sealed or 0),
            "last_seal": {"first": last[0][0], "last": last[0][1], "at": last[0][2], "tsa_time": last[0][3]}
            if last else None,
            "last_seal_age": round(time.time() - float(last_at), 1) if last_at else None,
            "seals": int(stamped[0] or 0), "stamped": int(stamped[1] or 0),
            "tsa": "failing" if failing is not None else "ok", "tsa_error": tsa_error,
            "tsa_failing_for": round(time.time() - float(failing), 1) if failing is not None else None})
    return states


def seals(ctx: PageContext) -> Response:
    _, health = ctx.node.msglog.health()
    return ctx.render("seals.html", nodes=chain_states(ctx.console.log_store), health=health,
                      tsa_url=ctx.node.settings.tsa_url)


def verify(ctx: PageContext) -> Response:
    jobs = ctx.console.jobs
    if ctx.request.method == "POST":
        trust = trust_of(ctx.node)
        if trust is None:
            return ctx.render("verify.html", jobs=jobs.recent(), error="No trust anchors are configured "
                              "(trust_anchors); the node cannot check signatures.")
        job_id = jobs.start(ctx.account.name, ctx.node.settings.message_log_url, trust)
        return ctx.redirect("/verify/job", id=job_id)
    return ctx.render("verify.html", jobs=jobs.recent(), error="")


def verify_job(ctx: PageContext) -> Response:
    job = ctx.console.jobs.get(ctx.args.get("id", ""))
    if job is None:
        return ctx.render("error.html", status=404, message="Not found")
    return ctx.render("verify_job.html", job=job)


def evidence(ctx: PageContext) -> Response:
    from viss_bridge.msglog.evidence import verify_container

    if ctx.request.method == "GET":
        return ctx.render("evidence.html", report=None, name="", error="")
    upload = ctx.request.files.get("container")
    if upload is None or not upload.filename:
        return ctx.render("evidence.html", report=None, name="", error="choose an .asice file", status=400)
    trust = trust_of(ctx.node)
    if trust is None:
        return ctx.render("evidence.html", report=None, name=upload.filename, status=503,
                          error="No trust anchors are configured (trust_anchors); the node cannot check signatures.")
    data = upload.read()
    report = verify_container(data, trust, name=upload.filename)
    checks = []
    for line in report.lines:  # EvidenceReport.check writes "  <label> OK|FAILED  <detail>"; others are headings
        found = CHECK_LINE.match(line)
        checks.append({"status": found[2].lower(), "label": found[1], "detail": found[3]} if found else
                      {"status": "info", "label": line.strip(), "detail": ""})
    return ctx.render("evidence.html", report=report, checks=checks, name=upload.filename, size=len(data), error="")


PAGES = [
    Page("/log", SECURITY_OFFICER, message_log, title="Message log", group="security_officer"),
    Page("/log/exchange", SECURITY_OFFICER, exchange),
    Page("/seals", SECURITY_OFFICER, seals, title="Chain and seals", group="security_officer"),
    Page("/verify", SECURITY_OFFICER, verify, methods=("GET", "POST"), title="Verify the log",
         group="security_officer"),
    Page("/verify/job", SECURITY_OFFICER, verify_job),
    Page("/evidence", SECURITY_OFFICER, evidence, methods=("GET", "POST"), title="Evidence container",
         group="security_officer"),
]
