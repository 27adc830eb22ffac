"""The DAGR-style REST face (``/rest/...``): the platform's JSON API on every dataset.

``GET /rest/service_list``, ``GET /rest/{dataset}/{key}`` (or ``?field=value`` for any key,
composite ones included), ``GET /rest/{dataset}/changes?since=&limit=``,
``GET /rest/current_user_permissions`` and ``GET /rest/openapi.json`` (docs/rest.md).

It is a face like the SOAP ones, not a shortcut around them:

- the caller is identified as on SOAP (the TLS or proxy certificate the server established,
  in development the ``X-Road-Client`` header), and ``X-DAGR-Permission`` names the permission
  (required when the client holds several usable ones for the dataset);
- every record is read through :class:`~viss_bridge.facade.guarded_read.GuardedRead`, so the
  same permission, restriction, use counting and field narrowing apply;
- every exchange (request line, headers and body; status line, headers and body) goes to the
  message log before the answer leaves (:func:`~viss_bridge.facade.exchange.record_exchange`),
  and the uses reserved for it are settled only after that commit: an answer the log refused is
  a 503 problem and spends no quota.

No Spyne here: the answers are JSON (:mod:`rest_json`), the errors RFC 9457 (:mod:`problems`).
"""

from __future__ import annotations

import json
import logging
from typing import Any, Callable, Iterable
from urllib.parse import parse_qs, quote

from viss_bridge.access.identity import Authenticator, Caller, IdentityProblem
from viss_bridge.access.policy import AMBIGUOUS
from viss_bridge.access.registry import AccessStoreUnavailable, Permission
from viss_bridge.catalog.catalog import Catalog
from viss_bridge.catalog.manifest import Dataset, Field
from viss_bridge.facade import faults
from viss_bridge.facade.callers import believed_caller
from viss_bridge.facade.exchange import CallInfo, ExchangeSink
from viss_bridge.facade.pipeline import Answer, ExchangePipeline
from viss_bridge.facade.faults import BridgeFault
from viss_bridge.facade.guarded_read import GuardedRead, narrowed
from viss_bridge.facade.openapi import FEED_SEGMENT, MAX_CURSOR, MAX_PAGE, META_PATHS, build_openapi
from viss_bridge.facade.problems import METHOD_NOT_ALLOWED, NOT_FOUND, PROBLEM_CONTENT_TYPE, problem_body
from viss_bridge.facade.rest_json import json_record, key_object
from viss_bridge.facade.rest_search import search_page_json
from viss_bridge.facade.search_paging import MAX_PAGE as MAX_SEARCH_PAGE, search_request
from viss_bridge.catalog.search import PAGING_NAMES
from viss_bridge.observability import bounded_label

log = logging.getLogger(__name__)

ENDPOINT = "rest"
CLIENT_HEADER = "HTTP_X_ROAD_CLIENT"
PERMISSION_HEADER = "HTTP_X_DAGR_PERMISSION"
MESSAGE_ID_HEADER = "HTTP_X_ROAD_ID"
USER_ID_HEADER = "HTTP_X_ROAD_USERID"
# Secrets never go into the (immutable, exportable) message log; the header stays, its value does not.
REDACTED_HEADERS = frozenset({"Authorization", "Proxy-Authorization", "Cookie"})
MAX_BODY = 64 * 1024  # a GET carries no body; what a client sends anyway is logged up to this size
_REASONS = {200: "OK", 400: "Bad Request", 403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed",
            408: "Request Timeout", 413: "Payload Too Large", 500: "Internal Server Error", 502: "Bad Gateway",
            503: "Service Unavailable", 504: "Gateway Timeout"}


def ok(document: Any, headers: list[tuple[str, str]] | None = None) -> Answer:
    return Answer(200, json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode(),
                  headers=list(headers or []))


def problem(fault: BridgeFault, served: bool = False) -> Answer:
    status, body = problem_body(fault)
    return Answer(status, body, PROBLEM_CONTENT_TYPE, fault=fault, served=served)


def status_line(status: int) -> str:
    return f"{status} {_REASONS.get(status, 'Status')}"


def request_bytes(environ: dict[str, Any], body: bytes) -> bytes:
    """The request as it arrived, for the log: request line, headers (secrets redacted), body."""
    target = quote(environ.get("SCRIPT_NAME", "") + (environ.get("PATH_INFO") or "/"), safe="/:@!$&'()*+,;=-._~")
    if environ.get("QUERY_STRING"):
        target += "?" + environ["QUERY_STRING"]
    lines = [f"{environ.get('REQUEST_METHOD', 'GET')} {target} {environ.get('SERVER_PROTOCOL', 'HTTP/1.1')}"]
    for key, value in environ.items():
        if key.startswith("HTTP_") or key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            if key in ("CONTENT_TYPE", "CONTENT_LENGTH") and not value:
                continue
            name = "-".join(part.capitalize() for part in key.removeprefix("HTTP_").split("_"))
            lines.append(f"{name}: {'[redacted]' if name in REDACTED_HEADERS else value}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1", "replace") + body


def response_bytes(status: int, headers: list[tuple[str, str]], body: bytes) -> bytes:
    head = [f"HTTP/1.1 {status_line(status)}", *(f"{k}: {v}" for k, v in headers)]
    return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1", "replace") + body


def read_request_body(environ: dict[str, Any]) -> bytes:
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        raise BridgeFault(faults.INVALID_REQUEST, "Content-Length is not a number") from None
    if length <= 0:
        return b""
    if length > MAX_BODY:
        raise BridgeFault(faults.MESSAGE_TOO_LARGE, f"A REST request carries no body; {length} bytes were announced")
    try:
        return environ["wsgi.input"].read(length)
    except TimeoutError as exc:
        raise BridgeFault(faults.REQUEST_TIMEOUT, f"The request was not received in time: {exc}") from None
    except OSError as exc:
        raise BridgeFault(faults.INVALID_REQUEST, f"The request body could not be read: {exc}") from None


def access_tree(dataset: Dataset | None, permission: Permission) -> dict[str, Any] | None:
    """The dataset's fields with what the permission reads (``readable``), nested as in the manifest."""
    if dataset is None:
        return None
    readable = None if permission.fields is None else set(permission.fields) | set(dataset.key)

    def node(f: Field, parent_readable: bool) -> dict[str, Any]:
        item: dict[str, Any] = {"name": f.name, "type": f.type.value, "readable": parent_readable}
        if f.fields:
            item["properties"] = [node(child, parent_readable) for child in f.fields]
        return item

    return {"service_name": dataset.dataset,
            "properties": [node(f, readable is None or f.name in readable) for f in dataset.fields]}


def permission_json(permission: Permission, dataset: Dataset | None) -> dict[str, Any]:
    return {"service_name": permission.dataset, "permission_number": permission.number,
            "purpose_of_use": permission.purpose, "legal_basis": permission.legal_basis,
            "legal_obligation": permission.legal_obligation, "use_count": permission.used,
            "use_count_quota": permission.quota, "valid_from": permission.valid_from.isoformat(),
            "valid_to": permission.valid_to.isoformat() if permission.valid_to else None,
            "status": permission.state(), "access_control_tree": access_tree(dataset, permission)}


class RestFace:
    """The WSGI handler of ``/rest/...``; one per worker, reading the current catalog on each request."""

    def __init__(self, catalog: Callable[[], Catalog], reader: GuardedRead, registry: Any,
                 authenticator: Authenticator, sinks: list[ExchangeSink], base_url: str, *,
                 trust_client_header: bool = False, refusal: Callable[[], Any] = lambda: None) -> None:
        self.catalog = catalog
        self.reader = reader
        self.policy = reader.permissions
        self.registry = registry
        self.authenticator = authenticator
        self.sinks = sinks  # the server's list, shared: the message log and any sink added later
        self.base_url = base_url.rstrip("/")
        self.trust_client_header = trust_client_header
        # The same steps as every SOAP face: refuse without trusted time, log before respond, settle after.
        self.exchanges = ExchangePipeline(refusal=refusal, sinks=sinks)

    # -- the exchange pipeline drives this face (facade/pipeline.py) --------------------------------

    name = ENDPOINT

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        answer = self.exchanges.serve(self, self.catalog(), environ)
        start_response(status_line(answer.status), answer.headers)
        return [answer.body]

    def read(self, environ: dict[str, Any]) -> bytes:
        return read_request_body(environ)

    def answer(self, published: Any, raw: bytes, environ: dict[str, Any], info: CallInfo) -> Answer:
        return self._with_headers(self._route(published, environ, info), info)

    def refused(self, fault: BridgeFault, info: CallInfo) -> Answer:
        return self._with_headers(problem(fault), info)

    def finish(self, answer: Answer, info: CallInfo) -> Answer:
        return answer

    def wire(self, environ: dict[str, Any], raw: bytes, answer: Answer) -> tuple[bytes, bytes]:
        """Logged as on the wire: request line, headers (secrets redacted) and body; status line, headers, body."""
        return request_bytes(environ, raw), response_bytes(answer.status, answer.headers, answer.body)

    def label(self, published: Any, info: CallInfo) -> str:
        return bounded_label(info.operation, set(published.datasets) | set(META_PATHS))

    def _with_headers(self, answer: Answer, info: CallInfo) -> Answer:
        headers = [("Content-Type", answer.content_type), ("Content-Length", str(len(answer.body))),
                   ("Cache-Control", "no-store"), ("X-Exchange-Id", info.exchange_id)]
        if info.permission and answer.fault is None:
            headers.append(("X-DAGR-Permission", info.permission))
        return Answer(answer.status, answer.body, answer.content_type, headers + answer.headers, answer.fault,
                      answer.served)

    # -- routing ---------------------------------------------------------------------------------------

    def _route(self, catalog: Catalog, environ: dict[str, Any], info: CallInfo) -> Answer:
        path = (environ.get("PATH_INFO") or "/").removeprefix("/rest")
        parts = path.strip("/").split("/") if path.strip("/") else []
        info.message_id = environ.get(MESSAGE_ID_HEADER) or None
        info.user_id = environ.get(USER_ID_HEADER) or None
        if (environ.get("REQUEST_METHOD") or "GET").upper() != "GET":
            raise BridgeFault(METHOD_NOT_ALLOWED, "The REST face answers GET only")
        caller = self._caller(environ, info)
        query = self._query(environ)
        if len(parts) == 1 and parts[0] in META_PATHS:
            info.service = info.operation = parts[0]
            if parts[0] == "service_list":
                return self._service_list(catalog, caller)
            if parts[0] == "current_user_permissions":
                return self._permissions(catalog, caller)
            return self._openapi(catalog, caller, environ)
        if not parts or len(parts) > 2:
            raise BridgeFault(faults.UNKNOWN_SERVICE, f"No REST resource at /rest{path}; see /rest/service_list")
        dataset = catalog.get(parts[0])
        if dataset is None:
            raise BridgeFault(faults.UNKNOWN_SERVICE, f"Unknown dataset: {parts[0]}")
        info.service = info.operation = dataset.dataset
        return self.dataset_answer(dataset, parts[1:], query, caller, environ.get(PERMISSION_HEADER) or None, info)

    def dataset_answer(self, dataset: Dataset, segments: list[str], query: dict[str, str], caller: Caller,
                       number: str | None, info: CallInfo) -> Answer:
        """A dataset's resources below its name (``/{key}``, ``?field=value``, ``/changes``); /r1 answers these too."""
        if len(segments) > 1:
            raise BridgeFault(faults.UNKNOWN_SERVICE, f"No {dataset.dataset} resource at /{'/'.join(segments)}")
        if segments and segments[0] == FEED_SEGMENT:
            return self._changes(dataset, caller, number, query, info)
        if segments:
            if len(dataset.key) != 1:
                raise BridgeFault(faults.INVALID_REQUEST, f"{dataset.dataset} has a composite key "
                                  f"({', '.join(dataset.key)}): ask {dataset.dataset}?"
                                  + "&".join(f"{k}=..." for k in dataset.key))
            if query:
                raise BridgeFault(faults.INVALID_REQUEST, f"Unknown query parameter(s): {', '.join(sorted(query))}")
            return self._lookup(dataset, caller, number, {dataset.key[0]: segments[0]}, info)
        if dataset.indexes and set(query) != set(dataset.key):  # anything but exactly the key: a search
            return self._search(dataset, caller, number, query, info)
        unknown = set(query) - set(dataset.key)
        missing = [k for k in dataset.key if k not in query]
        if unknown or missing:
            raise BridgeFault(faults.INVALID_REQUEST, f"{dataset.dataset} is looked up by "
                              f"{', '.join(dataset.key)} as query parameters"
                              + (f"; unknown: {', '.join(sorted(unknown))}" if unknown else "")
                              + (f"; missing: {', '.join(missing)}" if missing else ""))
        return self._lookup(dataset, caller, number, {k: query[k] for k in dataset.key}, info)

    def _caller(self, environ: dict[str, Any], info: CallInfo) -> Caller:
        """The caller exactly as on SOAP: the proven identity, the header believed only in development."""
        claimed = (environ.get(CLIENT_HEADER) or "").strip() or None
        try:
            caller = believed_caller(environ, claimed, self.authenticator, self.trust_client_header)
        except IdentityProblem as exc:  # only a name that was weighed can be refused: log it as the client
            info.client = claimed
            code = {"inconsistent": faults.INCONSISTENT_HEADERS,
                    "invalid": faults.INVALID_CLIENT_IDENTIFIER}.get(exc.kind, faults.ACCESS_DENIED)
            raise BridgeFault(code, exc.message) from None
        info.client, info.authenticated_by = caller.client_id, caller.authenticated_by
        return caller

    @staticmethod
    def _query(environ: dict[str, Any]) -> dict[str, str]:
        try:
            parsed = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True, strict_parsing=False,
                              errors="strict", max_num_fields=50)
        except (ValueError, UnicodeDecodeError) as exc:
            raise BridgeFault(faults.INVALID_REQUEST, f"The query string cannot be read: {exc}") from None
        twice = [k for k, v in parsed.items() if len(v) > 1]
        if twice:
            raise BridgeFault(faults.INVALID_REQUEST, f"Query parameter(s) given twice: {', '.join(sorted(twice))}")
        return {k: v[0] for k, v in parsed.items()}

    # -- datasets --------------------------------------------------------------------------------------

    def _lookup(self, dataset: Dataset, caller: Caller, number: str | None, key: dict[str, str],
                info: CallInfo) -> Answer:
        decision = self.reader.decide(caller, dataset, number, require_choice=True)
        record = self.reader.lookup(decision, dataset, key, info)
        if record is None:  # an answer like SOAP's empty one (counted like it), in HTTP's words
            return problem(BridgeFault(NOT_FOUND, f"{dataset.dataset} has no record with "
                                       + ", ".join(f"{k}={v}" for k, v in key.items())), served=True)
        return ok(json_record(narrowed(dataset, decision.fields), record))

    def _search(self, dataset: Dataset, caller: Caller, number: str | None, query: dict[str, str],
                info: CallInfo) -> Answer:
        """``?<index path>=<value>...&page=&page_size=`` or ``&cursor=``: a page of matches and the total."""
        criteria = {k: v for k, v in query.items() if k not in PAGING_NAMES}
        page = _bounded(query.get("page"), "page", 1, MAX_SEARCH_PAGE, 0) if "page" in query else None
        size = _bounded(query.get("page_size"), "page_size", 1, None, 0) if "page_size" in query else None
        request = search_request(criteria, page, size, query.get("cursor"))
        decision = self.reader.decide(caller, dataset, number, require_choice=True)
        found = self.reader.search(decision, dataset, request, info)
        return ok(search_page_json(narrowed(dataset, decision.fields), request, found))

    def _changes(self, dataset: Dataset, caller: Caller, number: str | None, query: dict[str, str],
                 info: CallInfo) -> Answer:
        unknown = set(query) - {"since", "limit"}
        if unknown:
            raise BridgeFault(faults.INVALID_REQUEST, f"Unknown query parameter(s): {', '.join(sorted(unknown))}; "
                                                      "the feed takes since and limit")
        decision = self.reader.decide(caller, dataset, number, require_choice=True)
        since = _bounded(query.get("since"), "since", 0, MAX_CURSOR, 0)
        limit = _bounded(query.get("limit"), "limit", 1, MAX_PAGE, 100)
        store = self.reader.store
        items, more = self.reader.feed(decision, dataset, lambda n: store.changes(dataset, since, n), limit, info)
        view = narrowed(dataset, decision.fields)
        changes = []
        for item in items:
            entry: dict[str, Any] = {"seq": item.change.seq, "key": key_object(dataset, item.change.key),
                                     "changed_at": item.change.changed_at.isoformat(),
                                     "deleted": item.change.record is None}
            if item.record is not None:
                entry["record"] = json_record(view, item.record)
            if item.withheld:
                entry["withheld"] = True
            changes.append(entry)
        return ok({"changes": changes, "next_since": items[-1].change.seq if items else since, "has_more": more})

    # -- about the caller and the catalog --------------------------------------------------------------

    def _service_list(self, catalog: Catalog, caller: Caller) -> Answer:
        services = []
        for d in catalog:
            entry: dict[str, Any] = {"service_name": d.dataset, "version": d.version,
                                     "title": {"lv": d.title.lv, "en": d.title.en}}
            if d.description:
                entry["description"] = {"lv": d.description.lv, "en": d.description.en}
            entry.update(owner=d.owner, access=d.access.value, key=list(d.key))
            if d.subject:
                entry["subject"] = d.subject
            entry["allowed"] = self._may_call(caller, d)
            entry["record_path"] = (f"/rest/{d.dataset}/{{{d.key[0]}}}" if len(d.key) == 1 else
                                    f"/rest/{d.dataset}?" + "&".join(f"{k}={{{k}}}" for k in d.key))
            entry["changes_path"] = f"/rest/{d.dataset}/{FEED_SEGMENT}"
            if d.indexes:  # GET /rest/{dataset}?<one of these>=<value>&page=... (docs/rest.md)
                entry["search_by"] = list(d.indexes)
            services.append(entry)
        return ok({"services": services})

    def _may_call(self, caller: Caller, dataset: Dataset) -> bool:
        try:
            return self.policy.decide(caller, dataset).allowed
        except AccessStoreUnavailable as exc:
            raise faults.service_failed("DatabaseError", f"The permission store is not available: {exc}") from None

    def _permissions(self, catalog: Catalog, caller: Caller) -> Answer:
        if caller.anonymous:
            raise BridgeFault(faults.ACCESS_DENIED, "An anonymous caller holds no permissions: authenticate with a "
                                                    "registered client certificate")
        try:
            held = self.registry.permissions(client_id=caller.client_id)
        except AccessStoreUnavailable as exc:
            raise faults.service_failed("DatabaseError", f"The permission store is not available: {exc}") from None
        return ok({"client": caller.client_id, "authenticated_by": caller.authenticated_by,
                   "permissions": [permission_json(p, catalog.get(p.dataset)) for p in held]})

    def _openapi(self, catalog: Catalog, caller: Caller, environ: dict[str, Any]) -> Answer:
        """The document narrowed to the caller: the datasets it may call, the fields it may read."""
        visible = self.visible_datasets(catalog, caller, environ.get(PERMISSION_HEADER) or None)
        return ok(build_openapi(visible, self.base_url, caller.client_id))

    def visible_datasets(self, datasets: Iterable[Dataset], caller: Caller, number: str | None) -> list[Dataset]:
        """The datasets a caller's OpenAPI shows, each narrowed to the fields it may read (also /r1's getOpenAPI)."""
        visible = []
        for d in datasets:
            try:
                decision = self.policy.decide(caller, d, number if number else None, require_choice=True)
            except AccessStoreUnavailable as exc:
                raise faults.service_failed("DatabaseError", f"The permission store is not available: {exc}") from None
            if decision.allowed:
                visible.append(narrowed(d, decision.fields))
            elif decision.refusal == AMBIGUOUS:  # each permission reads its fields: the document shows them all
                visible.append(narrowed(d, self._union_of_fields(caller, d)))
        return visible

    def _union_of_fields(self, caller: Caller, dataset: Dataset) -> tuple[str, ...] | None:
        usable = [p for p in self.registry.permissions(client_id=caller.client_id, dataset=dataset.dataset,
                                                       include_revoked=False) if p.usable()]
        if any(p.fields is None for p in usable):
            return None
        return tuple(sorted({name for p in usable for name in (p.fields or ())}))


def _bounded(text: str | None, name: str, low: int, high: int | None, default: int) -> int:
    if text is None:
        return default
    try:
        value = int(text.strip())
    except ValueError:
        raise BridgeFault(faults.INVALID_REQUEST, f"{name} must be an integer, not {text!r}") from None
    if value < low or (high is not None and value > high):
        bounds = f"from {low}" + (f" to {high}" if high is not None else "")
        raise BridgeFault(faults.INVALID_REQUEST, f"{name} must be {bounds}, not {value}")
    return value
