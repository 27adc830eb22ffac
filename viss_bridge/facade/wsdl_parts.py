"""WSDLs put together from parts built once per dataset, instead of one Spyne app over every dataset.

With all of VISS (745 datasets) one Spyne app holding every dataset's classes costs seconds of CPU
and hundreds of MB, for every catalog version, and Spyne never frees its classes. The parts of a
dataset (its schema components, and on the X-Road face its messages and operations) only change
when its manifest does, so they are rendered once, kept as XML text, and a version's WSDL is text
composition: milliseconds, off the request path (``server.BridgeApp._warm``).

This module has what both faces share: the text of an element without the namespace declarations
its document's root makes, the schema components one dataset's record type needs, and the
catalog-native WSDL (``AnyRecord``) composed from them. The X-Road frame is in ``xroad_wsdl``.
"""

from __future__ import annotations

import re
from typing import Any, Iterable

from lxml import etree
from spyne import ComplexModel, ServiceBase, rpc

from viss_bridge.catalog.manifest import Dataset
from viss_bridge.facade.soap_runtime import render_wsdl
from viss_bridge.facade.spyne_models import RecordModels
from viss_bridge.xml import NS_XSD, parse_trusted

_XMLNS = re.compile(rb' xmlns:([A-Za-z_][\w.-]*)="([^"]*)"')
_REFERENCE_ATTRIBUTES = ("type", "base", "itemType")


class NotBuiltYet(RuntimeError):
    """A document built beside serving is not ready yet; the request may try again shortly."""


def declared(root: etree._Element) -> set[tuple[str, str]]:
    """The (prefix, namespace) pairs a document's root declares."""
    return {(prefix, uri) for prefix, uri in root.nsmap.items() if prefix}


def element_text(element: etree._Element, root_declares: set[tuple[str, str]]) -> bytes:
    """``element`` as XML, without the namespace declarations the root of the document it goes into makes.

    lxml writes every namespace in scope onto a serialised child; in a composed document the root
    declares them once, with the same prefixes (every part comes from Spyne with the same map)."""
    data = etree.tostring(element, with_tail=False)
    end = data.index(b">")
    head = _XMLNS.sub(lambda m: b"" if (m.group(1).decode(), m.group(2).decode()) in root_declares else m.group(0),
                      data[:end])
    return head + data[end:]


def _closure(components: dict[tuple[str, str], etree._Element], start: str, tns: str) -> list[tuple[str, str]]:
    """The schema components the type ``start`` needs (itself, the types it refers to, their elements)."""
    prefix = next((p for p, uri in next(iter(components.values())).nsmap.items() if uri == tns), None)
    found: list[tuple[str, str]] = []
    todo = [start]
    seen: set[str] = set()
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        for kind in ("simpleType", "complexType", "element"):
            component = components.get((kind, name))
            if component is None:
                continue
            found.append((kind, name))
            for node in component.iter():
                for attribute in _REFERENCE_ATTRIBUTES:
                    value = node.get(attribute) if isinstance(node.tag, str) else None
                    if value and prefix is not None and value.startswith(prefix + ":"):
                        todo.append(value[len(prefix) + 1:])
    return found


def record_schemas(datasets: Iterable[Dataset], tns: str, all_optional: bool = True) -> dict[str, tuple[bytes, ...]]:
    """Each dataset's record type as schema text (``{name}_record`` and every type it uses), rendered
    by one Spyne app made for this and dropped (the classes that answer calls are built apart)."""
    datasets = list(datasets)
    if not datasets:
        return {}
    holder = ComplexModel.produce(tns, "RenderedRecords", {
        d.dataset: RecordModels(d, tns, all_optional=all_optional).record.customize(min_occurs=0) for d in datasets})

    @rpc(_returns=holder, _operation_name="records")
    def records(ctx: Any) -> Any:  # never called: the operation only puts the types into the schema
        return None

    root = parse_trusted(render_wsdl([type("RenderedRecordsService", (ServiceBase,), {"records": records})], tns,
                                     "viss_bridge_rendered_records", "http://example.org/unused"))
    schema = next(s for s in root.iter(f"{{{NS_XSD}}}schema") if s.get("targetNamespace") == tns)
    components = {(etree.QName(c).localname, c.get("name", "")): c for c in schema if isinstance(c.tag, str)}
    root_declares = declared(root)
    return {d.dataset: tuple(element_text(components[key], root_declares)
                             for key in _closure(components, f"{d.dataset}_record", tns))
            for d in datasets}


def compose_catalog_wsdl(service_wsdl: bytes, schemas: list[tuple[str, tuple[bytes, ...]]]) -> bytes:
    """The catalog-native WSDL: the app's WSDL whose records (xs:anyType there) are ``AnyRecord``, an
    optional element per dataset of its record type, with every dataset's schema text put in."""
    root = parse_trusted(service_wsdl)
    xs = next(p for p, uri in root.nsmap.items() if uri == NS_XSD)
    tns = root.get("targetNamespace", "")
    prefix = next(p for p, uri in root.nsmap.items() if uri == tns and p)
    anytype = f' type="{xs}:anyType"'.encode()
    # records travel in three places: getRecord's answer, a change of getChanges, a page of searchRecords
    if service_wsdl.count(anytype) != 3 or service_wsdl.count(f"</{xs}:schema>".encode()) != 1:
        raise ValueError("the catalog app's WSDL is not the one this composition expects (three records, one schema)")
    members = b"".join(f'<{xs}:element name="{name}" type="{prefix}:{name}_record" minOccurs="0"/>'.encode()
                       for name, _ in schemas)
    any_record = (f'<{xs}:complexType name="AnyRecord"><{xs}:sequence>'.encode() + members
                  + f'</{xs}:sequence></{xs}:complexType><{xs}:element name="AnyRecord" type="{prefix}:AnyRecord"/>'.encode())
    seen: set[bytes] = set()
    texts = []
    for _, parts in schemas:
        for part in parts:
            if part not in seen:
                seen.add(part)
                texts.append(part)
    text = service_wsdl.replace(anytype, f' type="{prefix}:AnyRecord"'.encode())
    return text.replace(f"</{xs}:schema>".encode(), b"".join(texts) + any_record + f"</{xs}:schema>".encode())
