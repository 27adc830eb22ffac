"""Faults every dialect answers with, and their SOAP 1.1 / 1.2 envelopes.

A consumer must get a fault of its own dialect with a precise code, never a
stack trace; the operator must be able to find the matching log line, so each
fault carries a UUID in its detail and in the log.
"""

from __future__ import annotations

import uuid

from lxml import etree

from viss_bridge.xml import NS_SOAP11, NS_SOAP12

# X-Road style codes (DESIGN section 6); the prefix says whose fault it is.
INVALID_SOAP = "Client.InvalidSoap"
MISSING_HEADER = "Client.MissingHeaderField"
DUPLICATE_HEADER = "Client.DuplicateHeaderField"
INCONSISTENT_HEADERS = "Client.InconsistentHeaders"
INVALID_PROTOCOL_VERSION = "Client.InvalidProtocolVersion"
# An identifier part missing or with a character X-Road does not allow (X-Road message protocol 2.7).
INVALID_CLIENT_IDENTIFIER = "Client.InvalidClientIdentifier"
INVALID_SERVICE_IDENTIFIER = "Client.InvalidServiceIdentifier"
INVALID_REQUEST = "Client.InvalidRequest"
# The caller holds several usable permissions for the dataset and must name one (REST: X-DAGR-Permission).
PERMISSION_REQUIRED = "Client.InvalidRequest.PermissionRequired"
# A signed message whose Timestamp is stale, from the future or claims an Expires beyond the allowed maximum,
# and a signed message id seen before (WS-Security on /viss and /xroad; docs/endpoints.md).
MESSAGE_EXPIRED = "Client.Security.MessageExpired"
REPLAY = "Client.Security.Replay"
MESSAGE_TOO_LARGE = "Client.InvalidSoap.MessageTooLarge"
# The request's headers and body did not arrive within request_read_timeout (slow or lying client): HTTP 408.
REQUEST_TIMEOUT = "Client.InvalidSoap.RequestTimeout"
UNKNOWN_SERVICE = "Server.ServerProxy.UnknownService"
UNKNOWN_MEMBER = "Server.ServerProxy.UnknownMember"
ACCESS_DENIED = "Server.ServerProxy.AccessDenied"
# A lookup whose one record is withheld because its data subject restricted distribution (docs/access.md).
ACCESS_DENIED_RESTRICTED = "Server.ServerProxy.AccessDenied.SubjectRestriction"
SERVICE_FAILED = "Server.ServerProxy.ServiceFailed"
LOGGING_FAILED = "Server.ServerProxy.IOError.LoggingFailed"
TIMESTAMPING_FAILED = "Server.ServerProxy.IOError.TimestampingFailed"
VERSION_MISMATCH = "VersionMismatch"


class BridgeFault(Exception):
    """Anything the bridge refuses or fails to do, as the consumer will see it."""

    def __init__(self, code: str, message: str, http_status: int = 500, fault_id: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.http_status = http_status
        self.fault_id = fault_id or str(uuid.uuid4())

    @property
    def is_client_error(self) -> bool:
        return self.code.startswith("Client.") or self.code == VERSION_MISMATCH

    def __repr__(self) -> str:
        return f"BridgeFault({self.code!r}, {self.message!r}, id={self.fault_id})"


def service_failed(cause: str, message: str) -> BridgeFault:
    return BridgeFault(f"{SERVICE_FAILED}.{cause}", message)


def soap11_fault(fault: BridgeFault, header: list[etree._Element] | None = None) -> bytes:
    """SOAP 1.1 fault as X-Road security servers send it: unprefixed dotted code, UUID in detail."""
    envelope = etree.Element(f"{{{NS_SOAP11}}}Envelope", nsmap={"SOAP-ENV": NS_SOAP11})
    if header:
        head = etree.SubElement(envelope, f"{{{NS_SOAP11}}}Header")
        for element in header:
            head.append(element)
    body = etree.SubElement(envelope, f"{{{NS_SOAP11}}}Body")
    node = etree.SubElement(body, f"{{{NS_SOAP11}}}Fault")
    code = fault.code
    if code == VERSION_MISMATCH:
        code = "SOAP-ENV:VersionMismatch"
    etree.SubElement(node, "faultcode").text = code
    etree.SubElement(node, "faultstring").text = fault.message
    etree.SubElement(node, "faultactor").text = ""
    detail = etree.SubElement(node, "detail")
    etree.SubElement(detail, "faultDetail").text = fault.fault_id
    return etree.tostring(envelope, xml_declaration=True, encoding="UTF-8")


def soap12_status(fault: BridgeFault) -> int:
    """The HTTP status of a SOAP 1.2 fault (SOAP 1.2 HTTP binding): Sender faults are 400; 408 and 413 stay."""
    sender = fault.is_client_error and fault.code != VERSION_MISMATCH
    return 400 if sender and fault.http_status == 500 else fault.http_status


def soap12_fault(fault: BridgeFault, header: list[etree._Element] | None = None) -> bytes:
    """SOAP 1.2 fault: Sender/Receiver code with the dotted code as a subcode value."""
    ns = NS_SOAP12
    envelope = etree.Element(f"{{{ns}}}Envelope", nsmap={"env": ns, "vb": "urn:viss-bridge:faults"})
    if header:
        head = etree.SubElement(envelope, f"{{{ns}}}Header")
        for element in header:
            head.append(element)
    body = etree.SubElement(envelope, f"{{{ns}}}Body")
    node = etree.SubElement(body, f"{{{ns}}}Fault")
    code = etree.SubElement(node, f"{{{ns}}}Code")
    top = "env:VersionMismatch" if fault.code == VERSION_MISMATCH else ("env:Sender" if fault.is_client_error else "env:Receiver")
    etree.SubElement(code, f"{{{ns}}}Value").text = top
    if fault.code != VERSION_MISMATCH:
        sub = etree.SubElement(code, f"{{{ns}}}Subcode")
        etree.SubElement(sub, f"{{{ns}}}Value").text = "vb:" + fault.code.replace(".", "_")
    reason = etree.SubElement(node, f"{{{ns}}}Reason")
    text = etree.SubElement(reason, f"{{{ns}}}Text")
    text.set("{http://www.w3.org/XML/1998/namespace}lang", "en")
    text.text = fault.message
    detail = etree.SubElement(node, f"{{{ns}}}Detail")
    etree.SubElement(detail, "{urn:viss-bridge:faults}faultCode").text = fault.code
    etree.SubElement(detail, "{urn:viss-bridge:faults}faultDetail").text = fault.fault_id
    return etree.tostring(envelope, xml_declaration=True, encoding="UTF-8")
