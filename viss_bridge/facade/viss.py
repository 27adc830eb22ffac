"""``/viss``: the VISS request service: SOAP 1.2, WS-Addressing 1.0, WS-Security 1.1.

A generation-II consumer opens a transaction, submits synchronous requests in
it and closes it:

* ``StartTransaction`` -> a transaction URN (``URN:IVIS:TX:<uuid>``);
* ``SubmitSync`` with an ``IVISRequest`` whose ``Header`` carries MessageID,
  MessageType, TransactionID, CorrelationID, Destination (a service URN such
  as ``URN:IVIS:100001:EP.DA-DA29-V1-0``, mapped to a dataset by the
  manifest's ``legacy: [{dialect: viss, service: URN}]``) and TimeStamp, and
  whose ``Body`` holds the dataset key as ``Key name="..."`` elements; the
  ``IVISResponse`` carries the record(s) and a ``Result``;
* ``EndTransaction``.

Every request must carry WS-Addressing ``Action``, ``MessageID`` and ``To``
and a WS-Security signature (X.509) over the Body, the Timestamp and those
three headers. The signer's certificate must chain to the configured CA and be
registered for a consumer: the Sender is the registered consumer, never what
the body says. The Timestamp must be fresh (``Freshness``: at most max age
since Created, whatever Expires says), and a MessageID is accepted once per
signer for as long as its message could pass that check, across all workers
and nodes (the shared replay table, viss_bridge/facade/replay.py). Replies carry ``Action``, a new ``MessageID`` and
``RelatesTo``; faults are SOAP 1.2 faults with precise subcodes.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from lxml import etree

from viss_bridge.catalog.catalog import Catalog
from viss_bridge.catalog.manifest import Dataset, FieldType
from viss_bridge.catalog.values import to_json
from viss_bridge.facade import faults
from viss_bridge.facade.exchange import CallInfo
from viss_bridge.facade.faults import BridgeFault
from viss_bridge.facade.soap_runtime import SoapRequest, SoapResponse
from viss_bridge.facade.guarded_read import GuardedRead
from viss_bridge.facade.pipeline import HttpAnswer, fault_response
from viss_bridge.facade.replay import ReplayTable, TooLateToRemember
from viss_bridge.facade.viss_state import VissState
from viss_bridge.security.wssecurity import Freshness, VerifiedMessage
from viss_bridge.xml import NS_SOAP12, NS_XSI
from viss_bridge.namespaces import NS_WSA as NS_WSA

log = logging.getLogger(__name__)

VISS_TNS = "http://ivis.eps.gov.lv/XMLSchemas/VISS/RequestService/v1-0"
ACTION_BASE = f"{VISS_TNS}/IRequestService/"
FAULT_ACTION = "http://www.w3.org/2005/08/addressing/soap/fault"
ANONYMOUS = "http://www.w3.org/2005/08/addressing/anonymous"
WSDL_FILE = Path(__file__).parent / "schemas" / "viss-request-service.wsdl"
OPERATIONS = ("StartTransaction", "SubmitSync", "EndTransaction")
CONTENT_TYPE = "application/soap+xml; charset=utf-8"

# VISS fault codes (SOAP 1.2 subcodes are these with dots as underscores, in namespace urn:viss-bridge:faults).
SIGNATURE_MISSING = "Client.Security.SignatureMissing"
SIGNATURE_INVALID = "Client.Security.SignatureInvalid"
MESSAGE_EXPIRED = faults.MESSAGE_EXPIRED
UNTRUSTED_CERTIFICATE = "Client.Security.UntrustedCertificate"
UNREGISTERED_CERTIFICATE = "Client.Security.UnregisteredCertificate"
REPLAY = faults.REPLAY
ACTION_NOT_SUPPORTED = "Client.ActionNotSupported"
UNKNOWN_TRANSACTION = "Client.UnknownTransaction"
INVALID_ADDRESSING = "Client.InvalidAddressing"


@dataclass(frozen=True)
class Consumer:
    client: str  # the consumer's identity for permissions (X-Road style id)
    participant: str  # its VISS participant id, e.g. AU:90000069281
    fingerprint: str


class ConsumerCertificates:
    """Registered consumer certificates, from a YAML file::

        consumers:
          - {client: LV/GOV/90000069281/VID-EDS, participant: "AU:90000069281", cert: certs/vid-eds.pem}

    SEAM: the access package's connection registry (certificates per connection) can
    replace this file; the facade only needs ``consumer_for(fingerprint)``.
    """

    def __init__(self, file: str | Path | None = None, registry: Any = None) -> None:
        from viss_bridge.security.pki import fingerprint, load_certificates

        self.by_fingerprint: dict[str, Consumer] = {}
        self.registry = registry
        if file:
            path = Path(file)
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
            for entry in data.get("consumers", []):
                for cert in load_certificates(path.parent / entry["cert"]):
                    fp = fingerprint(cert)
                    self.by_fingerprint[fp] = Consumer(entry["client"], entry.get("participant") or entry["client"], fp)

    def consumer_for(self, fingerprint: str) -> Consumer | None:
        """The file's entry, else a connection holding this certificate in the access registry (docs/access.md)."""
        known = self.by_fingerprint.get(fingerprint)
        if known is not None or self.registry is None:
            return known
        client = self.registry.client_for_fingerprint(fingerprint)
        if client is None:
            return None
        parts = client.split("/")
        return Consumer(client, f"AU:{parts[2]}" if len(parts) > 2 else client, fingerprint)


def _q(name: str) -> str:
    return f"{{{VISS_TNS}}}{name}"


@dataclass
class Addressing:
    action: str | None = None
    message_id: str | None = None
    to: str | None = None


class VissFacade:
    def __init__(self, store: Any, permissions: Any, state: VissState, replay: ReplayTable, trust: Any,
                 consumers: ConsumerCertificates | None, freshness: Freshness, reply_key: Any = None,
                 wsdl_location: str = "") -> None:
        self.store = store  # SourceRouter
        self.permissions = permissions
        self.reader = GuardedRead(store, permissions)
        self.state = state
        self.replay = replay
        self.trust = trust
        self.consumers = consumers
        self.freshness = freshness
        self.reply_key = reply_key
        self.wsdl_location = wsdl_location

    name = "viss"
    soap_ns = NS_SOAP12

    def wsdl(self, published: Any, environ: dict[str, Any], query: dict[str, list[str]]) -> HttpAnswer:
        return HttpAnswer.xml(self.wsdl_document())

    def wsdl_document(self) -> bytes:
        root = etree.fromstring(WSDL_FILE.read_bytes())
        for address in root.iter("{http://schemas.xmlsoap.org/wsdl/soap12/}address"):
            address.set("location", self.wsdl_location)
        return etree.tostring(root, xml_declaration=True, encoding="UTF-8")

    # -- requests --------------------------------------------------------------

    def handle(self, published: Any, request: SoapRequest, environ: dict[str, Any], info: CallInfo) -> SoapResponse:
        catalog: Catalog = published.catalog
        addressing = Addressing()
        try:
            addressing = self._addressing(request)
            info.message_id = addressing.message_id
            operation = self._operation(request, addressing)
            info.operation = operation
            consumer, body, verified = self._verify(request)
            info.client, info.authenticated_by = consumer.client, "ws-security"
            if verified.created is None:  # not reached: _verify requires a Timestamp with Created
                raise BridgeFault(MESSAGE_EXPIRED, "The message has no Timestamp Created time")
            try:
                first = self.replay.first_sighting("viss", consumer.client, addressing.message_id or "",
                                                   self.freshness.remember_until(verified.created))
            except TooLateToRemember as exc:
                raise BridgeFault(MESSAGE_EXPIRED, f"The message is not fresh: {exc}") from None
            if not first:
                raise BridgeFault(REPLAY, f"Message {addressing.message_id} was already received; replays are refused")
            payload = getattr(self, f"_{operation}")(catalog, body, consumer, info)
            return SoapResponse(200, self._reply(addressing, f"{ACTION_BASE}{operation}Response", payload),
                                content_type=CONTENT_TYPE)
        except BridgeFault as fault:  # with the WS-Addressing reply headers the consumer correlates on
            return fault_response(fault, NS_SOAP12, self._reply_headers(addressing, FAULT_ACTION))

    def _addressing(self, request: SoapRequest) -> Addressing:
        header = request.header
        values = {}
        for name in ("Action", "MessageID", "To"):
            found = header.findall(f"{{{NS_WSA}}}{name}") if header is not None else []
            if len(found) > 1:
                raise BridgeFault(faults.DUPLICATE_HEADER, f"WS-Addressing header {name} appears more than once")
            values[name] = (found[0].text or "").strip() if found else ""
        addressing = Addressing(values["Action"] or None, values["MessageID"] or None, values["To"] or None)
        for name, value in values.items():
            if not value:
                raise BridgeFault(faults.MISSING_HEADER, f"Required WS-Addressing header wsa:{name} is missing")
        if self.wsdl_location and _norm(addressing.to or "") != _norm(self.wsdl_location):
            # A message signed for another endpoint must not be accepted here (the signature covers wsa:To).
            raise BridgeFault(INVALID_ADDRESSING, f"wsa:To is {addressing.to}, not this endpoint ({self.wsdl_location}); "
                                                  f"behind a proxy set public_url")
        return addressing

    def _operation(self, request: SoapRequest, addressing: Addressing) -> str:
        action = addressing.action or ""
        operation = action.removeprefix(ACTION_BASE) if action.startswith(ACTION_BASE) else ""
        if operation not in OPERATIONS:
            raise BridgeFault(ACTION_NOT_SUPPORTED, f"The action {action} is not supported by this endpoint")
        if request.body_element.tag != _q(operation):
            raise BridgeFault(faults.INCONSISTENT_HEADERS,
                              f"wsa:Action says {operation} but the body is {request.body_element.tag}")
        return operation

    def _verify(self, request: SoapRequest) -> tuple[Consumer, etree._Element, VerifiedMessage]:
        from viss_bridge.security import xmldsig
        from viss_bridge.security.pki import fingerprint
        from viss_bridge.security.wssecurity import verify_envelope

        if self.trust is None or self.consumers is None:
            raise faults.service_failed("SecurityNotConfigured",
                                        "This node has no VISS trust store or consumer certificates configured")
        required = tuple(f"{{{NS_WSA}}}{name}" for name in ("Action", "MessageID", "To"))
        try:
            verified = verify_envelope(request.envelope, self.trust, soap_ns=NS_SOAP12, freshness=self.freshness,
                                       require_timestamp=True, required_headers=required)
        except xmldsig.SignatureMissing as exc:
            raise BridgeFault(SIGNATURE_MISSING, f"The message is not signed: {exc}") from None
        except xmldsig.TimestampInvalid as exc:
            raise BridgeFault(MESSAGE_EXPIRED, f"The message is not fresh: {exc}") from None
        except xmldsig.CertificateUntrusted as exc:
            raise BridgeFault(UNTRUSTED_CERTIFICATE, f"The signing certificate is not trusted: {exc}") from None
        except xmldsig.SecurityError as exc:
            raise BridgeFault(SIGNATURE_INVALID, f"The signature is not valid: {exc}") from None
        for name in required:  # each addressing header must be the signed one (no second, unsigned copy)
            if len(request.header.findall(name)) != 1:
                raise BridgeFault(SIGNATURE_INVALID, f"{name} is not covered by the signature")
        consumer = self.consumers.consumer_for(fingerprint(verified.certificate))
        if consumer is None:
            raise BridgeFault(UNREGISTERED_CERTIFICATE,
                              f"The signing certificate ({verified.certificate.subject.rfc4514_string()}) is not "
                              f"registered for any consumer")
        if verified.body is not request.envelope.find(f"{{{NS_SOAP12}}}Body"):
            raise BridgeFault(SIGNATURE_INVALID, "The signature does not cover the Body being served")
        children = [c for c in verified.body if isinstance(c.tag, str)]
        return consumer, children[0], verified

    # -- operations ------------------------------------------------------------

    def _StartTransaction(self, catalog: Catalog, body: etree._Element, consumer: Consumer,
                          info: CallInfo) -> etree._Element:
        destination = (body.findtext(_q("Destination")) or "").strip() or None
        if destination and self._dataset(catalog, destination) is None:
            raise BridgeFault(faults.UNKNOWN_SERVICE, f"Unknown service: {destination}")
        result = etree.Element(_q("StartTransactionResponse"), nsmap={None: VISS_TNS})
        etree.SubElement(result, _q("TransactionID")).text = self.state.start(consumer.client, destination)
        return result

    def _EndTransaction(self, catalog: Catalog, body: etree._Element, consumer: Consumer,
                        info: CallInfo) -> etree._Element:
        transaction = (body.findtext(_q("TransactionID")) or "").strip()
        if not transaction or not self.state.end(transaction, consumer.client):
            raise BridgeFault(UNKNOWN_TRANSACTION, f"No open transaction {transaction or '(empty)'} of {consumer.participant}")
        result = etree.Element(_q("EndTransactionResponse"), nsmap={None: VISS_TNS})
        _result(result, "OK", f"Transaction {transaction} ended")
        return result

    def _SubmitSync(self, catalog: Catalog, body: etree._Element, consumer: Consumer, info: CallInfo) -> etree._Element:
        request = body.find(_q("IVISRequest"))
        header = request.find(_q("Header")) if request is not None else None
        if header is None:
            raise BridgeFault(faults.INVALID_REQUEST, "SubmitSync needs an IVISRequest with a Header")
        fields = {}
        for name in ("MessageID", "MessageType", "TransactionID", "CorrelationID", "Sender", "Destination", "TimeStamp"):
            fields[name] = (header.findtext(_q(name)) or "").strip()
        for name in ("MessageID", "MessageType", "TransactionID", "Destination", "TimeStamp"):
            if not fields[name]:
                raise BridgeFault(faults.MISSING_HEADER, f"IVISRequest Header field {name} is missing")
        if fields["Sender"] and fields["Sender"] not in (consumer.participant, consumer.client):
            raise BridgeFault(faults.INCONSISTENT_HEADERS,
                              f"Header Sender {fields['Sender']} is not the signer ({consumer.participant})")
        if not self.state.is_open(fields["TransactionID"], consumer.client):
            raise BridgeFault(UNKNOWN_TRANSACTION,
                              f"No open transaction {fields['TransactionID']} of {consumer.participant}")
        destination = fields["Destination"]
        dataset = self._dataset(catalog, destination)
        info.service = destination
        if dataset is None:
            raise BridgeFault(faults.UNKNOWN_SERVICE, f"Unknown service: {destination}")
        keys = {}
        for key in request.findall(f"{_q('Body')}/{_q('Key')}"):
            keys[key.get("name") or ""] = (key.text or "").strip()
        missing = [name for name in dataset.key if not keys.get(name)]
        if missing:
            raise BridgeFault(faults.INVALID_REQUEST, f"Body Key {', '.join(missing)} is missing "
                                                      f"(the key of {destination} is {', '.join(dataset.key)})")
        from viss_bridge.access.identity import Caller

        caller = Caller(consumer.client, "ws-security", consumer.fingerprint)
        record = self.reader.lookup(self.reader.decide(caller, dataset), dataset,
                                    {name: keys[name] for name in dataset.key}, info)
        result = etree.Element(_q("SubmitSyncResponse"), nsmap={None: VISS_TNS})
        response = etree.SubElement(result, _q("IVISResponse"))
        out = etree.SubElement(response, _q("Header"))
        etree.SubElement(out, _q("MessageID")).text = f"urn:uuid:{uuid.uuid4()}"
        etree.SubElement(out, _q("MessageType")).text = fields["MessageType"] + "Response"
        etree.SubElement(out, _q("TransactionID")).text = fields["TransactionID"]
        etree.SubElement(out, _q("CorrelationID")).text = fields["MessageID"]
        etree.SubElement(out, _q("Sender")).text = destination
        etree.SubElement(out, _q("Destination")).text = consumer.participant
        etree.SubElement(out, _q("TimeStamp")).text = dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds")
        if record is None:
            _result(out, "NOT_FOUND", f"No record in {destination} with this key")
        else:
            _result(out, "OK", None)
        data = etree.SubElement(response, _q("Body"))
        if record is not None:
            _record(data, dataset.fields, record)
        return result

    def _dataset(self, catalog: Catalog, urn: str) -> Dataset | None:
        for dataset in catalog:
            for contract in dataset.legacy:
                if contract.dialect == "viss" and contract.service.upper() == urn.upper():
                    return dataset
        return None

    # -- replies ---------------------------------------------------------------

    def _reply_headers(self, addressing: Addressing, action: str) -> list[etree._Element]:
        headers = []
        for name, value in (("Action", action), ("MessageID", f"urn:uuid:{uuid.uuid4()}"),
                            ("RelatesTo", addressing.message_id), ("To", ANONYMOUS)):
            if value:
                element = etree.Element(f"{{{NS_WSA}}}{name}", nsmap={"wsa": NS_WSA})
                element.text = value
                headers.append(element)
        return headers

    def _reply(self, addressing: Addressing, action: str, payload: etree._Element) -> bytes:
        envelope = etree.Element(f"{{{NS_SOAP12}}}Envelope", nsmap={"env": NS_SOAP12, "wsa": NS_WSA})
        header = etree.SubElement(envelope, f"{{{NS_SOAP12}}}Header")
        for element in self._reply_headers(addressing, action):
            header.append(element)
        body = etree.SubElement(envelope, f"{{{NS_SOAP12}}}Body")
        body.append(payload)
        if self.reply_key is not None:
            from viss_bridge.security.wssecurity import sign_envelope

            sign_envelope(envelope, self.reply_key, soap_ns=NS_SOAP12,
                          sign_headers=tuple(f"{{{NS_WSA}}}{n}" for n in ("Action", "MessageID", "RelatesTo", "To")))
        return etree.tostring(envelope, xml_declaration=True, encoding="UTF-8")


def _norm(url: str) -> str:
    return url.strip().rstrip("/").lower()


def _result(parent: etree._Element, code: str, message: str | None) -> None:
    result = etree.SubElement(parent, _q("Result"))
    etree.SubElement(result, _q("Code")).text = code
    if message:
        etree.SubElement(result, _q("Message")).text = message


def _record(parent: etree._Element, fields: Any, record: dict[str, Any], tag: str = "Record",
            name: str | None = None) -> None:
    """A record as the VISS schema's RecordType: Fields, then Objects, then Lists, at any depth."""
    node = etree.SubElement(parent, _q(tag), **({"name": name} if name else {}))
    objects, lists = [], []
    for field in fields:
        value = record.get(field.name)
        if field.type is FieldType.LIST:
            lists.append((field, value or []))
            continue
        if field.type is FieldType.OBJECT:
            if value is not None:
                objects.append((field, value))
            continue
        if value is None:
            if field.nillable:
                element = etree.SubElement(node, _q("Field"), name=field.name, type=field.type.value)
                element.set(f"{{{NS_XSI}}}nil", "true")
            continue
        element = etree.SubElement(node, _q("Field"), name=field.name, type=field.type.value)
        element.text = _text(value)
    for field, value in objects:  # the schema puts every Field before the Objects, and those before the Lists
        _record(node, field.fields, value, "Object", field.name)
    for field, items in lists:
        if field.is_value_list:
            holder = etree.SubElement(node, _q("List"), name=field.name, type=field.items.value)
            for item in items:
                etree.SubElement(holder, _q("Value")).text = _text(item)
        else:
            holder = etree.SubElement(node, _q("List"), name=field.name)
            for item in items:
                _record(holder, field.fields, item)


def _text(value: Any) -> str:
    return ("true" if value else "false") if isinstance(value, bool) else str(to_json(value))
