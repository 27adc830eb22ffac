"""X-Road dataset lookups answered without running Spyne per request (issue 12, throughput).

Why: for a lookup, about 40 % of a worker's CPU went to Spyne's per-call machinery (a WSGI
environ and method context per call, typed deserialisation of a few key strings, the object
tree of the answer and its serialisation). The request is already parsed and hardened
(``soap_runtime.parse_soap``) and the answer's shape is fixed by the manifest, so this module
reads the keys from that tree and writes the answer with lxml directly.

It reproduces exactly what the Spyne path does (``XRoadFacade._operation`` with
``PreparsedSoap11(validator=None)`` in, ``Soap11(cleanup_namespaces=True)`` out); the unit test
``tests/unit/test_xroad_fast.py`` compares both for every demo dataset. In particular:

- keys: a body child counts by its local name in any namespace (as Spyne's
  ``complex_from_element``), the last of repeated ones wins, a missing key is None, an empty one
  ''; there is no length or occurrence check (the Spyne app runs without a validator);
- answer: fields in manifest order, all in the datasets' namespace; a missing value is left out
  unless its element is required (then ``xsi:nil``, as Spyne writes it, also for a required
  field that is not nillable); lists repeat their element; values formatted as Spyne's
  ``to_unicode`` does with default attributes (``str`` of ints and decimals, ``isoformat`` of
  dates and datetimes, ``true``/``false``);
- faults of the guarded read: the bridge's SOAP 1.1 fault without headers, HTTP 500.

What it does not do, it says so: :func:`unsupported` names why a dataset stays on Spyne (decided
once when the service is built), and :meth:`FastLookup.answer` returns None for the rare request
whose key elements carry attributes (``xsi:type``, ``xsi:nil``, an attribute named like a key),
which Spyne interprets in ways not worth copying; Spyne then answers it, through the same read.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Callable

from lxml import etree

from viss_bridge.catalog.manifest import Dataset, Field, FieldType
from viss_bridge.facade import faults
from viss_bridge.facade.soap_runtime import SoapResponse, to_bridge_fault
from viss_bridge.xml import NS_SOAP11, NS_XSI

Formatter = Callable[[Any], Any]
_XSI_TYPE = f"{{{NS_XSI}}}type"
_NIL = f"{{{NS_XSI}}}nil"
# What Spyne's Soap11 declares on the envelope (before cleanup_namespaces drops unused ones).
_NSMAP_PREFIXES = ("xsi", "soap11env", "tns")


def _text(value: Any) -> Any:
    return value  # Spyne's unicode_to_unicode: the value itself (lxml refuses a non-string, as under Spyne)


def _integer(value: Any) -> str:
    int(value)  # Spyne's sanity check
    return str(value)


def _decimal(value: Any) -> str:
    Decimal(value)  # Spyne's sanity check
    return str(value)


def _boolean(value: Any) -> str:
    return str(bool(value)).lower()


def _date(value: Any) -> str:
    if isinstance(value, dt.datetime):
        value = value.date()
    return str(value.isoformat())


def _datetime(value: Any) -> str:
    return str(value.isoformat())  # timezone kept, no format: Spyne's DateTime defaults


FORMATTERS: dict[FieldType, Formatter] = {
    FieldType.STRING: _text, FieldType.INTEGER: _integer, FieldType.DECIMAL: _decimal,
    FieldType.BOOLEAN: _boolean, FieldType.DATE: _date, FieldType.DATETIME: _datetime,
}

# How a field is written (one element per value unless said otherwise).
SCALAR, VALUES, OBJECT, OBJECTS = "scalar", "values", "object", "objects"


@dataclass(frozen=True)
class Step:
    """One field of a record or structure, compiled from its manifest field once."""

    name: str
    tag: str
    kind: str
    required: bool  # minOccurs 1: a missing value is written as xsi:nil
    format: Formatter | None = None
    fields: tuple["Step", ...] = ()


def unsupported(dataset: Dataset) -> str | None:
    """Why this dataset's lookups stay on Spyne, or None when the fast path answers them."""
    for field in dataset.key_fields:
        if field.type is not FieldType.STRING:
            return f"key field {field.name} is a {field.type.value} (the fast path reads string keys only)"

    def walk(fields: tuple[Field, ...]) -> str | None:
        for field in fields:
            if field.xml != "element":
                return f"field {field.name} is carried as xml: {field.xml}"
            if field.fields is not None:
                problem = walk(field.fields)
                if problem:
                    return problem
        return None

    return walk(dataset.fields)


def compile_fields(fields: tuple[Field, ...], namespace: str, keys: tuple[str, ...] = ()) -> tuple[Step, ...]:
    """The steps writing these fields, with Spyne's occurrence rules (``spyne_models.RecordModels``):
    a top-level key, a required or a nillable scalar or object has minOccurs 1; lists have 0."""
    steps = []
    for field in fields:
        tag = f"{{{namespace}}}{field.name}"
        if field.fields is not None:
            kind = OBJECTS if field.type is FieldType.LIST else OBJECT
            required = kind == OBJECT and (field.required or field.nillable)
            steps.append(Step(field.name, tag, kind, required, fields=compile_fields(field.fields, namespace)))
        elif field.is_value_list:
            assert field.items is not None
            steps.append(Step(field.name, tag, VALUES, False, FORMATTERS[FieldType(field.items.value)]))
        else:
            assert field.value_type is not None
            required = field.name in keys or field.required or field.nillable
            steps.append(Step(field.name, tag, SCALAR, required, FORMATTERS[field.value_type]))
    return tuple(steps)


def _nil(parent: etree._Element, tag: str) -> None:
    etree.SubElement(parent, tag).set(_NIL, "true")


def fill(parent: etree._Element, steps: tuple[Step, ...], values: dict[str, Any]) -> None:
    """Write ``values`` (a record, an object or one element of a list of objects) under ``parent``."""
    sub = etree.SubElement
    for step in steps:
        value = values.get(step.name)
        kind = step.kind
        if value is None:
            if step.required:
                _nil(parent, step.tag)
        elif kind is SCALAR:
            sub(parent, step.tag).text = step.format(value)  # type: ignore[misc]
        elif kind is VALUES:
            for item in value:
                if item is None:
                    _nil(parent, step.tag)
                else:
                    sub(parent, step.tag).text = step.format(item)  # type: ignore[misc]
        elif kind is OBJECT:
            fill(sub(parent, step.tag), step.fields, value)
        else:
            for item in value:
                if item is None:
                    _nil(parent, step.tag)
                else:
                    fill(sub(parent, step.tag), step.fields, item)


class FastLookup:
    """The lookup service of one dataset as one permission reads it (``dataset`` already narrowed)."""

    def __init__(self, dataset: Dataset, namespace: str, keys: tuple[str, ...]) -> None:
        self.dataset = dataset
        self.namespace = namespace
        self.key_names = keys
        self._steps = compile_fields(dataset.fields, namespace, keys)
        self._response_tag = f"{{{namespace}}}{dataset.dataset}Response"
        self._record_tag = f"{{{namespace}}}record"
        self._nsmap = dict(zip(_NSMAP_PREFIXES, (NS_XSI, NS_SOAP11, namespace)))

    def keys(self, body: etree._Element) -> dict[str, Any] | None:
        """The key values as Spyne reads them from the operation element; None: let Spyne read this one."""
        if body.get(_XSI_TYPE) is not None:
            return None
        values: dict[str, Any] = dict.fromkeys(self.key_names)
        for child in body:  # parse_soap removed comments and processing instructions
            tag = child.tag
            if not isinstance(tag, str):
                continue
            name = tag.rsplit("}", 1)[-1]
            if name not in values:
                continue
            if len(child.attrib):
                return None
            text = child.text
            values[name] = "" if text is None else text
        return values

    def render(self, header: list[etree._Element], record: dict[str, Any] | None) -> bytes:
        """The answer envelope: Spyne's element names, order and namespaces, the echoed X-Road headers."""
        envelope = etree.Element(f"{{{NS_SOAP11}}}Envelope", nsmap=self._nsmap)
        body = etree.SubElement(envelope, f"{{{NS_SOAP11}}}Body")
        response = etree.SubElement(body, self._response_tag)
        if record is not None:
            fill(etree.SubElement(response, self._record_tag), self._steps, record)
        etree.cleanup_namespaces(envelope)  # as Soap11(cleanup_namespaces=True), before the header goes in
        soap_header = etree.Element(f"{{{NS_SOAP11}}}Header")
        soap_header.extend(header)
        envelope.insert(0, soap_header)
        return etree.tostring(envelope, xml_declaration=True, encoding="UTF-8")

    def answer(self, body: etree._Element, read: Callable[[dict[str, Any]], dict[str, Any] | None],
               header: Callable[[], list[etree._Element]]) -> tuple[SoapResponse, bool | None] | None:
        """(response, found: None after a fault), or None when Spyne must read this request's keys.

        ``read`` is the guarded read of the key values; a fault it raises becomes the answer as
        under Spyne (the bridge's envelope, HTTP 500, no header); anything else is InternalError,
        logged with the fault id by ``to_bridge_fault``.
        """
        keys = self.keys(body)
        if keys is None:
            return None
        try:
            record = read(keys)
        except Exception as exc:  # the Spyne path's call_wrapper does the same
            fault = to_bridge_fault(exc)
            return SoapResponse(500, faults.soap11_fault(fault), fault=fault), None
        return SoapResponse(200, self.render(header(), record)), record is not None
