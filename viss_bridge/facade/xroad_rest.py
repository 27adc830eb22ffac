"""X-Road REST (PR-REST 1.0, ``/r1/...``): every dataset as an X-Road REST service.

``GET /r1/{INSTANCE}/{CLASS}/{MEMBER}/{SUBSYSTEM}/{SERVICECODE}[/path]`` with ``X-Road-Client:
INSTANCE/CLASS/MEMBER[/SUBSYSTEM]`` (docs/rest.md). The service identifier is the one /xroad routes
on: the dataset's ``owner`` and its name as serviceCode (:meth:`XRoadFacade.service_dataset`, the
one mapping). Below it, the dataset's resources are exactly /rest's (``/{key}``, ``?field=value``,
``/changes``, and whatever /rest adds), answered by :meth:`RestFace.dataset_answer`: the same JSON,
guarded read, counting and permission choice (``X-DAGR-Permission``).

What this module adds is the dialect:

- the caller: ``X-Road-Client`` is required (``Client.MissingHeaderField``) and weighed by the same
  rule as on /rest and /xroad (certificate or trusted proxy; the header alone only in development);
- the answer's ``X-Road-Client``, ``X-Road-Service``, ``X-Road-Id`` (the consumer's, or a new UUID),
  ``X-Road-Request-Id`` (the exchange id: ``viss-bridge log find --exchange``) and
  ``X-Road-Request-Hash``: PR-REST's ``base64(SHA512(SHA512(head) || SHA512(body)))`` over the request
  *as logged* (request line and headers; ``SHA512(head)`` alone without a body), so a security
  officer recomputes it from the log record;
- errors as PR-REST's ``{"type", "message", "detail"}`` (detail: the fault UUID) with ``X-Road-Error``;
  the HTTP status is /rest's for the same fault (:func:`problems.problem_kind`); ``type`` is the
  bridge's fault code, ``Client.InvalidRequest`` named ``Client.BadRequest`` as PR-REST does. A
  missing record is the service's own answer (404, ``Client.NotFound``), not an X-Road error: no
  ``X-Road-Error``, and it is counted like SOAP's empty answer;
- the metaservices ``listMethods``, ``allowedMethods`` (through the same permission policy) and
  ``getOpenAPI?serviceCode=`` (the /rest document of that dataset, narrowed to the caller, re-based
  on the service: :func:`service_openapi`).

Messages are logged by the one exchange pipeline as /rest's are (request line, headers with secrets
redacted, body), endpoint and dialect ``r1``.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
from typing import Any, Callable, Iterable

from viss_bridge.access.identity import InvalidIdentifier, check_part
from viss_bridge.catalog.manifest import Dataset
from viss_bridge.facade import faults
from viss_bridge.facade.exchange import CallInfo, time_ordered_uuid
from viss_bridge.facade.faults import BridgeFault
from viss_bridge.facade.openapi import build_openapi
from viss_bridge.facade.pipeline import Answer, ExchangePipeline
from viss_bridge.facade.problems import METHOD_NOT_ALLOWED, NOT_FOUND, PROBLEM_CONTENT_TYPE, problem_kind
from viss_bridge.facade.rest import (CLIENT_HEADER, MESSAGE_ID_HEADER, PERMISSION_HEADER, USER_ID_HEADER, RestFace,
                                     ok, read_request_body, request_bytes, response_bytes, status_line)
from viss_bridge.facade.xroad_headers import XRoadId
from viss_bridge.observability import bounded_label

ENDPOINT = "r1"
PREFIX = "/r1"
METASERVICES = ("listMethods", "allowedMethods", "getOpenAPI")
CONTENT_TYPE = "application/json; charset=utf-8"
BAD_REQUEST = "Client.BadRequest"  # PR-REST's name for a request that does not fit (our Client.InvalidRequest)
REPRESENTED_PARTY_HEADER = "HTTP_X_ROAD_REPRESENTED_PARTY"
ISSUE_HEADER = "HTTP_X_ROAD_ISSUE"
MAX_HEADER = 255  # X-Road's column sizes for id, userId, issue

ERROR_SCHEMA = {
    "type": "object", "required": ["type", "message", "detail"], "additionalProperties": False,
    "description": "X-Road REST error (PR-REST 4.6); detail is the fault UUID that finds the exchange in the "
                   "message log. Sent with the X-Road-Error header, except a missing record (Client.NotFound), "
                   "which is the service's own answer",
    "properties": {"type": {"type": "string"}, "message": {"type": "string"},
                   "detail": {"type": "string", "pattern": "^[0-9a-f-]{36}$"}}}


def error_type(code: str) -> str:
    """The PR-REST ``type`` of a bridge fault code."""
    if code == faults.INVALID_REQUEST or code.startswith(faults.INVALID_REQUEST + "."):
        return BAD_REQUEST + code.removeprefix(faults.INVALID_REQUEST)
    return code


def error_answer(fault: BridgeFault, served: bool = False) -> Answer:
    body = json.dumps({"type": error_type(fault.code), "message": fault.message, "detail": fault.fault_id},
                      ensure_ascii=False).encode()
    return Answer(problem_kind(fault.code).status, body, CONTENT_TYPE, fault=fault, served=served)


def request_hash(logged_request: bytes) -> str:
    """PR-REST's X-Road-Request-Hash of a request as the log holds it (head, blank line, body)."""
    head, sep, body = logged_request.partition(b"\r\n\r\n")
    head += sep
    digest = hashlib.sha512(head).digest()
    if body:
        digest = hashlib.sha512(digest + hashlib.sha512(body).digest()).digest()
    return base64.b64encode(digest).decode()


def service_openapi(document: dict[str, Any], dataset: Dataset, server: str) -> dict[str, Any]:
    """The /rest document of one dataset as the X-Road REST service's own description.

    The paths below ``/rest/{dataset}`` become the service's paths (X-Road maps the serviceId to
    the service's base), errors are PR-REST's JSON, and the only server is the service's /r1 base.
    """
    prefix = f"/rest/{dataset.dataset}"
    paths: dict[str, Any] = {}
    for path, item in document["paths"].items():
        if path != prefix and not path.startswith(prefix + "/"):
            continue
        item = copy.deepcopy(item)
        for operation in item.values():
            for response in operation.get("responses", {}).values():
                content = response.get("content", {})
                if PROBLEM_CONTENT_TYPE in content:
                    del content[PROBLEM_CONTENT_TYPE]
                    content["application/json"] = {"schema": {"$ref": "#/components/schemas/XRoadError"}}
        paths[path.removeprefix(prefix) or "/"] = item
    schemas = {name: schema for name, schema in document["components"]["schemas"].items()
               if name.startswith(f"{dataset.dataset}_")}
    schemas["XRoadError"] = ERROR_SCHEMA
    result = dict(document, paths=paths, servers=[{"url": server}])
    result["info"] = dict(document["info"], title=f"{dataset.dataset} (X-Road REST service)",
                          description=f"{dataset.title.en}. Called as /r1/<serviceId>/<path> with the X-Road-Client "
                                      "header (PR-REST 1.0); the record fields are those the caller may read.")
    result["components"] = dict(document["components"], schemas=schemas)
    return result


def endpoint_list(document: dict[str, Any]) -> list[dict[str, str]]:
    """PR-MREST's endpoint list of a service description: method and path, path parameters as ``*``."""
    result: list[dict[str, str]] = []
    for path, item in document["paths"].items():
        wildcard = "/".join("*" if part.startswith("{") else part for part in path.split("/"))
        result.extend({"method": method.upper(), "path": wildcard} for method in item)
    return result


class XRoadRestFace:
    """The WSGI handler of ``/r1/...``; it borrows /rest's reader, caller rule, JSON and log sinks."""

    name = ENDPOINT

    def __init__(self, rest: RestFace, published: Callable[[], Any]) -> None:
        self.rest = rest
        self.published = published  # the current catalog version (its X-Road facade maps service ids)
        self.exchanges = ExchangePipeline(refusal=rest.exchanges.refusal, sinks=rest.sinks)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        answer = self.exchanges.serve(_Call(self, environ), self.published(), environ)
        start_response(status_line(answer.status), answer.headers)
        return [answer.body]

    # -- routing -------------------------------------------------------------------------------------

    def route(self, published: Any, environ: dict[str, Any], info: CallInfo, call: "_Call") -> Answer:
        parts = [p for p in (environ.get("PATH_INFO") or "").removeprefix(PREFIX).split("/")]
        parts = parts[1:] if parts and parts[0] == "" else parts
        if parts and parts[-1] == "":
            parts.pop()
        _optional(environ, MESSAGE_ID_HEADER, "X-Road-Id")
        info.message_id = call.message_id
        info.user_id = _optional(environ, USER_ID_HEADER, "X-Road-UserId")
        _optional(environ, ISSUE_HEADER, "X-Road-Issue")
        _represented_party(environ.get(REPRESENTED_PARTY_HEADER))
        xroad = published.xroad
        service, rest_of_path = self._service(xroad, parts)
        call.service = str(service)
        info.service, info.operation = str(service), service.service_code
        if (environ.get("REQUEST_METHOD") or "GET").upper() != "GET":
            raise BridgeFault(METHOD_NOT_ALLOWED, "X-Road REST services of the bridge answer GET only")
        claimed = (environ.get(CLIENT_HEADER) or "").strip()
        if not claimed:
            raise BridgeFault(faults.MISSING_HEADER, "Required header 'X-Road-Client' is missing "
                                                     "(INSTANCE/CLASS/MEMBER[/SUBSYSTEM], PR-REST 4.3)")
        caller = self.rest._caller(environ, info)
        query = self.rest._query(environ)
        number = environ.get(PERMISSION_HEADER) or None
        if service.service_code in METASERVICES:
            if rest_of_path:
                raise BridgeFault(faults.UNKNOWN_SERVICE, f"{service.service_code} has no resource "
                                                          f"/{'/'.join(rest_of_path)}")
            return self._metaservice(xroad, service, caller, query, number)
        dataset = xroad.service_dataset(service)
        return self.rest.dataset_answer(dataset, rest_of_path, query, caller, number, info)

    def _service(self, xroad: Any, parts: list[str]) -> tuple[XRoadId, list[str]]:
        """The serviceId at the start of the path (subsystem optional, as PR-REST allows) and the rest."""
        if len(parts) < 4:
            raise BridgeFault(faults.INVALID_REQUEST, "The request path is not /r1/INSTANCE/CLASS/MEMBER/SUBSYSTEM/SERVICECODE"
                                           "[/path] (X-Road Message Protocol for REST r1)", 400)
        with_subsystem = len(parts) >= 5 and (xroad.is_provider("/".join(parts[:4]))
                                              or not xroad.is_provider("/".join(parts[:3])))
        try:
            if with_subsystem:
                service = XRoadId("SERVICE", parts[0], parts[1], parts[2], subsystem=parts[3], service_code=parts[4])
            else:
                service = XRoadId("SERVICE", parts[0], parts[1], parts[2], service_code=parts[3])
        except InvalidIdentifier as exc:
            raise BridgeFault(faults.INVALID_SERVICE_IDENTIFIER, f"The serviceId in the path: {exc}") from None
        xroad.check_instance(service)
        xroad.known_provider(service)
        return service, parts[5:] if with_subsystem else parts[4:]

    # -- metaservices (PR-MREST) ---------------------------------------------------------------------

    def _metaservice(self, xroad: Any, service: XRoadId, caller: Any, query: dict[str, str],
                     number: str | None) -> Answer:
        code = service.service_code
        provided = xroad.services_of(service.provider)
        if code == "getOpenAPI":
            unknown = set(query) - {"serviceCode"}
            if unknown or not query.get("serviceCode"):
                raise BridgeFault(faults.INVALID_REQUEST, "getOpenAPI takes one query parameter, serviceCode")
            try:
                target = XRoadId("SERVICE", service.instance, service.member_class, service.member_code,
                                 service.subsystem, query["serviceCode"])
            except InvalidIdentifier as exc:
                raise BridgeFault(faults.INVALID_SERVICE_IDENTIFIER, f"getOpenAPI: {exc}") from None
            return ok(self.openapi(xroad, xroad.service_dataset(target), caller, number))
        if query:
            raise BridgeFault(faults.INVALID_REQUEST, f"{code} takes no query parameters")
        if code == "allowedMethods":
            provided = self.rest.reader.permissions.allowed(caller, provided)
        services = []
        for dataset in provided:
            sid = xroad.service_id(dataset, version=False)
            entry = {"object_type": "SERVICE", "xroad_instance": sid.instance, "member_class": sid.member_class,
                     "member_code": sid.member_code, "subsystem_code": sid.subsystem, "service_code": sid.service_code,
                     "service_type": "OPENAPI"}
            document = service_openapi(build_openapi([dataset], self.rest.base_url, None), dataset, "")
            entry["endpoint_list"] = endpoint_list(document)
            services.append({k: v for k, v in entry.items() if v is not None})
        return ok({"service": services})

    def openapi(self, xroad: Any, dataset: Dataset, caller: Any, number: str | None) -> dict[str, Any]:
        """getOpenAPI: the dataset's description with the fields this caller may read; refused if it may read none."""
        visible = self.rest.visible_datasets([dataset], caller, number)
        if not visible:
            self.rest.reader.decide(caller, dataset, number)  # raises the policy's AccessDenied, with its reason
            raise BridgeFault(faults.ACCESS_DENIED, f"{dataset.dataset} is not open to this client")
        server = f"{self.rest.base_url}{PREFIX}/{xroad.service_id(dataset, version=False)}"
        return service_openapi(build_openapi(visible, self.rest.base_url, caller.client_id), dataset, server)

    def label(self, published: Any, info: CallInfo) -> str:
        return bounded_label(info.operation, set(published.catalog.datasets) | set(METASERVICES))


class _Call:
    """One /r1 exchange as the pipeline drives it: the face plus what this request said (for every answer's headers)."""

    def __init__(self, face: XRoadRestFace, environ: dict[str, Any]) -> None:
        self.face, self.environ, self.name = face, environ, face.name
        self.raw = b""
        self.service: str | None = None
        self.message_id = _optional(environ, MESSAGE_ID_HEADER, "X-Road-Id", strict=False) or time_ordered_uuid()

    def read(self, environ: dict[str, Any]) -> bytes:
        self.raw = read_request_body(environ)
        return self.raw

    def answer(self, published: Any, raw: bytes, environ: dict[str, Any], info: CallInfo) -> Answer:
        answer = self.face.route(published, environ, info, self)  # a BridgeFault raised goes to refused()
        if answer.fault is not None:  # /rest's own answer with a fault (a missing record), in PR-REST's form
            answer = error_answer(answer.fault, served=answer.served)
        return self._with_headers(answer, info)

    def refused(self, fault: BridgeFault, info: CallInfo) -> Answer:
        return self._with_headers(error_answer(fault), info)

    def finish(self, answer: Answer, info: CallInfo) -> Answer:
        return answer

    def wire(self, environ: dict[str, Any], raw: bytes, answer: Answer) -> tuple[bytes, bytes]:
        return request_bytes(environ, raw), response_bytes(answer.status, answer.headers, answer.body)

    def label(self, published: Any, info: CallInfo) -> str:
        return self.face.label(published, info)

    def _with_headers(self, answer: Answer, info: CallInfo) -> Answer:
        headers = [("Content-Type", CONTENT_TYPE), ("Content-Length", str(len(answer.body))),
                   ("Cache-Control", "no-store")]
        client = (self.environ.get(CLIENT_HEADER) or "").strip()
        if client:
            headers.append(("X-Road-Client", client))
        if self.service:
            headers.append(("X-Road-Service", self.service))
        headers += [("X-Road-Id", self.message_id), ("X-Road-Request-Id", info.exchange_id),
                    ("X-Road-Request-Hash", request_hash(request_bytes(self.environ, self.raw)))]
        if info.permission and answer.fault is None:
            headers.append(("X-DAGR-Permission", info.permission))
        if answer.fault is not None and answer.fault.code != NOT_FOUND:
            headers.append(("X-Road-Error", error_type(answer.fault.code)))
        if answer.fault is not None and answer.fault.code == METHOD_NOT_ALLOWED:
            headers.append(("Allow", "GET, HEAD"))
        return Answer(answer.status, answer.body, CONTENT_TYPE, headers, answer.fault, answer.served)


def _optional(environ: dict[str, Any], key: str, name: str, strict: bool = True) -> str | None:
    """An optional X-Road header's value; a value over the limit or with control characters is refused."""
    value = (environ.get(key) or "").strip()
    if not value:
        return None
    if len(value) > MAX_HEADER or any(ord(c) < 32 for c in value):
        if not strict:
            return None  # the message id of the answer: a fresh one; the route refuses the header itself
        raise BridgeFault(faults.INVALID_REQUEST, f"Header {name} is longer than {MAX_HEADER} characters or holds control "
                                       "characters", 400)
    return value


def _represented_party(value: str | None) -> None:
    """X-Road-Represented-Party is ``[CLASS/]CODE`` (PR-REST 4.3); it is logged with the request."""
    if value is None or not value.strip():
        return
    parts = value.strip().split("/")
    try:
        if len(parts) > 2:
            raise InvalidIdentifier(f"'{value}' is not [CLASS/]CODE")
        for name, part in zip(("memberClass", "memberCode")[-len(parts):], parts):
            check_part(name, part, False)
    except InvalidIdentifier as exc:
        raise BridgeFault(faults.INVALID_REQUEST, f"Header X-Road-Represented-Party: {exc}", 400) from None
