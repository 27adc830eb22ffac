"""X-Road message protocol 4.0 headers: identifiers, parsing and validation.

The bridge answers like an X-Road security server with its provider behind
it, so it checks the header the way one does: required fields present once,
identifiers complete and of the right object type, protocol version 4.x, and
the body's wrapper element named after the serviceCode.
"""

from __future__ import annotations

from dataclasses import dataclass

from lxml import etree

from viss_bridge.access.identity import InvalidIdentifier, check_part
from viss_bridge.facade import faults
from viss_bridge.facade.faults import BridgeFault
from viss_bridge.namespaces import NS_XROAD as NS_XROAD, NS_ID as NS_ID, NS_REPR as NS_REPR

SUPPORTED_PROTOCOL = "4.0"

REQUIRED_HEADERS = ("client", "service", "id", "protocolVersion")
SINGLE_HEADERS = ("client", "service", "id", "userId", "protocolVersion", "issue", "requestHash")


@dataclass(frozen=True)
class XRoadId:
    """A member, subsystem or service identifier, e.g. LV/GOV/90000000001/FPR/getPerson/v1."""

    object_type: str
    instance: str
    member_class: str
    member_code: str
    subsystem: str | None = None
    service_code: str | None = None
    service_version: str | None = None

    def __post_init__(self) -> None:
        """Every part is checked (X-Road's characters), so ``str()`` and ``provider`` are one-to-one keys."""
        for name, value, service in (("xRoadInstance", self.instance, False), ("memberClass", self.member_class, False),
                                     ("memberCode", self.member_code, False), ("subsystemCode", self.subsystem, False),
                                     ("serviceCode", self.service_code, True),
                                     ("serviceVersion", self.service_version, True)):
            if value is not None:
                check_part(name, value, service)

    @property
    def member(self) -> str:
        return "/".join([self.instance, self.member_class, self.member_code])

    @property
    def provider(self) -> str:
        """The member or subsystem part (what a client id or a service's provider is)."""
        return self.member + (f"/{self.subsystem}" if self.subsystem else "")

    def __str__(self) -> str:
        parts = [self.provider]
        if self.service_code:
            parts.append(self.service_code)
            if self.service_version:
                parts.append(self.service_version)
        return "/".join(parts)

    @classmethod
    def parse_client(cls, text: str) -> "XRoadId":
        """Parse ``INSTANCE/CLASS/CODE[/SUBSYSTEM]`` (as written in configs and manifests)."""
        parts = text.strip().split("/")
        if len(parts) not in (3, 4) or not all(parts):
            raise InvalidIdentifier(f"'{text}' is not INSTANCE/CLASS/CODE[/SUBSYSTEM]")
        return cls("SUBSYSTEM" if len(parts) == 4 else "MEMBER", *parts[:3], subsystem=parts[3] if len(parts) == 4 else None)

    def to_element(self, tag: str) -> etree._Element:
        element = etree.Element(tag, nsmap={"xrd": NS_XROAD, "id": NS_ID})
        element.set(f"{{{NS_ID}}}objectType", self.object_type)
        for name, value in (("xRoadInstance", self.instance), ("memberClass", self.member_class),
                            ("memberCode", self.member_code), ("subsystemCode", self.subsystem),
                            ("serviceCode", self.service_code), ("serviceVersion", self.service_version)):
            if value is not None:
                etree.SubElement(element, f"{{{NS_ID}}}{name}").text = value
        return element


@dataclass(frozen=True)
class XRoadHeader:
    client: XRoadId
    service: XRoadId
    message_id: str
    protocol_version: str
    user_id: str | None
    issue: str | None
    elements: tuple[etree._Element, ...]  # every header element as received, in order


def _missing(field: str) -> BridgeFault:
    return BridgeFault(faults.MISSING_HEADER, f"Required field '{field}' is missing from the SOAP header", 500)


_ID_PREFIX = f"{{{NS_ID}}}"
_XROAD_PREFIX = f"{{{NS_XROAD}}}"


def _id_fields(parent: etree._Element) -> dict[str, list[etree._Element]]:
    """The identifier's child elements in the ``id`` namespace by local name, in one pass over its children."""
    fields: dict[str, list[etree._Element]] = {}
    for child in parent:
        tag = child.tag
        if isinstance(tag, str) and tag.startswith(_ID_PREFIX):
            fields.setdefault(tag[len(_ID_PREFIX):], []).append(child)
    return fields


def _text(fields: dict[str, list[etree._Element]], name: str, where: str, required: bool = True) -> str | None:
    found = fields.get(name, ())
    if len(found) > 1:
        raise BridgeFault(faults.DUPLICATE_HEADER, f"Field '{where}/{name}' appears more than once")
    text = (found[0].text or "").strip() if found else ""
    if not text:
        if required:
            raise _missing(f"{where}/{name}")
        return None
    return text


def _parse_id(element: etree._Element, where: str, service: bool) -> XRoadId:
    object_type = element.get(f"{{{NS_ID}}}objectType")
    if not object_type:
        raise _missing(f"{where}/@objectType")
    allowed = ("SERVICE",) if service else ("MEMBER", "SUBSYSTEM")
    if object_type not in allowed:
        raise BridgeFault(faults.INCONSISTENT_HEADERS,
                          f"Header '{where}' has objectType {object_type}, expected {' or '.join(allowed)}")
    fields = _id_fields(element)
    instance = _text(fields, "xRoadInstance", where)
    member_class = _text(fields, "memberClass", where)
    member_code = _text(fields, "memberCode", where)
    subsystem = _text(fields, "subsystemCode", where, required=object_type == "SUBSYSTEM")
    if object_type == "MEMBER" and subsystem is not None:
        raise BridgeFault(faults.INCONSISTENT_HEADERS,
                          f"Header '{where}' has objectType MEMBER but names a subsystemCode")
    code = version = None
    if service:
        code = _text(fields, "serviceCode", where)
        version = _text(fields, "serviceVersion", where, required=False)
    assert instance and member_class and member_code
    try:
        return XRoadId(object_type, instance, member_class, member_code, subsystem, code, version)
    except InvalidIdentifier as exc:
        raise BridgeFault(faults.INVALID_SERVICE_IDENTIFIER if service else faults.INVALID_CLIENT_IDENTIFIER,
                          f"Header '{where}': {exc}") from None


def parse_header(header: etree._Element | None) -> XRoadHeader:
    """Read and check the X-Road header block; raise BridgeFault with the X-Road code."""
    if header is None:
        raise _missing("client")
    elements = [child for child in header if isinstance(child.tag, str)]
    found: dict[str, etree._Element] = {}
    for element in elements:
        tag = element.tag
        if not tag.startswith(_XROAD_PREFIX):
            continue
        name = tag[len(_XROAD_PREFIX):]
        if name in found and name in SINGLE_HEADERS:
            raise BridgeFault(faults.DUPLICATE_HEADER, f"Header field '{name}' appears more than once")
        found[name] = element
    for name in REQUIRED_HEADERS:
        if name not in found:
            raise _missing(name)
    protocol = (found["protocolVersion"].text or "").strip()
    if protocol != SUPPORTED_PROTOCOL:
        raise BridgeFault(faults.INVALID_PROTOCOL_VERSION,
                          f"Unsupported protocolVersion '{protocol}'; this bridge speaks X-Road message protocol {SUPPORTED_PROTOCOL}")
    message_id = (found["id"].text or "").strip()
    if not message_id:
        raise _missing("id")
    client = _parse_id(found["client"], "client", service=False)
    service = _parse_id(found["service"], "service", service=True)

    def optional(name: str) -> str | None:
        element = found.get(name)
        value = (element.text or "").strip() if element is not None else ""
        return value or None

    return XRoadHeader(client=client, service=service, message_id=message_id, protocol_version=protocol,
                       user_id=optional("userId"), issue=optional("issue"), elements=tuple(elements))


def request_envelope(client: str, service: "XRoadId", body: etree._Element, message_id: str,
                     user_id: str | None = None, issue: str | None = None) -> bytes:
    """A complete X-Road 4.0 request; used by the demo's example call, tests and benchmarks."""
    from viss_bridge.xml import NS_SOAP11

    envelope = etree.Element(f"{{{NS_SOAP11}}}Envelope",
                             nsmap={"SOAP-ENV": NS_SOAP11, "xrd": NS_XROAD, "id": NS_ID})
    header = etree.SubElement(envelope, f"{{{NS_SOAP11}}}Header")
    header.append(XRoadId.parse_client(client).to_element(f"{{{NS_XROAD}}}client"))
    header.append(service.to_element(f"{{{NS_XROAD}}}service"))
    etree.SubElement(header, f"{{{NS_XROAD}}}id").text = message_id
    if user_id:
        etree.SubElement(header, f"{{{NS_XROAD}}}userId").text = user_id
    if issue:
        etree.SubElement(header, f"{{{NS_XROAD}}}issue").text = issue
    etree.SubElement(header, f"{{{NS_XROAD}}}protocolVersion").text = SUPPORTED_PROTOCOL
    etree.SubElement(envelope, f"{{{NS_SOAP11}}}Body").append(body)
    etree.cleanup_namespaces(envelope, top_nsmap={"xrd": NS_XROAD, "id": NS_ID})
    return etree.tostring(envelope, xml_declaration=True, encoding="UTF-8")
