"""The platform as a source: a DAGR-style REST API read over HTTPS with the protections of a legacy provider.

A dataset with ``source.kind: platform`` is answered by the generation-III platform (or by this
bridge's own ``/rest`` face on another node): ``GET {url}/{dataset}/{key}`` live, or replicated
into the store by ``viss-bridge sync`` through ``GET {url}/{dataset}/changes?since=&limit=``.

* One ``requests.Session`` per platform (a connection pool, reused by every thread), with the
  connection's client certificate and key, the CA bundle that verifies the platform's TLS
  certificate (the system's CAs by default: never unverified), an optional ``Authorization: Bearer``
  token and ``X-DAGR-Permission`` on every call; connect and read timeouts always set; no
  redirects followed, no proxy or netrc settings picked up from the environment; answers capped at
  :data:`MAX_ANSWER_BYTES`.
* The breaker, the concurrency cap and the read retries are the legacy SOAP client's
  (:class:`~viss_bridge.upstream.resilience.CallGuard`).
* Every HTTP exchange (request line, headers with the token redacted, body; status line, headers,
  body) goes to the sink (the message log) as a :class:`ProviderCall` of dialect ``rest``, retries
  included, with the consumer call's exchange id; the request carries that id as ``X-Road-Id``, so
  the platform's own log finds it too. A call that cannot be logged fails (``LoggingFailed``).
* Answers are JSON typed by the manifest and converted with the project's value codecs
  (:func:`~viss_bridge.catalog.values.record_to_python`; decimals parsed exactly), so a record from
  the platform equals the same record in a store.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from urllib.parse import quote, urlsplit

import requests
from requests.adapters import HTTPAdapter

from viss_bridge.catalog.manifest import Dataset, Field, FieldType
from viss_bridge.catalog.legacy_source import Retries
from viss_bridge.catalog.platform_source import PlatformSource
from viss_bridge.catalog.values import ValueProblem, compose_key, key_text, record_to_python, to_python
from viss_bridge.upstream import errors
from viss_bridge.upstream.client import CALLER, ProviderCall, ProviderCallSink
from viss_bridge.upstream.errors import UpstreamError
from viss_bridge.upstream.resilience import CallGuard, failure as _failure, transport_failure

MAX_ANSWER_BYTES = 16 * 1024 * 1024  # a feed page of 1000 deep records is far below this
REDACTED = frozenset({"authorization", "proxy-authorization", "cookie", "set-cookie"})  # logged as [redacted]
FEED_SEGMENT = "changes"
_CHANGED_AT = Field(name="changed_at", type=FieldType.DATETIME)
_NOT_FOUND = object()  # the platform's 404 not-found: an answer, not a failure (the breaker counts a success)


@dataclass(frozen=True)
class PlatformConnection:
    """Who this bridge is towards the platform: node settings (``platform_*``), never manifest keys."""

    cert: str = ""
    key: str = ""
    ca: str = ""
    token: str = field(default="", repr=False)
    permission: str = ""
    client: str = ""

    @classmethod
    def from_settings(cls, settings: Any) -> "PlatformConnection":
        return cls(cert=settings.platform_cert, key=settings.platform_key, ca=settings.platform_ca,
                   token=settings.platform_token, permission=settings.platform_permission,
                   client=settings.platform_client)


@dataclass
class PlatformPage:
    """One page of the platform's changed-records feed, converted."""

    records: list[dict[str, Any]]  # changed records (Python values), oldest first
    deleted: list[dict[str, Any]]  # key values of deleted records
    withheld: int  # changes the platform withheld (the person restricted the register): not copied
    next_since: int
    more: bool
    last_changed_at: dt.datetime | None


def platform_source(dataset: Dataset) -> PlatformSource:
    source = dataset.source
    if not isinstance(source, PlatformSource):
        raise ValueError(f"dataset {dataset.dataset} does not have a platform source")
    return source


def record_from_json(dataset: Dataset, document: Any, where: str = "") -> dict[str, Any]:
    """A record as the platform answers it (JSON typed as docs/rest.md says) -> the store's Python values.

    Raises ValueProblem for a value that does not fit the manifest or a field it does not have."""
    return record_to_python(dataset.fields, document, where)


def request_bytes(prepared: requests.PreparedRequest) -> bytes:
    """The request as sent, for the log: request line, headers (secrets redacted), body."""
    parts = urlsplit(prepared.url or "")
    lines = [f"{prepared.method} {prepared.path_url} HTTP/1.1", f"Host: {parts.netloc}"]
    for name, value in prepared.headers.items():
        lines.append(f"{name}: {'[redacted]' if name.lower() in REDACTED else value}")
    body = prepared.body or b""
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1", "replace") + (
        body.encode() if isinstance(body, str) else body)


def response_bytes(response: requests.Response, body: bytes) -> bytes:
    head = [f"HTTP/1.1 {response.status_code} {response.reason or ''}".rstrip(),
            *(f"{k}: {'[redacted]' if k.lower() in REDACTED else v}" for k, v in response.headers.items())]
    return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1", "replace") + body


class PlatformClient:
    """Everything the bridge keeps per platform: HTTP session (pool, TLS identity), breaker, concurrency cap."""

    def __init__(self, source: PlatformSource, connection: PlatformConnection,
                 sink: ProviderCallSink | None = None) -> None:
        self.source = source
        self.name = source.provider_name
        self.base_url = source.base_url
        self.connection = connection
        self.sink = sink
        self.guard = CallGuard(self.name, failures=source.breaker.failures, reset_after=source.breaker.reset_after,
                               max_concurrent=source.max_concurrent, attempts=source.retries.attempts,
                               backoff=source.retries.backoff, connect_timeout=source.timeouts.connect,
                               operation_timeout=source.timeouts.operation)
        self.breaker = self.guard.breaker
        session = requests.Session()
        session.trust_env = False  # no REQUESTS_CA_BUNDLE, proxy or netrc from the environment: settings decide
        adapter = HTTPAdapter(pool_connections=1, pool_maxsize=source.max_concurrent, max_retries=0)
        session.mount("https://", adapter)
        session.mount("http://", adapter)
        session.verify = connection.ca or True
        if connection.cert:
            session.cert = (connection.cert, connection.key)
        session.headers.update({"Accept": "application/json, application/problem+json",
                                "User-Agent": "viss-bridge"})
        if connection.token:
            session.headers["Authorization"] = f"Bearer {connection.token}"
        if connection.client:
            session.headers["X-Road-Client"] = connection.client
        self.session = session

    # -- calls -------------------------------------------------------------------------------

    def get(self, path: str, params: dict[str, str] | None = None, *, operation: str,
            permission: str | None = None) -> Any:
        """GET ``{url}/{path}``: the JSON document, None for the platform's 404 not-found, or UpstreamError."""
        url = f"{self.base_url}/{path}"
        headers: dict[str, str] = {}
        number = permission or self.connection.permission
        if number:
            headers["X-DAGR-Permission"] = number
        caller = CALLER.get()
        if getattr(caller, "exchange_id", None):
            headers["X-Road-Id"] = str(caller.exchange_id)  # the platform's log finds this call by it
        if getattr(caller, "user_id", None):
            headers["X-Road-UserId"] = str(caller.user_id)
        prepared = self.session.prepare_request(requests.Request("GET", url, params=params, headers=headers))
        answer = self.guard.run(operation, lambda attempt: self._attempt(prepared, operation, attempt), read=True)
        return None if answer is _NOT_FOUND else answer

    def _attempt(self, prepared: requests.PreparedRequest, operation: str, attempt: int) -> Any:
        source = self.source
        record = ProviderCall(self.name, operation, prepared.url or "", dt.datetime.now(dt.timezone.utc), 0.0,
                              request_bytes(prepared), b"", None, None, attempt, CALLER.get(), dialect="rest")
        started = time.perf_counter()
        response: requests.Response | None = None
        body = b""
        failure: BaseException | None = None
        try:
            response = self.session.send(prepared, timeout=(source.timeouts.connect, source.timeouts.operation),
                                         stream=True, allow_redirects=False)
            # requests' read timeout is per socket read: a platform dripping bytes is cut at the whole budget
            body = _read_capped(response, started + source.timeouts.connect + source.timeouts.operation)
            record.status = response.status_code
            record.response = response_bytes(response, body)
        except (requests.RequestException, _TooLarge) as exc:
            failure = exc
            record.error = f"{exc.__class__.__name__}: {_short(exc)}"
            if response is not None:
                record.status = response.status_code
        finally:
            record.duration_ms = round((time.perf_counter() - started) * 1000, 3)
            if response is not None:
                response.close()
        if self.sink is not None:
            try:
                self.sink.record(record)
            except Exception as exc:
                return UpstreamError(errors.LOGGING_FAILED, self.name,
                                     f"the exchange with platform {self.name} could not be logged: {exc}")
        if failure is not None:
            return self._transport_failure(failure, operation)
        assert response is not None
        return self._classify(response.status_code, body, operation)

    def _transport_failure(self, exc: BaseException, operation: str) -> UpstreamError:
        name, timeouts = self.name, self.source.timeouts
        if isinstance(exc, _TooLarge):
            return _failure(errors.INVALID_RESPONSE, name, f"platform {name} answered more than "
                             f"{MAX_ANSWER_BYTES} bytes to {operation}")
        transport = transport_failure(exc, "platform", name, operation, timeouts.connect, timeouts.operation)
        if transport is not None:
            return transport
        return _failure(errors.INVALID_RESPONSE, name, f"platform {name}: {_short(exc)}")

    def _classify(self, status: int, body: bytes, operation: str) -> Any:
        """The platform's HTTP answer in the bridge's words (docs/rest.md, "The platform as a source")."""
        name = self.name
        try:
            document = json.loads(body, parse_float=Decimal) if body else None
        except (ValueError, UnicodeDecodeError):
            document = None
        problem = document if isinstance(document, dict) else {}
        kind = str(problem.get("type") or "").rsplit(":", 1)[-1]
        said = f"{status} {kind or 'error'}: {problem.get('detail') or problem.get('title') or ''}".rstrip(": ")
        if status == 200:
            if not isinstance(document, dict):
                return _failure(errors.INVALID_RESPONSE, name, f"platform {name} answered {operation} without a "
                                                                "JSON object")
            return document
        if status == 404 and kind == "not-found":
            return _NOT_FOUND
        if status == 404:
            return _failure(errors.PROVIDER_CONFIG, name, f"platform {name} does not serve {operation} ({said})")
        if status in (401, 403) or (status == 400 and kind == "permission-required"):
            return _failure(errors.PLATFORM_ACCESS_DENIED, name,
                             f"platform {name} refused this bridge's connection for {operation} ({said})")
        if status == 400:
            code = str(problem.get("fault_code") or "Client.InvalidRequest")
            return UpstreamError(errors.PROVIDER_FAULT, name, f"platform {name} refused the request for "
                                 f"{operation} ({said})", provider_fault_code=code)
        if status == 429:
            return _failure(errors.PROVIDER_BUSY, name, f"platform {name} is busy ({said})")
        if status == 504:
            return _failure(errors.PROVIDER_TIMEOUT, name, f"platform {name} timed out answering {operation} ({said})")
        if status in (502, 503):
            return _failure(errors.PROVIDER_UNAVAILABLE, name, f"platform {name} is unavailable ({said})",
                             retryable=True)
        if status >= 500:
            return UpstreamError(errors.PROVIDER_FAULT, name, f"platform {name} failed answering {operation} ({said})",
                                 provider_fault_code=str(problem.get("fault_code") or f"Server.HTTP{status}"))
        return _failure(errors.INVALID_RESPONSE, name, f"platform {name} answered {operation} with HTTP {status}")


class _TooLarge(Exception):
    pass


def _read_capped(response: requests.Response, deadline: float) -> bytes:
    """The answer's body, at most MAX_ANSWER_BYTES, complete before ``deadline`` (time.perf_counter)."""
    chunks, size = [], 0
    for chunk in response.iter_content(64 * 1024):
        size += len(chunk)
        if size > MAX_ANSWER_BYTES:
            raise _TooLarge(f"more than {MAX_ANSWER_BYTES} bytes")
        if time.perf_counter() > deadline:
            raise requests.exceptions.ReadTimeout("the answer did not arrive whole in time")
        chunks.append(chunk)
    return b"".join(chunks)


def _short(exc: BaseException) -> str:
    text = str(exc)
    return text if len(text) < 200 else text[:200] + "..."


class PlatformPool:
    """One :class:`PlatformClient` per platform provider name, created on first use and shared by all threads."""

    def __init__(self, connection: PlatformConnection | None = None, sink: ProviderCallSink | None = None) -> None:
        self.connection = connection or PlatformConnection()
        self.sink = sink
        self._clients: dict[str, tuple[str, PlatformClient]] = {}
        self._lock = threading.Lock()

    def client(self, source: PlatformSource) -> PlatformClient:
        key = source.settings_key()
        with self._lock:
            known = self._clients.get(source.provider_name)
            if known is not None and known[0] == key:
                return known[1]
            client = PlatformClient(source, self.connection, self.sink)
            self._clients[source.provider_name] = (key, client)
            if known is not None:  # a manifest changed the platform's settings: let the old pool's sockets go
                known[1].session.close()
            return client

    def breaker_states(self) -> dict[str, str]:
        with self._lock:
            return {name: client.breaker.state for name, (_, client) in self._clients.items()}

    # -- dataset reads ---------------------------------------------------------------------------

    def lookup(self, dataset: Dataset, key_values: dict[str, Any]) -> dict[str, Any] | None:
        """The record with this key from the platform, or None if it has none. ValueProblem for a bad key."""
        source = platform_source(dataset)
        keys: dict[str, str] = {}
        for f in dataset.key_fields:
            if key_values.get(f.name) in (None, ""):
                raise ValueProblem(f"key field '{f.name}' is missing")
            keys[f.name] = key_text(f, key_values[f.name])
        remote = source.remote_name(dataset.dataset)
        value = next(iter(keys.values()))
        if len(keys) == 1 and value != FEED_SEGMENT and "/" not in value:
            path, params = f"{quote(remote, safe='')}/{quote(value, safe='')}", None
        else:  # composite keys, and values the path form cannot carry
            path, params = quote(remote, safe=""), keys
        client = self.client(source)
        document = client.get(path, params, operation=remote, permission=source.permission)
        if document is None:
            return None
        record = self._record(client, dataset, document)
        if compose_key(dataset.key_fields, record) != compose_key(dataset.key_fields, keys):
            raise UpstreamError(errors.INVALID_RESPONSE, client.name,
                                f"platform {client.name} answered {remote} with another record than the one asked")
        return record

    def changes(self, dataset: Dataset, since: int) -> PlatformPage:
        """One page of the platform's feed after cursor ``since``, converted (records, deletions, withheld)."""
        source = platform_source(dataset)
        remote = source.remote_name(dataset.dataset)
        client = self.client(source)
        document = client.get(f"{quote(remote, safe='')}/{FEED_SEGMENT}",
                              {"since": str(since), "limit": str(source.page_size)},
                              operation=f"{remote}/{FEED_SEGMENT}", permission=source.permission)
        if document is None:
            raise UpstreamError(errors.PROVIDER_CONFIG, client.name, f"platform {client.name} has no feed for {remote}")
        items, next_since, more = document.get("changes"), document.get("next_since"), document.get("has_more")
        if not isinstance(items, list) or type(next_since) is not int or not isinstance(more, bool) \
                or next_since < since or (more and next_since == since):
            raise UpstreamError(errors.INVALID_RESPONSE, client.name,
                                f"platform {client.name}: the feed page of {remote} is not "
                                "{changes: [...], next_since: N, has_more: bool} moving forward")
        page = PlatformPage([], [], 0, next_since, more, None)
        for index, item in enumerate(items):
            where = f"changes[{index}]"
            if not isinstance(item, dict):
                raise UpstreamError(errors.INVALID_RESPONSE, client.name, f"{remote} feed: {where} is no object")
            try:
                changed = to_python(_CHANGED_AT, item.get("changed_at"), f"{where}.changed_at")
                if item.get("withheld"):
                    page.withheld += 1
                elif item.get("deleted"):
                    key = item.get("key")
                    if not isinstance(key, dict):
                        raise ValueProblem(f"{where}.key: expected an object of the key fields")
                    page.deleted.append(record_to_python(dataset.key_fields, key, f"{where}.key"))
                else:
                    page.records.append(self._record(client, dataset, item.get("record"), f"{where}.record"))
            except ValueProblem as exc:
                raise UpstreamError(errors.INVALID_RESPONSE, client.name,
                                    f"platform {client.name}: {remote} feed: {exc}") from exc
            if changed is not None:
                page.last_changed_at = changed
        return page

    @staticmethod
    def _record(client: PlatformClient, dataset: Dataset, document: Any, where: str = "") -> dict[str, Any]:
        try:
            return record_from_json(dataset, document, where)
        except ValueProblem as exc:
            raise UpstreamError(errors.INVALID_RESPONSE, client.name, f"a record from platform {client.name} does "
                                f"not fit dataset {dataset.dataset}: {exc}") from exc

    # -- the platform's own documents (catalog import-platform) -----------------------------------

    def document(self, url: str, path: str, permission: str | None = None) -> Any:
        """GET ``{url}/{path}`` (``service_list``, ``openapi.json``) as JSON, with the connection and protections."""
        source = PlatformSource(kind="platform", url=url, retries=Retries(attempts=2, backoff=0.2))
        answer = self.client(source).get(path, operation=path, permission=permission)
        if answer is None:
            raise UpstreamError(errors.PROVIDER_CONFIG, source.provider_name, f"{url}/{path}: not found")
        return answer


