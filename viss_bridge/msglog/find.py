"""``viss-bridge log find``: records by message id, exchange, client, service, person or time range."""

from __future__ import annotations

from typing import Any

from viss_bridge.msglog.store import LogStore

FIND_COLUMNS = ("node_id", "seq", "recorded_at", "leg", "direction", "client", "service", "message_id", "user_id",
                "subjects", "status", "fault_code", "exchange_id")


def find_records(store: LogStore, *, message_id: str | None = None, exchange_id: str | None = None,
                 client: str | None = None, service: str | None = None, person: str | None = None,
                 since: str | None = None, until: str | None = None, node: str | None = None,
                 limit: int = 100) -> list[dict[str, Any]]:
    """Matching records, newest first (times are the log's ISO UTC text, so they compare as strings).

    ``service`` matches exactly or as a prefix at a ``/`` boundary: ``pmlp-fpr`` finds every operation
    the bridge called on that provider, ``LV/GOV/90000100015/FPR`` every service of that subsystem."""
    where: list[str] = []
    params: list[str | int] = []
    for column, value in (("message_id", message_id), ("client", client), ("node_id", node)):
        if value:
            where.append(f"{column} = ?")
            params.append(value)
    if service:  # exact, or a prefix at a "/" boundary as in logged_requests (platform-host-port finds its calls)
        where.append("(service = ? OR substr(service, 1, ?) = ?)")
        params += [service, len(service) + 1, service + "/"]
    if exchange_id:  # an exchange id, or the fault UUID a consumer got in faultDetail
        where.append("exchange_id IN (SELECT exchange_id FROM msglog_record WHERE exchange_id = ? OR fault_id = ?)")
        params += [exchange_id, exchange_id]
    if person:
        # Subjects are stored as a JSON list; match the quoted value exactly.
        where.append("subjects LIKE ?")
        params.append('%"' + person.replace("%", "").replace("_", "") + '"%')
    _recorded_between(where, params, since, until)
    sql = (f"SELECT {', '.join(FIND_COLUMNS)} FROM msglog_record" + (" WHERE " + " AND ".join(where) if where else "")
           + " ORDER BY recorded_at DESC, node_id, seq DESC LIMIT ?")
    return [dict(zip(FIND_COLUMNS, row)) for row in store.query(sql, (*params, limit))]


def logged_requests(store: LogStore, *, leg: str = "consumer", endpoint: str | None = None,
                    service: str | None = None, since: str | None = None, until: str | None = None,
                    limit: int = 1000) -> list[tuple[str, int, bytes]]:
    """Request messages as recorded (node, sequence number, exact bytes), oldest first.

    ``service`` matches as a prefix at a ``/`` boundary (``legacy/fpr`` matches ``legacy/fpr/GetPerson``);
    ``since``/``until`` are ISO UTC times. For tools that replay what consumers sent (``migrate shadow``).
    """
    where = ["leg = ?", "direction = ?"]
    params: list[Any] = [leg, "request"]
    if endpoint:
        where.append("endpoint = ?")
        params.append(endpoint)
    if service:
        where.append("(service = ? OR substr(service, 1, ?) = ?)")
        params += [service, len(service) + 1, service + "/"]
    _recorded_between(where, params, since, until)
    rows = store.query("SELECT node_id, seq, body FROM msglog_record WHERE " + " AND ".join(where)
                       + " ORDER BY recorded_at, node_id, seq LIMIT ?", (*params, limit))
    return [(str(node), int(seq), bytes(body)) for node, seq, body in rows]


def _recorded_between(where: list[str], params: list[Any], since: str | None, until: str | None) -> None:
    """The time window of a query (ISO UTC times, both ends included)."""
    if since:
        where.append("recorded_at >= ?")
        params.append(since)
    if until:
        where.append("recorded_at <= ?")
        params.append(until)
