"""The message log as an exchange sink, and WS-Security signing of responses.

:class:`MessageLogSink` turns each :class:`Exchange` into two records of the
consumer leg (the exact request bytes and the exact response bytes) and
appends both in one committed transaction before the response leaves. The
exchange id is ``CallInfo.exchange_id`` (made when the call starts, so a
provider-leg record made while serving it can carry the same id); a fault's
UUID (``faultDetail``) is stored as ``fault_id`` and finds the exchange too.
"""

from __future__ import annotations

import time

from lxml import etree

from viss_bridge.access.audit import AuditEvent
from viss_bridge.facade.exchange import Exchange, time_ordered_uuid
from viss_bridge.observability import APPEND_FAILURES, APPEND_SECONDS
from viss_bridge.msglog import MessageLog, RecordInput
from viss_bridge.security.keys import SigningKey
from viss_bridge.security.wssecurity import NS_WSSE, sign_envelope
from viss_bridge.xml import NS_SOAP11, NS_SOAP12, parse_trusted


class MessageLogSink:
    def __init__(self, msglog: MessageLog) -> None:
        self.msglog = msglog

    def record(self, exchange: Exchange) -> None:
        started = time.perf_counter()
        try:
            self._record(exchange)
        except Exception:
            APPEND_FAILURES.inc()
            raise
        APPEND_SECONDS.observe(time.perf_counter() - started)

    def _record(self, exchange: Exchange) -> None:
        info = exchange.info
        exchange_id = info.exchange_id or exchange.fault_id or time_ordered_uuid()
        provider_leg = exchange.leg == "provider"
        # On the provider leg the peer is the legacy provider; a call that got no answer has an empty response
        # record carrying the reason as its fault code, so the attempt itself is on the chain.
        common = dict(exchange_id=exchange_id, leg=exchange.leg, endpoint=exchange.endpoint, dialect=exchange.dialect,
                      client=info.client, service=info.service, message_id=info.message_id, user_id=info.user_id,
                      subjects=list(dict.fromkeys(info.subjects)),
                      remote_addr=exchange.peer if provider_leg else exchange.remote_addr)
        self.msglog.record(
            RecordInput(body=exchange.request, direction="request", **common),
            RecordInput(body=exchange.response, direction="response", status=exchange.status,
                        fault_code=exchange.fault_code or (f"error: {exchange.error}"[:200] if exchange.error else None),
                        fault_id=exchange.fault_id,
                        duration_us=int(exchange.duration_ms * 1000), **common),
            # settled by the committing thread (facade.exchange.settle_logged)
            then=(exchange_id, exchange.settle) if exchange.settle else None,
        )


def sign_response(body: bytes, key: SigningKey) -> bytes:
    """Sign a response envelope the bridge itself produced (Body and Timestamp, WS-Security 1.1).

    A consumer's own ``wsse:Security`` header echoed into the response (X-Road echoes request headers) is
    dropped first: the response carries exactly one Security header, the bridge's.
    """
    envelope = parse_trusted(body)
    soap_ns = NS_SOAP12 if envelope.tag == f"{{{NS_SOAP12}}}Envelope" else NS_SOAP11
    header = envelope.find(f"{{{soap_ns}}}Header")
    if header is not None:
        for echoed in header.findall(f"{{{NS_WSSE}}}Security"):
            header.remove(echoed)
    sign_envelope(envelope, key, soap_ns=soap_ns)
    # Consumers that do not process WS-Security must keep working: a mustUnderstand Security header in a
    # response makes SOAP stacks such as JAX-WS reject it. The attribute is outside what is signed.
    for security in envelope.iterfind(f"{{{soap_ns}}}Header/{{{NS_WSSE}}}Security"):
        security.attrib.pop(f"{{{soap_ns}}}mustUnderstand", None)
    return etree.tostring(envelope, xml_declaration=True, encoding="UTF-8")


class MessageLogAuditSink:
    """Puts every committed access-control step (request, approval, grant, revocation, restriction) on the chain.

    The step is written as one record (endpoint ``access-audit``, dialect ``audit``) whose bytes are the
    event as canonical JSON, so ``log find --service permission/permission.revoked`` and ``log export``
    prove a permission's history to a third party like any message.
    """

    def __init__(self, msglog: MessageLog) -> None:
        self.msglog = msglog

    def committed(self, event: AuditEvent) -> None:
        import json

        body = json.dumps(event.to_json(), ensure_ascii=False, sort_keys=True, separators=(",", ":"),
                          default=str).encode()
        self.msglog.record(RecordInput(body=body, leg="consumer", direction="request",
                                       exchange_id=f"audit-{time_ordered_uuid()}", endpoint="access-audit", dialect="audit",
                                       client=event.actor, service=f"{event.object_kind}/{event.action}",
                                       message_id=event.object_id))
