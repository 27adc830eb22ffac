"""Compare two WSDLs by what they declare, not by the order or prefixes a generator happened to use.

Spyne writes schema types in an order of its own (a topological sort over sets), and a WSDL
composed from per-service pieces lists them service by service; clients read neither order. Two
WSDLs are the same contract when every schema (by target namespace) declares the same named
components with the same content, and the messages, port types, bindings and services agree.
"""

from __future__ import annotations

from typing import Any

from lxml import etree

NS_WSDL = "http://schemas.xmlsoap.org/wsdl/"
NS_XSD = "http://www.w3.org/2001/XMLSchema"


def _canonical(element: etree._Element) -> str:
    """The element with its QName-valued attributes resolved to {namespace}name, children in document order."""
    parts = [etree.QName(element).text]
    for key in sorted(element.attrib):
        value = element.attrib[key]
        if key in ("type", "base", "element", "message", "binding", "ref", "itemType") and ":" in value:
            prefix, local = value.split(":", 1)
            value = "{%s}%s" % (element.nsmap.get(prefix, prefix), local)
        parts.append(f"@{key}={value}")
    text = (element.text or "").strip()
    if text:
        parts.append(f"text={text}")
    children = [_canonical(child) for child in element if isinstance(child.tag, str)]
    return "(" + " ".join(parts + children) + ")"


def contract(wsdl: bytes) -> dict[str, Any]:
    """What a WSDL declares: per schema namespace its named components; messages, operations, services."""
    root = etree.fromstring(wsdl)
    schemas: dict[str, dict[tuple[str, str], str]] = {}
    for schema in root.iter(f"{{{NS_XSD}}}schema"):
        declared = schemas.setdefault(schema.get("targetNamespace", ""), {})
        for child in schema:
            if not isinstance(child.tag, str):
                continue
            name = child.get("name") or child.get("namespace") or ""
            declared[(etree.QName(child).localname, name)] = _canonical(child)
    result: dict[str, Any] = {"schemas": schemas}
    for kind in ("message", "portType", "binding", "service"):
        items: dict[tuple[str, str], str] = {}
        for element in root.iterfind(f"{{{NS_WSDL}}}{kind}"):
            if kind in ("portType", "binding"):  # operations one by one: their order is not part of the contract
                head = etree.Element(element.tag, {k: v for k, v in element.attrib.items()}, nsmap=element.nsmap)
                items[(kind, element.get("name", ""))] = _canonical(head) + "".join(
                    sorted(_canonical(c) for c in element if isinstance(c.tag, str) and
                           etree.QName(c).localname != "operation"))
                for operation in element.iterfind(f"{{{NS_WSDL}}}operation"):
                    items[(kind + "/operation", element.get("name", "") + "/" + operation.get("name", ""))] = \
                        _canonical(operation)
            else:
                items[(kind, element.get("name", ""))] = _canonical(element)
        result[kind] = items
    return result


def differences(first: bytes, second: bytes, limit: int = 10) -> list[str]:
    """Human-readable differences between two WSDLs' contracts (empty: the same contract)."""
    a, b = contract(first), contract(second)
    found: list[str] = []
    for section in sorted(set(a) | set(b)):
        left, right = a.get(section, {}), b.get(section, {})
        if section == "schemas":
            for ns in sorted(set(left) | set(right)):
                la, rb = left.get(ns, {}), right.get(ns, {})
                for key in sorted(set(la) | set(rb)):
                    if la.get(key) != rb.get(key):
                        found.append(f"schema {ns} {key}: {la.get(key, '(absent)')[:200]} != {rb.get(key, '(absent)')[:200]}")
        else:
            for key in sorted(set(left) | set(right)):
                if left.get(key) != right.get(key):
                    found.append(f"{section} {key}: {left.get(key, '(absent)')[:200]} != {right.get(key, '(absent)')[:200]}")
    return found[:limit]
