"""The contract mapping format (v2): a generation-II response tree <-> dataset records, at any depth.

One model serves both directions: ``/legacy/<name>`` renders records into an old contract
(:func:`map_to_legacy`) and a ``legacy_soap`` source reads an old provider's answers into records
(:func:`map_to_dataset`). Configuration only: this module imports nothing else of the project.

Keys of a ``fields:`` mapping are an element name, ``"@name"`` (an attribute of the enclosing
element) or ``"#text"`` (the enclosing element's simple content). A value is

* a field path (``plate``, ``technical.fuel``: dots walk objects), the element carrying that value
  (a list of values makes the element repeat);
* ``{constant: V}``: the element always carries ``V`` (``@unit: {constant: kg}``);
* ``{field?, item?, fields?}``: a nested element. ``field`` names an object (the element holds its
  fields), a list of objects (the element repeats, one per entry; with ``item`` the element is a
  wrapper holding one ``item`` child per entry) or a list of values (with ``item``: a wrapper of
  repeated simple ``item`` children). Without ``field`` the element groups fields of the current
  record (``Mass: {fields: {"#text": mass, "@unit": {constant: kg}}}``).

The neutral tree both functions speak uses the same keys (``"@unit"``, ``"#text"``);
``facade.legacy_contract`` turns it into zeep's spelling (attributes by name, text as ``_value_1``).
"""

from __future__ import annotations

import ipaddress
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field as PydField, IPvAnyNetwork, model_validator

ELEMENT = r"^[A-Za-z_][A-Za-z0-9_.-]*$"
ElementName = Annotated[str, PydField(pattern=ELEMENT)]
# a key of ``fields:``: an element, an attribute (@name) or the simple content (#text)
MAP_KEY = r"^(#text|@?[A-Za-z_][A-Za-z0-9_.-]*)$"
MapKey = Annotated[str, PydField(pattern=MAP_KEY)]
# a dataset field path: names joined by dots (objects) and ``[].`` (into a list: request side only)
FIELD_PATH = r"^[a-z_][a-z0-9_]*(\[\])?((\.)[a-z_][a-z0-9_]*(\[\])?)*$"
FieldPath = Annotated[str, PydField(pattern=FIELD_PATH)]
TEXT = "#text"

COMPUTED = ("total", "page", "page_size", "more", "found", "count")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Constant(_Strict):
    """An element or attribute that always carries the same value (``ResultCode: 0``, ``unit="kg"``)."""

    constant: Union[bool, int, float, str]


class ElementMapping(_Strict):
    """A nested element: an object, a list of objects or values (repeated or in a wrapper), or a group."""

    field: FieldPath | None = None
    item: ElementName | None = None  # the repeated child of a wrapper element, one per list entry
    fields: dict[MapKey, Union[FieldPath, Constant, "ElementMapping"]] | None = None

    @model_validator(mode="after")
    def _shape(self) -> "ElementMapping":
        if self.field is None and not self.fields:
            raise ValueError("a nested element needs 'field' (the object or list it carries) or 'fields'")
        if self.field is None and self.item:
            raise ValueError("'item' (the repeated child of a wrapper) needs 'field' (the list)")
        return self


# v1 name: a repeated element mapped to a list of objects, ``{field, fields}``
ListMapping = ElementMapping
FieldTarget = Union[FieldPath, Constant, ElementMapping]
FieldMap = dict[MapKey, FieldTarget]


class RequestField(_Strict):
    """A request element that carries a search criterion; ``optional``: absent or empty means no criterion."""

    field: FieldPath
    optional: bool = False


class Paging(_Strict):
    """Which request elements page a search: page numbers (1-based) or an opaque cursor."""

    page: ElementName | None = None  # request element: the page number asked for
    cursor: ElementName | None = None  # request element: the cursor of the previous answer
    cursor_out: ElementName | None = None  # response element: the cursor for the next page (absent on the last)
    page_size: ElementName | None = None  # request element: the page size asked for (capped)
    default_page_size: Annotated[int, PydField(gt=0, le=10000)] = 20
    max_page_size: Annotated[int, PydField(gt=0, le=10000)] = 100

    @model_validator(mode="after")
    def _one_way(self) -> "Paging":
        if self.page and self.cursor:
            raise ValueError("paging is by 'page' or by 'cursor', not both")
        if self.default_page_size > self.max_page_size:
            raise ValueError("default_page_size is larger than max_page_size")
        return self


class FaultAnswer(_Strict):
    code: Annotated[str, PydField(pattern=r"^[A-Za-z][A-Za-z0-9_.-]*$")]  # faultcode without prefix, e.g. Client.X
    string: Annotated[str, PydField(min_length=1)]


class NotFound(_Strict):
    """What the old contract answered when nothing was found: exactly one of an answer or a fault."""

    answer: dict[Annotated[str, PydField(pattern=r"^[A-Za-z_][A-Za-z0-9_-]*(\.[A-Za-z_][A-Za-z0-9_-]*)*$")],
                 Union[bool, int, float, str]] | None = None
    fault: FaultAnswer | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> "NotFound":
        if (self.answer is None) == (self.fault is None):
            raise ValueError("not_found needs exactly one of 'answer' (response elements) or 'fault' {code, string}")
        return self


ResponsePath = Annotated[str, PydField(pattern=r"^[A-Za-z_][A-Za-z0-9_-]*(\.[A-Za-z_][A-Za-z0-9_-]*)*$")]


class OperationMapping(_Strict):
    dataset: str
    kind: Literal["lookup", "search", "changes"] = "lookup"
    fields: Annotated[FieldMap, PydField(min_length=1)]
    # lookup: request element -> key field; search: request element -> indexed field path (criterion)
    request: dict[ElementName, Union[FieldPath, RequestField]] = {}
    response: ElementName | None = None  # child of the response element carrying the record (lookup, single search)
    constants: dict[ResponsePath, Union[bool, int, float, str]] = {}  # response elements with fixed values
    not_found: NotFound | None = None  # absent: an answer without the record (the old providers' empty answer)
    # kind: search
    single: bool = False  # at most one answer, in ``response`` (a lookup by a unique non-key index)
    paging: Paging | None = None
    items: ElementName | None = None  # search: repeated response element, one per record; changes: one per change
    wrapper: ElementName | None = None  # search: the response element holding the items
    computed: dict[ResponsePath, Literal["total", "page", "page_size", "more", "found", "count"]] = {}
    # kind: changes (records changed after a time, paged by (time, key), as the old "changes" operations did)
    since: ElementName | None = None  # request element: changed after this dateTime
    after_key: ElementName | None = None  # request element: ...and after this key at that time
    page_size_element: ElementName | None = None  # request element: page size asked for
    page_size: Annotated[int, PydField(gt=0, le=10000)] = 100  # default and maximum page size
    record: ElementName | None = None  # its child carrying the record
    changed_at: ElementName | None = None  # its child carrying the change time
    more: ElementName | None = None  # response element: more pages follow

    @model_validator(mode="after")
    def _complete(self) -> "OperationMapping":
        if self.kind == "lookup":
            if not self.request or not self.response:
                raise ValueError("a lookup operation needs 'request' (element -> key field) and 'response'")
            if any(isinstance(v, RequestField) for v in self.request.values()):
                raise ValueError("a lookup's request maps elements to key fields (names), not {field, optional}")
        elif self.kind == "search":
            if not self.request:
                raise ValueError("a search operation needs 'request' (element -> indexed field)")
            if self.single and not self.response:
                raise ValueError("a single search (at most one answer) needs 'response' (the element carrying it)")
            if not self.single and not self.items:
                raise ValueError("a search operation needs 'items' (the repeated response element), or single: true")
        else:
            missing = [name for name in ("since", "items", "record", "changed_at") if not getattr(self, name)]
            if missing:
                raise ValueError(f"a changes operation needs {', '.join(missing)}")
        return self

    def criteria_fields(self) -> dict[str, RequestField]:
        """Request element -> its criterion, every value in the long form."""
        return {element: target if isinstance(target, RequestField) else RequestField(field=target)
                for element, target in self.request.items()}


class ContractMapping(_Strict):
    wsdl: str
    # The connection old callers (whose contract carries no caller) are served as, but only those the
    # operator vouches for: an authenticated caller is served as itself (TLS client certificate, trusted
    # proxy, WS-Security); an unauthenticated one stands for ``consumer`` only from a source network in
    # ``consumer_networks``, else it is anonymous (open data only), exactly as on /xroad.
    consumer: str | None = None
    consumer_networks: list[IPvAnyNetwork] = []
    operations: Annotated[dict[str, OperationMapping], PydField(min_length=1)]

    @model_validator(mode="after")
    def _networks_need_consumer(self) -> "ContractMapping":
        if self.consumer_networks and not self.consumer:
            raise ValueError("consumer_networks names who may stand for the consumer; it needs a consumer")
        return self

    def vouches_for(self, address: str | None) -> bool:
        """Whether an unauthenticated request from this TCP peer address stands for ``consumer``."""
        if not self.consumer or not self.consumer_networks or not address:
            return False
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip.version == net.version and ip in net for net in self.consumer_networks)


# -- records <-> the neutral legacy tree ------------------------------------------


def get_path(record: Any, path: str) -> Any:
    """The value at a dotted path of a record (objects only), None where a step is missing."""
    value = record
    for part in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def _set_path(record: dict[str, Any], path: str, value: Any) -> None:
    parts = path.split(".")
    for part in parts[:-1]:
        record = record.setdefault(part, {})
    if isinstance(value, dict) and isinstance(record.get(parts[-1]), dict):
        _merge(record[parts[-1]], value)
    else:
        record[parts[-1]] = value


def map_to_legacy(mapping: FieldMap, record: dict[str, Any]) -> dict[str, Any]:
    """Dataset record -> legacy element values: ``{Element: value | [values] | {...} | [{...}]}``,
    attributes as ``"@name"``, simple content as ``"#text"``; absent values are left out."""
    result: dict[str, Any] = {}
    for element, target in mapping.items():
        if isinstance(target, Constant):
            result[element] = target.constant
        elif isinstance(target, str):
            value = get_path(record, target)
            if value is not None and value != []:
                result[element] = value
        elif target.field is None:
            result[element] = map_to_legacy(target.fields or {}, record)
        else:
            value = get_path(record, target.field)
            if isinstance(value, list):
                entries = [map_to_legacy(target.fields, v) if target.fields is not None else v for v in value]
                if target.item:
                    result[element] = {target.item: entries}
                elif entries:
                    result[element] = entries
            elif isinstance(value, dict):
                result[element] = map_to_legacy(target.fields or {}, value)
            elif target.item:  # an empty list in a wrapper: the wrapper stays, empty
                result[element] = {target.item: []}
    return result


def _legacy_value(legacy: dict[str, Any], key: str) -> Any:
    """A value of zeep's serialised answer under a mapping key: "@unit" is ``unit``, "#text" is ``_value_1``."""
    if key in legacy:
        return legacy[key]
    if key == TEXT:
        return legacy.get("_value_1")
    if key.startswith("@"):
        return legacy.get(key[1:])
    return None


def map_to_dataset(mapping: FieldMap, legacy: dict[str, Any] | None, fields: tuple[Any, ...] | None = None
                   ) -> dict[str, Any]:
    """Legacy element values (as zeep gives them, serialised to dicts) -> dataset field values.

    ``fields`` (the dataset's) tells an object from a list where the answer leaves an element out."""
    result: dict[str, Any] = {}
    if not legacy:
        return result
    for element, target in mapping.items():
        value = _legacy_value(legacy, element)
        if isinstance(target, Constant):
            continue
        if isinstance(target, str):
            _set_path(result, target, value)
            continue
        if target.field is None:
            inner = map_to_dataset(target.fields or {}, value if isinstance(value, dict) else None, fields)
            _merge(result, inner)
            continue
        field = _resolve(fields, target.field)[0] if fields is not None else None
        inner_fields = field.fields if field is not None else None
        if target.item:
            value = value.get(target.item) if isinstance(value, dict) else None
        is_object = (field.type.value == "object") if field is not None else (isinstance(value, dict) and not target.item)
        if is_object:
            _set_path(result, target.field, None if value is None else map_to_dataset(target.fields or {}, value, inner_fields))
            continue
        items = value if isinstance(value, list) else ([] if value is None else [value])
        _set_path(result, target.field, [map_to_dataset(target.fields, v, inner_fields) if target.fields is not None else v
                                         for v in items])
    return result


def _merge(into: dict[str, Any], values: dict[str, Any]) -> None:
    for name, value in values.items():
        if isinstance(value, dict) and isinstance(into.get(name), dict):
            _merge(into[name], value)
        else:
            into[name] = value


# -- a mapping against the dataset's fields ----------------------------------------


def _resolve(fields: tuple[Any, ...], path: str) -> tuple[Any | None, str]:
    """The dataset field a dotted path names (walking objects), or None and why not."""
    current = fields
    field = None
    for index, part in enumerate(path.split(".")):
        by_name = {f.name: f for f in current or ()}
        field = by_name.get(part)
        if field is None:
            where = ".".join(path.split(".")[:index]) or "the record"
            return None, f"maps to '{path}', which is not a dataset field (fields of {where}: {', '.join(by_name)})"
        if index < len(path.split(".")) - 1:
            if field.type.value != "object":
                return None, f"maps to '{path}', but '{part}' is not an object field"
            current = field.fields
    return field, ""


def mapping_problems(mapping: FieldMap, fields: tuple[Any, ...], path: tuple[str, ...] = ("fields",)
                     ) -> list[tuple[tuple[str, ...], str]]:
    """Check a mapping against dataset fields: (path in the YAML, message) per problem."""
    problems, mapped = _problems(mapping, fields, path)
    for field in fields:
        if field.required and field.name not in mapped:
            problems.append((path, f"required dataset field '{field.name}' is not mapped from any legacy element"))
    return problems


def _problems(mapping: FieldMap, fields: tuple[Any, ...], path: tuple[str, ...]
              ) -> tuple[list[tuple[tuple[str, ...], str]], set[str]]:
    problems: list[tuple[tuple[str, ...], str]] = []
    mapped: set[str] = set()  # top-level fields reached (for the required check)
    seen: set[str] = set()  # field paths mapped (a path twice is a mistake)
    for element, target in mapping.items():
        where = path + (element,)
        if isinstance(target, Constant):
            continue
        if isinstance(target, ElementMapping) and target.field is None:
            inner, inner_mapped = _problems(target.fields or {}, fields, where + ("fields",))
            problems.extend(inner)
            twice = mapped & inner_mapped
            problems.extend((where, f"dataset field '{name}' is mapped twice") for name in sorted(twice))
            mapped |= inner_mapped
            continue
        name = target if isinstance(target, str) else target.field
        assert name is not None
        if "[]" in name:
            problems.append((where, f"'{name}': a record field path walks objects with dots; '[]' is for search criteria"))
            continue
        field, why = _resolve(fields, name)
        if field is None:
            problems.append((where, why))
            continue
        top = name.split(".")[0]
        if name in seen:
            problems.append((where, f"dataset field '{name}' is mapped twice"))
        seen.add(name)
        mapped.add(top)
        kind = field.type.value
        is_object_list = kind == "list" and field.fields is not None
        if isinstance(target, str):
            if is_object_list:
                problems.append((where, f"'{name}' is a list field; map it as {{field: {name}, fields: {{...}}}}"))
            elif kind == "object":
                problems.append((where, f"'{name}' is an object; map it as {{field: {name}, fields: {{...}}}}"))
            elif element.startswith("@") and kind == "list":
                problems.append((where, f"'{name}' is a list; an attribute carries one value"))
            continue
        if kind == "object" or is_object_list:
            if target.fields is None:
                problems.append((where, f"'{name}' holds fields; say which elements carry them (fields: {{...}})"))
            else:
                problems.extend(mapping_problems(target.fields, field.fields, where + ("fields",)))
            if kind == "object" and target.item:
                problems.append((where, f"'{name}' is an object, not a list: it has no repeated 'item'"))
        elif kind == "list":  # a list of values
            if target.fields is not None:
                problems.append((where, f"'{name}' is a list of values; map it as {{field: {name}, item: Element}}"))
        else:
            problems.append((where, f"'{name}' is a single value; map it by name ({element}: {name})"))
    return problems, mapped
