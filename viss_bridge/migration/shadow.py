"""``migrate shadow``: replay real requests against the legacy provider and the bridge, compare the answers.

Each saved request is sent unchanged to both endpoints (the legacy provider and
the bridge's ``/legacy/<name>`` contract, which speak the same WSDL), and the
two answers are compared semantically (:mod:`viss_bridge.migration.compare`).
Parity is the share of requests whose answers are equal; a request that
fails on either side (timeout, HTTP error page) counts against parity and is
reported as an error, because a switch-over must not hide it.

A token bucket paces the replay (``rate`` requests per second, ``burst`` at
most at once) and requests go one at a time, so a shadow run never loads a
provider more than the configured rate: it is meant to run against
production registers.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

import requests
from lxml import etree

from viss_bridge.migration.compare import CompareOptions, Difference, NotSoap, compare_messages
from viss_bridge.xml import NS_SOAP11, NS_SOAP12, XmlRejected, parse_untrusted


class TokenBucket:
    """At most ``rate`` acquisitions per second on average, ``burst`` at once. Thread-safe."""

    def __init__(self, rate: float, burst: int = 1, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        if rate <= 0:
            raise ValueError("the rate must be positive")
        if burst < 1:
            raise ValueError("the burst must be at least 1")
        self.rate = float(rate)
        self.burst = int(burst)
        self._clock = clock
        self._sleep = sleep
        self._tokens = float(burst)
        self._last = clock()
        self._lock = threading.Lock()

    def acquire(self) -> float:
        """Take one token, waiting as long as needed; returns the seconds waited."""
        waited = 0.0
        while True:
            with self._lock:
                now = self._clock()
                self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
                self._last = now
                if self._tokens >= 1.0:
                    self._tokens -= 1.0
                    return waited
                wait = (1.0 - self._tokens) / self.rate
            self._sleep(wait)
            waited += wait


@dataclass
class SavedRequest:
    id: str  # file name, or message log record id
    body: bytes
    soap_action: str | None = None


def folder_requests(folder: str | Path) -> list[SavedRequest]:
    """Every ``*.xml`` file under the folder (sorted by path) as a saved request."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: no such folder of saved requests")
    files = sorted(p for p in folder.rglob("*.xml") if p.is_file())
    return [SavedRequest(str(p.relative_to(folder)), p.read_bytes()) for p in files]


def log_requests(log_url: str, *, leg: str = "consumer", endpoint: str | None = None, service: str | None = None,
                 since: str | None = None, until: str | None = None, limit: int = 1000) -> list[SavedRequest]:
    """Requests as the message log recorded them (exact bytes), oldest first.

    ``service`` matches the log's service column as a prefix (``legacy/fpr`` matches
    ``legacy/fpr/GetPerson``); ``since``/``until`` are ISO UTC times. The consumer
    leg holds what old consumers sent to the bridge; the provider leg what the bridge
    sent to legacy providers (for datasets answered live), which is in the provider's
    own contract. Request ids are ``<node>:<sequence number>``, so a difference can be
    traced back to the logged message (``viss-bridge log find``).
    """
    from viss_bridge.msglog.find import logged_requests
    from viss_bridge.msglog.store import LogStore

    store = LogStore(log_url, read_only=True)
    try:
        rows = logged_requests(store, leg=leg, endpoint=endpoint, service=service, since=since, until=until,
                               limit=limit)
    finally:
        store.close()
    return [SavedRequest(f"{node}:{seq}", body) for node, seq, body in rows]


@dataclass
class ShadowTarget:
    service: str  # the tracked legacy service (migrate status)
    legacy_url: str
    bridge_url: str
    options: CompareOptions = field(default_factory=CompareOptions)
    soap_actions: dict[str, str] = field(default_factory=dict)  # request body element (Clark) -> SOAPAction


@dataclass
class Outcome:
    request: str
    status: str  # equal | different | error
    differences: list[Difference] = field(default_factory=list)
    error: str | None = None
    legacy_status: int | None = None
    bridge_status: int | None = None
    legacy_ms: float | None = None
    bridge_ms: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {"request": self.request, "status": self.status, "error": self.error,
                "differences": [d.to_json() for d in self.differences],
                "legacy": {"http_status": self.legacy_status, "ms": self.legacy_ms},
                "bridge": {"http_status": self.bridge_status, "ms": self.bridge_ms}}


@dataclass
class ShadowReport:
    service: str
    legacy_url: str
    bridge_url: str
    rate: float
    started: dt.datetime
    finished: dt.datetime | None = None
    outcomes: list[Outcome] = field(default_factory=list)

    @property
    def total(self) -> int:
        return len(self.outcomes)

    def count(self, status: str) -> int:
        return sum(1 for o in self.outcomes if o.status == status)

    @property
    def parity(self) -> float:
        return round(100.0 * self.count("equal") / self.total, 2) if self.total else 0.0

    def differing_fields(self) -> dict[str, int]:
        """Path (without list positions) -> number of requests where it differs."""
        import re

        counts: dict[str, int] = {}
        for outcome in self.outcomes:
            for path in {re.sub(r"\[\d+\]", "", d.path) for d in outcome.differences}:
                counts[path] = counts.get(path, 0) + 1
        return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))

    def to_json(self) -> dict[str, Any]:
        return {"service": self.service, "legacy_url": self.legacy_url, "bridge_url": self.bridge_url,
                "rate_per_second": self.rate, "started": self.started.isoformat(),
                "finished": self.finished.isoformat() if self.finished else None,
                "requests": self.total, "equal": self.count("equal"), "different": self.count("different"),
                "errors": self.count("error"), "parity": self.parity, "differing_fields": self.differing_fields(),
                "outcomes": [o.to_json() for o in self.outcomes]}

    def render_text(self, show_equal: bool = False) -> str:
        lines = [f"{self.service}: {self.total} request(s), {self.count('equal')} equal, "
                 f"{self.count('different')} different, {self.count('error')} error(s): parity {self.parity:.1f}%"]
        for outcome in self.outcomes:
            if outcome.status == "equal":
                if show_equal:
                    lines.append(f"  {outcome.request}: equal")
                continue
            if outcome.status == "error":
                lines.append(f"  {outcome.request}: ERROR {outcome.error}")
                continue
            lines.append(f"  {outcome.request}: {len(outcome.differences)} difference(s)")
            for difference in outcome.differences:
                lines.append(f"    {difference.describe()}")
        fields = self.differing_fields()
        if fields:
            lines.append("  fields that differ (requests): " + ", ".join(f"{k} ({v})" for k, v in fields.items()))
        return "\n".join(lines)


def soap_actions_from_inventory(inventory: Any) -> dict[str, str]:
    actions: dict[str, str] = {}
    for service in inventory.services:
        for op in service.operations():
            if op.input is not None and op.input.element:
                actions[f"{{{op.input.namespace}}}{op.input.element}"] = op.soap_action
    return actions


def _envelope_info(body: bytes) -> tuple[str, str]:
    """(SOAP envelope namespace, Clark name of the body element) of a saved request."""
    root = parse_untrusted(body)
    ns = etree.QName(root).namespace
    if etree.QName(root).localname != "Envelope" or ns not in (NS_SOAP11, NS_SOAP12):
        raise NotSoap("the saved request is not a SOAP envelope")
    body_element = root.find(f"{{{ns}}}Body")
    first = next((c for c in (body_element if body_element is not None else []) if isinstance(c.tag, str)), None)
    if first is None:
        raise NotSoap("the saved request has an empty SOAP Body")
    return ns, first.tag


def _headers(ns: str, action: str) -> dict[str, str]:
    if ns == NS_SOAP12:
        return {"Content-Type": f'application/soap+xml; charset=utf-8; action="{action}"'}
    return {"Content-Type": "text/xml; charset=utf-8", "SOAPAction": f'"{action}"'}


def _post(session: requests.Session, url: str, body: bytes, headers: dict[str, str],
          timeout: float) -> tuple[int | None, bytes | None, float, str | None]:
    started = time.perf_counter()
    try:
        response = session.post(url, data=body, headers=headers, timeout=timeout)
    except requests.RequestException as exc:
        return None, None, (time.perf_counter() - started) * 1000, f"{exc.__class__.__name__}: {exc}"
    return response.status_code, response.content, (time.perf_counter() - started) * 1000, None


def replay(target: ShadowTarget, saved: Iterable[SavedRequest], *, rate: float = 5.0, burst: int = 1,
           timeout: float = 10.0, limit: int | None = None, bucket: TokenBucket | None = None,
           on_outcome: Callable[[Outcome], None] | None = None) -> ShadowReport:
    """Send each request to both sides (paced by the bucket), compare, and collect a report."""
    bucket = bucket or TokenBucket(rate, burst)
    report = ShadowReport(target.service, target.legacy_url, target.bridge_url, rate,
                          dt.datetime.now(dt.timezone.utc))
    session = requests.Session()
    try:
        for index, request in enumerate(saved):
            if limit is not None and index >= limit:
                break
            outcome = _one(target, request, session, bucket, timeout)
            report.outcomes.append(outcome)
            if on_outcome:
                on_outcome(outcome)
    finally:
        session.close()
    report.finished = dt.datetime.now(dt.timezone.utc)
    return report


def _one(target: ShadowTarget, request: SavedRequest, session: requests.Session, bucket: TokenBucket,
         timeout: float) -> Outcome:
    try:
        ns, element = _envelope_info(request.body)
    except (XmlRejected, NotSoap) as exc:
        return Outcome(request.id, "error", error=f"the saved request cannot be replayed: {exc}")
    action = request.soap_action if request.soap_action is not None else target.soap_actions.get(element, "")
    headers = _headers(ns, action)
    bucket.acquire()  # one token per replayed request: the provider sees at most `rate` calls per second
    l_status, l_body, l_ms, l_error = _post(session, target.legacy_url, request.body, headers, timeout)
    b_status, b_body, b_ms, b_error = _post(session, target.bridge_url, request.body, headers, timeout)
    outcome = Outcome(request.id, "error", legacy_status=l_status, bridge_status=b_status,
                      legacy_ms=round(l_ms, 1), bridge_ms=round(b_ms, 1))
    problems = []
    if l_error:
        problems.append(f"legacy provider: {l_error}")
    if b_error:
        problems.append(f"bridge: {b_error}")
    if problems:
        outcome.error = "; ".join(problems)
        return outcome
    assert l_body is not None and b_body is not None
    try:
        outcome.differences = compare_messages(l_body, b_body, target.options)
    except NotSoap:
        side_problems = []
        for side, status, body in (("legacy provider", l_status, l_body), ("bridge", b_status, b_body)):
            try:
                compare_messages(body, body)
            except NotSoap as exc:
                side_problems.append(f"{side}: HTTP {status}, {exc}")
        outcome.error = "; ".join(side_problems)
        return outcome
    outcome.status = "different" if outcome.differences else "equal"
    return outcome


class ShadowSetupError(ValueError):
    """A planned service cannot be shadowed as planned (its WSDL, its requests); the message says why."""


def planned_target(planned: Any, base: Path) -> ShadowTarget:
    """The comparison target of a planned service: its WSDL's element types and SOAPActions, its options."""
    from viss_bridge.migration.compare import CompareOptions, types_from_inventory
    from viss_bridge.migration.wsdl import WsdlError, read_wsdl

    options = CompareOptions(unordered=planned.unordered, ignore=planned.ignore)
    actions: dict[str, str] = {}
    if planned.wsdl:
        try:
            inventory = read_wsdl(str(base / planned.wsdl))
        except WsdlError as exc:
            raise ShadowSetupError(str(exc)) from None
        options.types = types_from_inventory(inventory)
        actions = soap_actions_from_inventory(inventory)
    return ShadowTarget(planned.service, planned.legacy_url, planned.bridge_url, options, actions)


def planned_requests(planned: Any, base: Path, log_url: str, limit: int | None) -> list[SavedRequest]:
    """The requests to replay for a planned service: from the message log, or from a folder of saved files."""
    if planned.from_log is not None:
        service = planned.from_log.service
        if not service and "/legacy/" in planned.bridge_url:  # the contract the bridge URL names
            service = "legacy/" + planned.bridge_url.split("/legacy/", 1)[1].strip("/").split("?")[0]
        saved = log_requests(log_url, leg=planned.from_log.leg, service=service, since=planned.from_log.since,
                             until=planned.from_log.until, limit=limit or 1000)
        if not saved:
            raise ShadowSetupError(f"{planned.service}: the message log has no {planned.from_log.leg} requests "
                                   f"for service {service or '(any)'} in that time range")
        return saved
    folder = base / planned.requests
    try:
        saved = folder_requests(folder)
    except FileNotFoundError as exc:
        raise ShadowSetupError(str(exc)) from None
    if not saved:
        raise ShadowSetupError(f"{folder}: no *.xml request files")
    return list(saved)
