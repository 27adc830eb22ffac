"""X-Road WSDLs: Spyne's typed WSDL plus the X-Road header bindings.

Spyne cannot declare header elements in a namespace other than the
application's without emitting a WSDL that references a missing message, and
X-Road headers must live in ``http://x-road.eu/xsd/xroad.xsd``. So Spyne
renders the typed body part and this module adds, in the style of PR-MESS
WSDLs: the inline X-Road schemas (nothing is fetched from the network), a
``requestheader`` message and ``soap:header`` bindings on every operation,
plus ``xrd:title`` and ``xrd:version`` per operation. The inlined schemas carry
two changes for other client stacks (see docs/endpoints.md): a named type per
string header (.NET ``wsdl.exe``) and ``objectType`` restated on the identifier
restrictions (gSOAP).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources

from lxml import etree

from viss_bridge.catalog.manifest import Dataset
from viss_bridge.facade.wsdl_parts import declared, element_text
from viss_bridge.facade.xroad_headers import NS_ID, NS_XROAD
from viss_bridge.xml import NS_WSDL, NS_WSDL_SOAP11, NS_XSD, parse_trusted

HEADER_PARTS = ("client", "service", "id", "userId", "issue", "protocolVersion")
HIDDEN_ENDPOINT = "http://example.org/xroad-endpoint"


def _xroad_schemas() -> list[etree._Element]:
    data = resources.files("viss_bridge.facade").joinpath("schemas/xroad-headers.xsd").read_bytes()
    return list(parse_trusted(data).iterfind(f"{{{NS_XSD}}}schema"))


def add_xroad_headers(spyne_wsdl: bytes, datasets: dict[str, Dataset], location: str) -> bytes:
    """Return the WSDL with X-Road headers bound to every operation and ``location`` as address."""
    old = parse_trusted(spyne_wsdl)
    nsmap = dict(old.nsmap)
    nsmap.update({"xrd": NS_XROAD, "id": NS_ID})
    root = etree.Element(old.tag, nsmap=nsmap, attrib=dict(old.attrib))
    for child in old:
        root.append(child)
    tns = root.get("targetNamespace")

    types = root.find(f"{{{NS_WSDL}}}types")
    assert types is not None
    for index, schema in enumerate(_xroad_schemas()):
        types.insert(index, schema)
    # Spyne's schema must be able to see the X-Road types it sits beside.
    for schema in types.iterfind(f"{{{NS_XSD}}}schema"):
        if schema.get("targetNamespace") == tns:
            for ns in (NS_ID, NS_XROAD):
                etree.SubElement(schema, f"{{{NS_XSD}}}import", namespace=ns)
            # imports must precede every other schema child
            imports = schema.findall(f"{{{NS_XSD}}}import")
            for imp in imports:
                schema.remove(imp)
            for position, imp in enumerate(imports):
                schema.insert(position, imp)

    first_message = root.find(f"{{{NS_WSDL}}}message")
    header_message = etree.Element(f"{{{NS_WSDL}}}message", name="requestheader")
    for part in HEADER_PARTS:
        etree.SubElement(header_message, f"{{{NS_WSDL}}}part", name=part, element=f"xrd:{part}")
    if first_message is not None:
        first_message.addprevious(header_message)
    else:
        types.addnext(header_message)

    for port_type in root.iterfind(f"{{{NS_WSDL}}}portType"):
        for operation in port_type.iterfind(f"{{{NS_WSDL}}}operation"):
            dataset = datasets.get(operation.get("name", ""))
            if dataset is None:
                continue
            for old_doc in operation.findall(f"{{{NS_WSDL}}}documentation"):
                operation.remove(old_doc)
            doc = etree.Element(f"{{{NS_WSDL}}}documentation")
            search = operation.get("name") != dataset.dataset  # <dataset>Search
            etree.SubElement(doc, f"{{{NS_XROAD}}}title").text = dataset.title.en + (": search" if search else "")
            operation.insert(0, doc)

    for binding in root.iterfind(f"{{{NS_WSDL}}}binding"):
        for operation in binding.iterfind(f"{{{NS_WSDL}}}operation"):
            dataset = datasets.get(operation.get("name", ""))
            if dataset is not None:
                version = etree.Element(f"{{{NS_XROAD}}}version")
                version.text = dataset.version
                soap_op = operation.find(f"{{{NS_WSDL_SOAP11}}}operation")
                (soap_op if soap_op is not None else operation[0]).addnext(version)
            for direction in ("input", "output"):
                holder = operation.find(f"{{{NS_WSDL}}}{direction}")
                if holder is None:
                    continue
                for part in HEADER_PARTS:
                    etree.SubElement(holder, f"{{{NS_WSDL_SOAP11}}}header", message="tns:requestheader",
                                     part=part, use="literal")

    for address in root.iter(f"{{{NS_WSDL_SOAP11}}}address"):
        address.set("location", location)
    etree.cleanup_namespaces(root, top_nsmap={"xrd": NS_XROAD, "id": NS_ID}, keep_ns_prefixes=["xrd", "id", "tns"])
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)


# -- the whole WSDL, composed from per-service WSDLs -----------------------------------------------
#
# Spyne renders a WSDL from one Application; for all of VISS (745 services) that is one app holding
# every service's classes (seconds of CPU and hundreds of MB, again for every catalog version). A
# per-service WSDL is cheap and cached, and everything in it that is not shared (its schema
# components, its messages, its operations) is named after the service. So the whole WSDL is the
# shared frame of any per-service WSDL with every service's own parts put into it as text.

_MARK = "viss-bridge-parts:"
_PARTS = ("schema", "messages", "port", "binding")


@dataclass(frozen=True)
class ServiceParts:
    """What one service adds to a WSDL of several services, as serialised XML, by part of the frame."""

    schema: tuple[bytes, ...]  # components of the datasets' schema (types and elements)
    messages: tuple[bytes, ...]
    port: tuple[bytes, ...]  # portType operations
    binding: tuple[bytes, ...]  # binding operations

    def part(self, name: str) -> tuple[bytes, ...]:
        return getattr(self, name)  # type: ignore[no-any-return]


def _own_elements(root: etree._Element, tns: str) -> dict[str, list[etree._Element]]:
    """The children of a per-service WSDL that belong to its service, by the frame part they go into."""
    types = root.find(f"{{{NS_WSDL}}}types")
    schema = next((s for s in (types.iterfind(f"{{{NS_XSD}}}schema") if types is not None else ())
                   if s.get("targetNamespace") == tns), None)
    return {"schema": [c for c in (schema if schema is not None else ())
                       if isinstance(c.tag, str) and c.tag != f"{{{NS_XSD}}}import"],
            "messages": [m for m in root.iterfind(f"{{{NS_WSDL}}}message") if m.get("name") != "requestheader"],
            "port": [op for pt in root.iterfind(f"{{{NS_WSDL}}}portType") for op in pt.iterfind(f"{{{NS_WSDL}}}operation")],
            "binding": [op for b in root.iterfind(f"{{{NS_WSDL}}}binding") for op in b.iterfind(f"{{{NS_WSDL}}}operation")]}


def service_parts(service_wsdl: bytes, tns: str) -> ServiceParts:
    """The parts of a per-service WSDL (from :func:`add_xroad_headers`) that are that service's own."""
    root = parse_trusted(service_wsdl)
    root_declares = declared(root)
    own = _own_elements(root, tns)
    return ServiceParts(**{part: tuple(element_text(e, root_declares) for e in own[part]) for part in _PARTS})


@dataclass(frozen=True)
class Frame:
    """A per-service WSDL with its service's own parts cut out: the text between the places they go."""

    segments: tuple[bytes, ...]  # len(order) + 1 pieces of text
    order: tuple[str, ...]  # which part goes after each segment but the last

    @classmethod
    def of(cls, service_wsdl: bytes, tns: str) -> "Frame":
        root = parse_trusted(service_wsdl)
        own = _own_elements(root, tns)
        for part in _PARTS:
            elements = own[part]
            if not elements:
                raise ValueError(f"the WSDL has no {part} of its own to take the place of")
            first = elements[0]
            first.addprevious(etree.Comment(f"{_MARK}{part}"))
            for element in elements:
                parent = element.getparent()
                assert parent is not None
                parent.remove(element)
        text = etree.tostring(root, xml_declaration=True, encoding="UTF-8")
        found = re.split(rb"<!--" + _MARK.encode() + rb"(\w+)-->", text)
        return cls(tuple(found[0::2]), tuple(p.decode() for p in found[1::2]))

    def compose(self, services: list[ServiceParts]) -> bytes:
        """The WSDL of all ``services``: each part's components in service order, an identical one once."""
        out = [self.segments[0]]
        for part, segment in zip(self.order, self.segments[1:]):
            seen: set[bytes] = set()
            for service in services:
                for item in service.part(part):
                    if item not in seen:
                        seen.add(item)
                        out.append(item)
                        out.append(b"\n")
            out.append(segment)
        return b"".join(out)
