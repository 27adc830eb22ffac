"""The SOAP pipeline in-process (a WSGI environ, no gunicorn): every step in its order, for any endpoint."""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from typing import Any

from lxml import etree

from viss_bridge.catalog.catalog import Catalog
from viss_bridge.facade import faults
from viss_bridge.facade.exchange import CallInfo, Exchange
from viss_bridge.facade.faults import BridgeFault
from viss_bridge.facade.pipeline import HttpAnswer, Published, SoapPipeline
from viss_bridge.facade.soap_runtime import SoapRequest, SoapResponse
from viss_bridge.xml import NS_SOAP11, NS_SOAP12

ENVELOPE = (b"<e:Envelope xmlns:e='%s'><e:Body><op xmlns='urn:x'><v>1</v></op></e:Body></e:Envelope>")


@dataclass
class Use:
    settled: list[bool] = field(default_factory=list)

    def commit(self) -> None:
        self.settled.append(True)

    def release(self) -> None:
        self.settled.append(False)


@dataclass
class Endpoint:
    name: str = "test"
    soap_ns: str = NS_SOAP11
    fault: BridgeFault | None = None
    use: Use = field(default_factory=Use)
    seen: list[SoapRequest] = field(default_factory=list)

    def handle(self, published: Published, request: SoapRequest, environ: dict[str, Any], info: CallInfo) -> SoapResponse:
        self.seen.append(request)
        info.uses.append(self.use)
        if self.fault:
            raise self.fault
        return SoapResponse(200, b"<answer/>")

    def wsdl(self, published: Published, environ: dict[str, Any], query: dict[str, list[str]]) -> HttpAnswer:
        return HttpAnswer.xml(b"<definitions/>")


class Sink:
    def __init__(self, fail: bool = False) -> None:
        self.fail = fail
        self.exchanges: list[Exchange] = []

    def record(self, exchange: Exchange) -> None:
        if self.fail:
            raise OSError("disk full")
        self.exchanges.append(exchange)


PUBLISHED = Published(Catalog({}), None, None, 0.0)


def _environ(body: bytes) -> dict[str, Any]:
    return {"wsgi.input": io.BytesIO(body), "CONTENT_LENGTH": str(len(body)), "REQUEST_METHOD": "POST",
            "REMOTE_ADDR": "127.0.0.1"}


def _pipeline(sink: Sink, refusal: str | None = None, signed: set[str] | None = None) -> SoapPipeline:
    return SoapPipeline(max_message_bytes=10_000, refusal=lambda: refusal, sinks=[sink],
                        sign=lambda body: b"<signed>" + body + b"</signed>", signed_endpoints=signed or set(),
                        service_label=lambda endpoint, published, info: "svc")


def _fault_code(body: bytes) -> str:
    root = etree.fromstring(body)
    code = root.findtext(f".//{{{NS_SOAP11}}}Fault/faultcode") or root.findtext(".//{urn:viss-bridge:faults}faultCode")
    return code or ""


def test_an_answer_is_recorded_before_it_is_returned_and_its_use_settled() -> None:
    sink, endpoint = Sink(), Endpoint()
    response = _pipeline(sink).serve(endpoint, PUBLISHED, _environ(ENVELOPE % NS_SOAP11.encode()))
    assert response.status == 200 and response.body == b"<answer/>"
    assert [e.response for e in sink.exchanges] == [b"<answer/>"]
    assert sink.exchanges[0].request == ENVELOPE % NS_SOAP11.encode()
    assert endpoint.use.settled == [True]


def test_a_log_that_fails_gives_logging_failed_and_gives_the_use_back() -> None:
    endpoint = Endpoint()
    response = _pipeline(Sink(fail=True)).serve(endpoint, PUBLISHED, _environ(ENVELOPE % NS_SOAP11.encode()))
    assert response.status == 500 and _fault_code(response.body) == faults.LOGGING_FAILED
    assert b"<answer/>" not in response.body
    assert endpoint.use.settled == [False]


def test_without_trusted_time_nothing_is_handled() -> None:
    sink, endpoint = Sink(), Endpoint()
    response = _pipeline(sink, refusal="TSA down").serve(endpoint, PUBLISHED, _environ(ENVELOPE % NS_SOAP11.encode()))
    assert response.status == 503 and _fault_code(response.body) == faults.TIMESTAMPING_FAILED
    assert endpoint.seen == [] and len(sink.exchanges) == 1  # the refusal is logged too


def test_soap_versions_differ_only_in_envelope_and_status() -> None:
    refused = BridgeFault(faults.INVALID_REQUEST, "bad")
    for ns, status, content_type in ((NS_SOAP11, 500, "text/xml"), (NS_SOAP12, 400, "application/soap+xml")):
        endpoint = Endpoint(soap_ns=ns, fault=refused)
        response = _pipeline(Sink()).serve(endpoint, PUBLISHED, _environ(ENVELOPE % ns.encode()))
        assert response.status == status and response.content_type.startswith(content_type)
        assert _fault_code(response.body) == faults.INVALID_REQUEST
        assert etree.fromstring(response.body).tag == f"{{{ns}}}Envelope"


def test_a_soap12_envelope_on_a_soap11_endpoint_is_a_version_mismatch_before_handling() -> None:
    endpoint = Endpoint()
    response = _pipeline(Sink()).serve(endpoint, PUBLISHED, _environ(ENVELOPE % NS_SOAP12.encode()))
    assert _fault_code(response.body) == f"SOAP-ENV:{faults.VERSION_MISMATCH}" and endpoint.seen == []


def test_only_configured_endpoints_are_signed_and_the_log_holds_the_signed_bytes() -> None:
    sink = Sink()
    signed = _pipeline(sink, signed={"test"}).serve(Endpoint(), PUBLISHED, _environ(ENVELOPE % NS_SOAP11.encode()))
    plain = _pipeline(sink, signed={"other"}).serve(Endpoint(), PUBLISHED, _environ(ENVELOPE % NS_SOAP11.encode()))
    assert signed.body == b"<signed><answer/></signed>" and plain.body == b"<answer/>"
    assert [e.response for e in sink.exchanges] == [signed.body, plain.body]


def test_an_unexpected_error_is_an_internal_error_with_its_id() -> None:
    class Broken(Endpoint):
        def handle(self, *args: Any) -> SoapResponse:  # type: ignore[override]
            raise KeyError("bug")

    response = _pipeline(Sink()).serve(Broken(), PUBLISHED, _environ(ENVELOPE % NS_SOAP11.encode()))
    assert response.fault is not None and response.fault.code.endswith("InternalError")
    assert response.fault.fault_id.encode() in response.body


def test_exchange_ids_are_time_ordered_uuids() -> None:
    """Version 7 (RFC 9562): unique, and ids of a later millisecond sort after earlier ones (the log's index)."""
    import time
    import uuid

    from viss_bridge.facade.exchange import CallInfo, time_ordered_uuid

    first = [time_ordered_uuid() for _ in range(1000)]
    time.sleep(0.002)
    later = CallInfo().exchange_id
    assert len(set(first)) == 1000
    parsed = uuid.UUID(later)
    assert parsed.version == 7 and parsed.variant == uuid.RFC_4122
    assert abs((parsed.int >> 80) / 1000 - time.time()) < 60  # its first 48 bits are Unix milliseconds
    assert max(first) < later


def test_only_the_last_sink_may_make_an_answers_uses_final() -> None:
    """A sink before the message log must not settle uses: a later sink can still refuse the exchange."""
    import datetime as dt

    from viss_bridge.facade.exchange import CallInfo, Exchange, record_exchange

    seen: list[tuple[str, list[object]]] = []

    class Sink:
        def __init__(self, name: str, fails: bool = False) -> None:
            self.name, self.fails = name, fails

        def record(self, exchange: Exchange) -> None:
            seen.append((self.name, list(exchange.settle)))
            if self.fails:
                raise RuntimeError("down")

    use = object()
    exchange = Exchange(endpoint="xroad", dialect="xroad", started_at=dt.datetime.now(dt.timezone.utc), duration_ms=1.0,
                        request=b"<q/>", response=b"<a/>", status=200, info=CallInfo(), settle=[use])
    assert record_exchange([Sink("first"), Sink("log")], exchange) is None
    assert seen == [("first", []), ("log", [use])]
    seen.clear()
    refused = record_exchange([Sink("first", fails=True), Sink("log")], exchange)
    assert refused is not None and refused.code.endswith("LoggingFailed") and seen == [("first", [])]
