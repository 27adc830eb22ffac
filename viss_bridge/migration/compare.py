"""Semantic comparison of two SOAP answers: do they say the same thing?

Two stacks serialising the same data differ in ways no consumer cares about:
namespace prefixes, indentation, the order of a list that has no order,
``1.50`` against ``1.5``, ``2024-05-01T10:00:00Z`` against
``2024-05-01T12:00:00+02:00``. Both messages are therefore reduced to a
canonical form before they are compared, and what still differs is reported
as a list of :class:`Difference` with the exact path (``Person/Address[2]/ValidFrom``)
and both values.

Canonical form (see docs/migration.md, "What counts as equal"):

* elements and attributes by namespace URI and local name (prefixes are ignored);
* only the SOAP Body is compared (headers carry per-call ids and hashes); a Fault
  is compared by its code, not its human-readable text;
* leading and trailing whitespace of values is ignored, and whitespace between elements;
* values are compared by their XSD type where the WSDL gives it (numbers by value,
  booleans ``1``/``true``, dates and times by the instant they denote); without a
  type, only unambiguous forms are normalised (numbers without leading zeros,
  ISO dates and times);
* an element with ``xsi:nil="true"`` counts as absent;
* repeated elements under a path declared unordered are matched as a multiset;
* paths declared ignored are skipped.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from lxml import etree

from viss_bridge.xml import NS_SOAP11, NS_SOAP12, NS_XSI, XmlRejected, parse_untrusted

NUMERIC_TYPES = {"decimal", "integer", "int", "long", "short", "byte", "float", "double", "nonNegativeInteger",
                 "positiveInteger", "nonPositiveInteger", "negativeInteger", "unsignedLong", "unsignedInt",
                 "unsignedShort", "unsignedByte"}
_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")
_UNAMBIGUOUS_NUMBER = re.compile(r"^[+-]?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?$")
_DATE = re.compile(r"^(\d{4}-\d{2}-\d{2})(Z|[+-]\d{2}:\d{2})?$")
_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})?$")
_TIME = re.compile(r"^\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})?$")


class NotSoap(ValueError):
    """An answer that is not a SOAP envelope (an HTML error page, an empty body)."""


@dataclass(frozen=True)
class Difference:
    path: str
    kind: str  # changed | missing_in_bridge | extra_in_bridge | fault
    legacy: str | None
    bridge: str | None

    def describe(self) -> str:
        if self.kind == "missing_in_bridge":
            return f"{self.path}: legacy has {self.legacy!r}, bridge has nothing"
        if self.kind == "extra_in_bridge":
            return f"{self.path}: bridge has {self.bridge!r}, legacy has nothing"
        return f"{self.path}: legacy {self.legacy!r}, bridge {self.bridge!r}"

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "kind": self.kind, "legacy": self.legacy, "bridge": self.bridge}


@dataclass
class CompareOptions:
    unordered: tuple[str, ...] = ()  # path patterns of repeated elements whose order does not matter
    ignore: tuple[str, ...] = ()  # path patterns to leave out
    types: dict[str, str] = field(default_factory=dict)  # path (without indices) -> XSD builtin type local name

    def is_unordered(self, path: str) -> bool:
        return any(fnmatch.fnmatchcase(path, p) or fnmatch.fnmatchcase(path, f"*/{p}") for p in self.unordered)

    def is_ignored(self, path: str) -> bool:
        return any(fnmatch.fnmatchcase(path, p) or fnmatch.fnmatchcase(path, f"*/{p}") for p in self.ignore)


@dataclass
class Node:
    """A canonical element: Clark name, attributes, normalised text, children."""

    name: str  # local name, used in paths
    clark: str
    attrs: dict[str, str]
    text: str
    children: list["Node"]
    nil: bool = False


MAX_ANSWER_BYTES = 32 * 1024 * 1024  # legacy answers (lists, attachments inline) can exceed the bridge's request limit


def body_of(message: bytes, max_bytes: int = MAX_ANSWER_BYTES) -> etree._Element:
    """The first element in the SOAP Body (or the Fault), from untrusted bytes."""
    try:
        root = parse_untrusted(message, max_bytes=max_bytes)
    except XmlRejected as exc:
        raise NotSoap(str(exc)) from None
    namespace = etree.QName(root).namespace
    if etree.QName(root).localname != "Envelope" or namespace not in (NS_SOAP11, NS_SOAP12):
        raise NotSoap(f"not a SOAP envelope (root element {etree.QName(root).localname})")
    body = root.find(f"{{{namespace}}}Body")
    if body is None:
        raise NotSoap("the SOAP envelope has no Body")
    for child in body:
        if isinstance(child.tag, str):
            return child
    raise NotSoap("the SOAP Body is empty")


def fault_code(element: etree._Element) -> str | None:
    """The fault code as a Clark name (SOAP 1.1 faultcode or SOAP 1.2 Code/Value, with subcodes)."""
    qname = etree.QName(element)
    if qname.localname != "Fault" or qname.namespace not in (NS_SOAP11, NS_SOAP12):
        return None
    if qname.namespace == NS_SOAP11:
        code = element.find("faultcode")
        values = [code] if code is not None else []
    else:
        values = [v for v in element.iter(f"{{{NS_SOAP12}}}Value")]
    codes = []
    for value in values:
        text = (value.text or "").strip()
        prefix, _, local = text.rpartition(":")
        ns = value.nsmap.get(prefix or None, "")
        codes.append(f"{{{ns}}}{local}" if ns else local)
    return " / ".join(codes) or "(no code)"


def canonical(element: etree._Element, options: CompareOptions, path: str = "") -> Node:
    name = etree.QName(element).localname
    path = f"{path}/{name}" if path else name
    attrs: dict[str, str] = {}
    nil = False
    for key, value in element.attrib.items():
        q = etree.QName(key)
        if q.namespace == NS_XSI:
            if q.localname == "nil":
                nil = value.strip() in ("true", "1")
                continue
            if q.localname in ("schemaLocation", "noNamespaceSchemaLocation"):
                continue
            if q.localname == "type":
                prefix, _, local = value.strip().rpartition(":")
                value = f"{{{element.nsmap.get(prefix or None, '')}}}{local}"
        attr_path = f"{path}/@{q.localname}"
        if options.is_ignored(attr_path):
            continue
        attrs[key] = normalise_value(value, options.types.get(_strip_indices(attr_path)))
    children = [canonical(child, options, path) for child in element
                if isinstance(child.tag, str) and not options.is_ignored(f"{path}/{etree.QName(child).localname}")]
    children = [c for c in children if not c.nil]
    text = ""
    if not children:
        text = normalise_value((element.text or ""), options.types.get(_strip_indices(path)))
    return Node(name, element.tag, attrs, text, children, nil)


def _strip_indices(path: str) -> str:
    return re.sub(r"\[\d+\]", "", path)


def normalise_value(text: str, xsd_type: str | None) -> str:
    """A value's canonical text: by XSD type when known, otherwise only unambiguous forms."""
    value = text.strip()
    if not value:
        return ""
    local = (xsd_type or "").rpartition(":")[2]
    if local:
        if local in NUMERIC_TYPES:
            return _number(value) or value
        if local == "boolean":
            return {"1": "true", "true": "true", "0": "false", "false": "false"}.get(value, value)
        if local == "date":
            return _date(value) or value
        if local == "dateTime":
            return _datetime(value) or value
        if local == "time":
            return _time(value) or value
        return value
    if _UNAMBIGUOUS_NUMBER.match(value):
        return _number(value) or value
    if _DATETIME.match(value):
        return _datetime(value) or value
    if _DATE.match(value):
        return _date(value) or value
    return value


def _number(value: str) -> str | None:
    if not _NUMBER.match(value):
        return None
    try:
        number = Decimal(value)
    except InvalidOperation:
        return None
    if number == 0:
        return "0"
    normal = number.normalize()
    sign, digits, exponent = normal.as_tuple()
    if isinstance(exponent, int) and exponent > 0:
        normal = normal.quantize(Decimal(1))
    return format(normal, "f")


def _date(value: str) -> str | None:
    match = _DATE.match(value)
    if not match:
        return None
    zone = match.group(2)
    if zone in (None, "Z", "+00:00", "-00:00"):
        return match.group(1)
    return f"{match.group(1)}{zone}"


def _datetime(value: str) -> str | None:
    if not _DATETIME.match(value):
        return None
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        return parsed.isoformat(timespec="microseconds") + " (no time zone)"
    return parsed.astimezone(dt.timezone.utc).isoformat(timespec="microseconds")


def _time(value: str) -> str | None:
    match = _TIME.match(value)
    if not match:
        return None
    try:
        parsed = dt.time.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is not None:
        moment = dt.datetime.combine(dt.date(2000, 1, 1), parsed).astimezone(dt.timezone.utc)
        return moment.time().isoformat(timespec="microseconds") + "Z"
    return parsed.isoformat(timespec="microseconds")


def _key(node: Node) -> str:
    """A canonical serialisation, used to match unordered siblings."""
    attrs = ",".join(f"{k}={v}" for k, v in sorted(node.attrs.items()))
    inner = "".join(sorted(_key(c) for c in node.children)) if node.children else node.text
    return f"<{node.clark}[{attrs}]>{inner}</>"


def _render(node: Node) -> str:
    """A short human-readable value for a node in a difference."""
    if not node.children:
        return node.text
    return "{" + ", ".join(f"{c.name}: {_render(c)}" for c in node.children) + "}"


def diff_nodes(legacy: Node, bridge: Node, options: CompareOptions, path: str) -> list[Difference]:
    differences: list[Difference] = []
    if legacy.clark != bridge.clark:
        return [Difference(path, "changed", legacy.clark, bridge.clark)]
    for key in sorted(set(legacy.attrs) | set(bridge.attrs)):
        a, b = legacy.attrs.get(key), bridge.attrs.get(key)
        if a != b:
            kind = "missing_in_bridge" if b is None else "extra_in_bridge" if a is None else "changed"
            differences.append(Difference(f"{path}/@{etree.QName(key).localname}", kind, a, b))
    if not legacy.children and not bridge.children:
        if legacy.text != bridge.text:
            differences.append(Difference(path, "changed", legacy.text, bridge.text))
        return differences
    order: list[str] = []
    groups_a: dict[str, list[Node]] = {}
    groups_b: dict[str, list[Node]] = {}
    for node in legacy.children:
        if node.clark not in groups_a and node.clark not in groups_b:
            order.append(node.clark)
        groups_a.setdefault(node.clark, []).append(node)
    for node in bridge.children:
        if node.clark not in groups_a and node.clark not in groups_b:
            order.append(node.clark)
        groups_b.setdefault(node.clark, []).append(node)
    if legacy.text != bridge.text and (legacy.text or bridge.text):
        differences.append(Difference(path, "changed", legacy.text, bridge.text))
    for clark in order:
        a_list, b_list = groups_a.get(clark, []), groups_b.get(clark, [])
        name = (a_list or b_list)[0].name
        child_path = f"{path}/{name}"
        several = len(a_list) > 1 or len(b_list) > 1
        if options.is_unordered(_strip_indices(child_path)) and several:
            a_list, b_list = _match_unordered(a_list, b_list)
        for index in range(max(len(a_list), len(b_list))):
            indexed = f"{child_path}[{index + 1}]" if several else child_path
            a = a_list[index] if index < len(a_list) else None
            b = b_list[index] if index < len(b_list) else None
            if a is None and b is not None:
                differences.append(Difference(indexed, "extra_in_bridge", None, _render(b)))
            elif b is None and a is not None:
                differences.append(Difference(indexed, "missing_in_bridge", _render(a), None))
            elif a is not None and b is not None:
                differences.extend(diff_nodes(a, b, options, indexed))
    return differences


def _match_unordered(a_list: list[Node], b_list: list[Node]) -> tuple[list[Node], list[Node]]:
    """Equal items first (in the legacy order), then what is left of each side in order."""
    remaining = list(b_list)
    keys_b = [_key(n) for n in remaining]
    matched_a, matched_b, rest_a = [], [], []
    for node in a_list:
        key = _key(node)
        if key in keys_b:
            position = keys_b.index(key)
            matched_a.append(node)
            matched_b.append(remaining.pop(position))
            keys_b.pop(position)
        else:
            rest_a.append(node)
    return matched_a + rest_a, matched_b + remaining


def compare_messages(legacy: bytes, bridge: bytes, options: CompareOptions | None = None) -> list[Difference]:
    """Differences between two SOAP answers (empty: semantically equal). Raises NotSoap."""
    options = options or CompareOptions()
    a, b = body_of(legacy), body_of(bridge)
    code_a, code_b = fault_code(a), fault_code(b)
    if code_a is not None or code_b is not None:
        if code_a == code_b:
            return []
        return [Difference("Fault", "fault", code_a or f"answer {etree.QName(a).localname}",
                           code_b or f"answer {etree.QName(b).localname}")]
    root = etree.QName(a).localname
    return diff_nodes(canonical(a, options), canonical(b, options), options, root)


def types_from_inventory(inventory: Any) -> dict[str, str]:
    """Path -> XSD type for every output (and input) field of an inventoried WSDL."""
    types: dict[str, str] = {}
    for service in inventory.services:
        for op in service.operations():
            for message in (op.input, op.output):
                if message is None or not message.element:
                    continue
                for row in message.fields:
                    if row.xsd_type.startswith("xs:"):
                        types[f"{message.element}/{row.path}"] = row.xsd_type
    return types
