"""A contract mapping checked against its WSDL's schema (zeep's view of it) and against its dataset.

Every element, attribute and ``#text`` a mapping names must exist where the mapping says; every
element the old schema requires in an answer must be mapped, constant or computed; every field path
must exist in the dataset, lookups must use key fields and searches indexed ones. Each problem is
``(path in the mapping YAML, message)`` so that the caller reports file, line and element.
"""

from __future__ import annotations

from typing import Any

from viss_bridge.catalog.contract_mapping import ElementMapping, FieldMap, OperationMapping, mapping_problems
from viss_bridge.catalog.manifest import Dataset

Problem = tuple[tuple[str, ...], str]
TEXT_SLOT = "_value_1"  # zeep's name of a simple-content complex type's text


def _elements(ztype: Any) -> dict[str, Any]:
    try:
        return dict(getattr(ztype, "elements", []) or [])
    except Exception:  # a simple type
        return {}


def _attributes(ztype: Any) -> dict[str, Any]:
    try:
        return dict(getattr(ztype, "attributes", []) or [])
    except Exception:
        return {}


def _name(ztype: Any) -> str:
    qname = getattr(ztype, "qname", None)
    return getattr(qname, "localname", None) or getattr(ztype, "name", None) or "the element"


def _is_complex(ztype: Any) -> bool:
    elements = _elements(ztype)
    return bool(elements) and list(elements) != [TEXT_SLOT]


def fields_problems(mapping: FieldMap, ztype: Any, path: tuple[str, ...], where: str) -> list[Problem]:
    """A ``fields:`` mapping against the zeep type of the element it fills (``where`` names it)."""
    problems: list[Problem] = []
    elements, attributes = _elements(ztype), _attributes(ztype)
    simple = list(elements) == [TEXT_SLOT] or (not elements and not _is_complex(ztype))
    covered: set[str] = set()
    for key, target in mapping.items():
        at = path + (key,)
        if key == "#text":
            if not simple:
                problems.append((at, f"{where} has no simple content (#text); its elements: {', '.join(elements)}"))
            continue
        if key.startswith("@"):
            if key[1:] not in attributes:
                problems.append((at, f"{where} has no attribute {key[1:]}"
                                     + (f" (attributes: {', '.join(attributes)})" if attributes else "")))
            covered.add(key)
            continue
        element = elements.get(key)
        if element is None or key == TEXT_SLOT:
            names = [n for n in elements if n != TEXT_SLOT]
            problems.append((at, f"{where} has no element {key} (elements: {', '.join(names) or 'none'})"))
            continue
        covered.add(key)
        if not isinstance(target, ElementMapping):
            if _is_complex(element.type) and not isinstance(target, str):
                continue
            if _is_complex(element.type):
                problems.append((at, f"{key} holds elements ({', '.join(_elements(element.type))}); "
                                     f"map it as {{field, fields}} or {{fields}}"))
            continue
        child = element.type
        if target.item:
            inner = _elements(child).get(target.item)
            if inner is None:
                problems.append((at + ("item",), f"{key} has no element {target.item} "
                                                 f"(elements: {', '.join(_elements(child)) or 'none'})"))
                continue
            if inner.max_occurs == 1:
                problems.append((at + ("item",), f"{key}/{target.item} does not repeat (maxOccurs 1); "
                                                 "a wrapper's item is the repeated child"))
            if target.fields:
                problems.extend(fields_problems(target.fields, inner.type, at + ("fields",), f"{key}/{target.item}"))
        elif target.fields:
            problems.extend(fields_problems(target.fields, child, at + ("fields",), key))
    for name, element in elements.items():
        if name != TEXT_SLOT and element.min_occurs >= 1 and not element.nillable and name not in covered:
            problems.append((path, f"{where} requires element {name}, which is not mapped"))
    for name, attribute in attributes.items():
        if getattr(attribute, "required", False) and f"@{name}" not in covered:
            problems.append((path, f"{where} requires attribute {name}, which is not mapped"))
    return problems


def _has_path(ztype: Any, dotted: str) -> bool:
    current = ztype
    for part in dotted.split("."):
        element = _elements(current).get(part)
        if element is None:
            return False
        current = element.type
    return True


def operation_problems(name: str, mapping: OperationMapping, request_element: Any, response_element: Any
                       ) -> list[Problem]:
    """Everything one operation's mapping names, against the WSDL's request and response elements."""
    base = ("operations", name)
    problems: list[Problem] = []
    request_children = _elements(request_element.type)
    response_children = _elements(response_element.type)
    req_name, resp_name = request_element.qname.localname, response_element.qname.localname

    def need(path: tuple[str, ...], element: str | None, children: dict[str, Any], parent: str) -> bool:
        if element and element not in children:
            problems.append((base + path, f"{parent} has no child {element} (children: {', '.join(children)})"))
            return False
        return bool(element)

    covered: set[str] = set()
    for element in mapping.request:
        need(("request", element), element, request_children, req_name)
    record_type = None
    if mapping.kind == "changes":
        for key in ("since", "after_key", "page_size_element"):
            need((key,), getattr(mapping, key), request_children, req_name)
        for key in ("items", "more"):
            if need((key,), getattr(mapping, key), response_children, resp_name):
                covered.add(getattr(mapping, key))
        if mapping.items in response_children:
            item_type = response_children[mapping.items].type
            for key in ("record", "changed_at"):
                need((key,), getattr(mapping, key), _elements(item_type), mapping.items or "")
            if mapping.record in _elements(item_type):
                record_type = _elements(item_type)[mapping.record].type
    elif mapping.kind == "lookup" or mapping.single:
        if need(("response",), mapping.response, response_children, resp_name):
            covered.add(mapping.response or "")
            record_type = response_children[mapping.response or ""].type
    else:
        holder, holder_name = response_children, resp_name
        if mapping.wrapper:
            if need(("wrapper",), mapping.wrapper, response_children, resp_name):
                covered.add(mapping.wrapper)
                holder, holder_name = _elements(response_children[mapping.wrapper].type), mapping.wrapper
            else:
                holder = {}
        if holder and need(("items",), mapping.items, holder, holder_name):
            covered.add(mapping.items or "")
            item = holder[mapping.items or ""]
            if item.max_occurs == 1:
                problems.append((base + ("items",), f"{holder_name}/{mapping.items} does not repeat (maxOccurs 1)"))
            record_type = item.type
    if mapping.paging is not None:
        for key in ("page", "cursor", "page_size"):
            need(("paging", key), getattr(mapping.paging, key), request_children, req_name)
        if need(("paging", "cursor_out"), mapping.paging.cursor_out, response_children, resp_name):
            covered.add(mapping.paging.cursor_out or "")
    values = [("constants", p) for p in mapping.constants] + [("computed", p) for p in mapping.computed]
    if mapping.not_found is not None and mapping.not_found.answer:
        values += [("not_found", p) for p in mapping.not_found.answer]
    for section, dotted in values:
        path = base + (section,) + (("answer",) if section == "not_found" else ()) + (dotted,)
        if not _has_path(response_element.type, dotted):
            problems.append((path, f"{resp_name} has no element {dotted} (children: {', '.join(response_children)})"))
        elif section != "not_found":
            covered.add(dotted.split(".")[0])
    for child, element in response_children.items():
        if element.min_occurs >= 1 and not element.nillable and child not in covered:
            problems.append((base, f"{resp_name} requires {child}, which the mapping does not give "
                                   "(map it as response/items, or give it in constants or computed)"))
    if record_type is not None:
        problems.extend(fields_problems(mapping.fields, record_type, base + ("fields",),
                                        mapping.response or mapping.record or mapping.items or resp_name))
    return problems


def record_type(mapping: OperationMapping, response_element: Any) -> Any:
    """The zeep type of the element that carries one record in an operation's answer (None if not found)."""
    children = _elements(response_element.type)
    if mapping.kind == "changes":
        item = children.get(mapping.items or "")
        record = _elements(item.type).get(mapping.record or "") if item is not None else None
        return record.type if record is not None else None
    if mapping.kind == "lookup" or mapping.single:
        element = children.get(mapping.response or "")
        return element.type if element is not None else None
    if mapping.wrapper:
        wrapper = children.get(mapping.wrapper)
        children = _elements(wrapper.type) if wrapper is not None else {}
    element = children.get(mapping.items or "")
    return element.type if element is not None else None


def dataset_problems(name: str, mapping: OperationMapping, dataset: Dataset) -> list[Problem]:
    """Field paths, key fields and searched fields of one operation against its dataset."""
    base = ("operations", name)
    problems: list[Problem] = []
    if mapping.kind == "lookup":
        for element, field in mapping.request.items():
            if field not in dataset.key:
                problems.append((base + ("request", element),
                                 f"'{field}' is not a key field of {dataset.dataset} (key: {', '.join(dataset.key)})"))
    elif mapping.kind == "search":
        searchable = set(dataset.indexes) | set(dataset.key)
        for element, criterion in mapping.criteria_fields().items():
            if criterion.field not in searchable:
                problems.append((base + ("request", element),
                                 f"'{criterion.field}' is not indexed in {dataset.dataset} (indexes: "
                                 f"{', '.join(dataset.indexes) or 'none'}; add it to the manifest's indexes)"))
    found = mapping_problems(mapping.fields, dataset.fields, ())
    problems.extend((base + ("fields",) + p, m) for p, m in found if "is not mapped" not in m)
    return problems


# -- value types: a dataset field against the XSD type of the element or attribute carrying it ------

# the XSD built-in (zeep's class name, found in the type's MRO) each dataset type may travel in
_COMPATIBLE = {
    "string": ("String",),
    "integer": ("Decimal", "Float", "Double"),  # xs:int, xs:long, ... derive from xs:decimal
    "decimal": ("Decimal", "Float", "Double"),
    "boolean": ("Boolean",),
    "date": ("Date",),
    "datetime": ("DateTime",),
}


def _builtins(ztype: Any) -> list[str]:
    return [k.__name__ for k in type(ztype).__mro__]


def _compatible(kind: str, ztype: Any) -> bool:
    names = _builtins(ztype)
    if "ComplexType" in names or "AnySimpleType" not in names:
        return True  # reported (or not) by the structural check
    if "AnyType" in names and names.index("AnySimpleType") == 0:
        return True  # xs:anySimpleType carries anything
    if kind == "decimal" and "Integer" in names:
        return False  # a decimal value would lose its fraction
    return any(name in names for name in _COMPATIBLE.get(kind, ()))


def _slot(ztype: Any, key: str) -> Any:
    if key == "#text":
        element = _elements(ztype).get(TEXT_SLOT)
        return element.type if element is not None else None
    if key.startswith("@"):
        attribute = _attributes(ztype).get(key[1:])
        return attribute.type if attribute is not None else None
    element = _elements(ztype).get(key)
    return element.type if element is not None else None


def type_problems(mapping: FieldMap, ztype: Any, fields: tuple[Any, ...], path: tuple[str, ...]) -> list[Problem]:
    """Every mapped value whose dataset type the XSD type of its element or attribute cannot carry."""
    from viss_bridge.catalog.contract_mapping import Constant, _resolve

    problems: list[Problem] = []
    for key, target in mapping.items():
        if isinstance(target, Constant):
            continue
        slot = _slot(ztype, key)
        if slot is None:
            continue
        at = path + (key,)
        if isinstance(target, ElementMapping) and target.field is None:
            problems += type_problems(target.fields or {}, slot, fields, at + ("fields",))
            continue
        name = target if isinstance(target, str) else target.field
        field = _resolve(fields, name or "")[0] if name and "[]" not in name else None
        if field is None:
            continue
        kind = field.type.value
        if isinstance(target, str):
            scalar = field.items.value if kind == "list" and field.items is not None else kind
            if scalar in _COMPATIBLE and not _compatible(scalar, slot):
                problems.append((at, f"'{name}' is {scalar}, but {key} is {_builtins(slot)[0]}: the types do not fit"))
            continue
        inner = _elements(slot).get(target.item).type if target.item and target.item in _elements(slot) else slot
        if kind == "list" and field.items is not None:
            if not _compatible(field.items.value, inner):
                problems.append((at, f"'{name}' holds {field.items.value} values, but {target.item or key} is "
                                     f"{_builtins(inner)[0]}: the types do not fit"))
        elif field.fields is not None and target.fields:
            problems += type_problems(target.fields, inner, field.fields, at + ("fields",))
    return problems
