"""From a WSDL operation's type tree to a draft: dataset fields, the v2 element mapping, element roles.

``migrate scaffold`` writes what this module decides, and ``migrate inventory`` reports it as
constructs. The aim is that nothing of a response is dropped: every element and attribute of the
record becomes a dataset field (objects for nested structures, lists for repeated ones or for a
wrapper holding one repeated child, ``#text``/``@attr`` for simple content and attributes) or a
constant (fixed values), and the elements beside the record become ``constants`` (result codes),
``computed`` values (totals, page numbers, "more" flags) or paging. A request element that names
a field, also one inside a nested object or list (``OwnerPersonCode`` -> ``owners[].person_code``),
is a search criterion on that field. What only a person can decide is listed as ``todos`` with a
category (name, owner, access, subject, key, not_found, value); what the scaffold inferred and a
person may want to check is listed as ``notes``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Iterator

from viss_bridge.migration.wsdl import FieldRow, MessageInfo, OperationInfo

TYPE_MAP = {
    "string": "string", "normalizedString": "string", "token": "string", "anyURI": "string", "language": "string",
    "Name": "string", "NCName": "string", "ID": "string", "NMTOKEN": "string",
    "int": "integer", "integer": "integer", "long": "integer", "short": "integer", "byte": "integer",
    "nonNegativeInteger": "integer", "positiveInteger": "integer", "nonPositiveInteger": "integer",
    "negativeInteger": "integer", "unsignedLong": "integer", "unsignedInt": "integer", "unsignedShort": "integer",
    "unsignedByte": "integer",
    "decimal": "decimal", "float": "decimal", "double": "decimal",
    "boolean": "boolean", "date": "date", "dateTime": "datetime",
}
PERSON_CODE_NAMES = {"person_code", "personal_code", "personas_kods", "pk", "person_id_code"}
RESERVED = {"record", "records"}
TIME_TYPES = {"xs:dateTime", "xs:date"}
RESULT = re.compile(r"^(result|status|return|error|response|answer|rezultats|statuss)(_?(code|text|message|description|"
                    r"desc|msg|kods|teksts))?$")
RESULT_PARTS = re.compile(r"^(code|text|message|description|kods|teksts)$")
COMPUTED_NAMES = {
    "total": "total", "total_count": "total", "total_records": "total", "total_found": "total",
    "total_results": "total", "count": "count", "record_count": "count", "returned": "count",
    "returned_count": "count", "more": "more", "has_more": "more", "more_available": "more",
    "more_records": "more", "more_data": "more", "page": "page", "page_number": "page", "page_no": "page",
    "current_page": "page", "page_size": "page_size", "found": "found",
}
CURSOR_OUT = {"next_cursor", "cursor", "continuation_token", "next_page_token"}
PAGE_IN = {"page", "page_number", "page_no", "page_index"}
PAGE_SIZE_IN = {"page_size", "limit", "max_results", "max_records"}
CURSOR_IN = {"cursor", "next_cursor", "continuation_token", "page_token"}
DEFAULT_PAGE_SIZE = 20
DEFAULT_MAX_PAGE_SIZE = 100


def snake(name: str) -> str:
    """``GivenName`` -> ``given_name``; ``AtvkCode`` -> ``atvk_code``; ``personCode`` -> ``person_code``."""
    text = re.sub(r"[^A-Za-z0-9]+", "_", name)
    text = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", text)
    text = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", text)
    text = re.sub(r"_+", "_", text).strip("_").lower()
    if not text or not text[0].isalpha():
        text = f"f_{text}"
    return text[:63]


# -- the type tree --------------------------------------------------------------------------------

@dataclass
class Node:
    """One element or attribute of a message with what is inside it."""

    row: FieldRow
    children: list["Node"] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.row.name

    @property
    def elements(self) -> list["Node"]:
        return [c for c in self.children if not c.row.attribute and c.row.name != "*"]

    @property
    def attributes(self) -> list["Node"]:
        return [c for c in self.children if c.row.attribute and c.row.name != "*"]

    @property
    def simple(self) -> bool:
        """A value without structure: no children, no attributes."""
        return not self.row.complex and not self.row.simple_content


def tree(message: MessageInfo | None) -> list[Node]:
    """The top-level nodes of a message (children of the SOAP Body's element)."""
    top: list[Node] = []
    by_path: dict[str, Node] = {}
    for row in (message.fields if message else []):
        node = Node(row)
        by_path[row.path] = node
        parent = by_path.get(row.path.rsplit("/", 1)[0]) if "/" in row.path else None
        (parent.children if parent is not None else top).append(node)
    return top


# -- the draft ---------------------------------------------------------------------------------------

@dataclass
class DraftField:
    """One dataset field as the manifest will declare it."""

    name: str
    type: str  # a manifest type: string ... datetime, object, list
    required: bool = False
    description: str = ""
    items: str | None = None  # a list of values: their type
    enum: tuple[Any, ...] | None = None
    nillable: bool = False
    max_length: int | None = None
    xml: str | None = None  # attribute | text (inside objects and lists only)
    fields: list["DraftField"] | None = None
    notes: list[str] = field(default_factory=list)
    todos: list[tuple[str, str]] = field(default_factory=list)
    legacy_type: str = ""  # the named XSD type of the element (PersonCodeType), a hint for the subject


@dataclass
class Content:
    """The fields of one level (record, object or list entry) and the element mapping that fills them."""

    fields: list[DraftField] = field(default_factory=list)
    mapping: dict[str, Any] = field(default_factory=dict)  # v2 ``fields:``: key -> path | {constant} | {...}
    notes: list[str] = field(default_factory=list)


def typed_constant(value: str, xsd_type: str) -> Any:
    """A fixed value of the schema as the mapping's YAML carries it (numbers and booleans typed)."""
    kind = TYPE_MAP.get(xsd_type.removeprefix("xs:"), "string")
    if kind == "integer":
        try:
            return int(value)
        except ValueError:
            return value
    if kind == "boolean":
        return value.strip() in ("true", "1")
    return value


def _constant_of(node: Node) -> Any | None:
    """A value the schema fixes: ``fixed=""`` or an enumeration of exactly one value."""
    if node.row.fixed is not None:
        return typed_constant(node.row.fixed, node.row.xsd_type)
    if len(node.row.enum) == 1:
        return typed_constant(node.row.enum[0], node.row.xsd_type)
    return None


def _scalar_type(row: FieldRow, notes: list[str]) -> str:
    kind = TYPE_MAP.get(row.xsd_type.removeprefix("xs:"))
    if kind is None:
        notes.append(f"{row.path}: XSD type {row.xsd_type} has no manifest type; carried as a string")
        return "string"
    return kind


def _restrictions(row: FieldRow, kind: str, notes: list[str]) -> dict[str, Any]:
    facts: dict[str, Any] = {}
    if row.enum:
        if kind == "string":
            facts["enum"] = tuple(row.enum)
        elif kind == "integer" and all(re.fullmatch(r"[+-]?\d+", v) for v in row.enum):
            facts["enum"] = tuple(int(v) for v in row.enum)
        else:
            notes.append(f"{row.path}: xs:enumeration of a {kind} ({', '.join(row.enum)}) cannot be a manifest enum; "
                         "not restricted")
    if row.max_length is not None and kind == "string":
        facts["max_length"] = row.max_length
    return facts


class _Names:
    """Field names of one level: snake case, unique, not reserved (each rename is a name to decide)."""

    def __init__(self) -> None:
        self.used: set[str] = set()

    def take(self, legacy: str, todos: list[tuple[str, str]], wanted: str | None = None) -> str:
        name = wanted or snake(legacy)
        if name in RESERVED:
            todos.append(("name", f"'{name}' is reserved in manifests; renamed to '{name}_value'"))
            name = f"{name}_value"
        base, counter = name, 2
        while name in self.used:
            name = f"{base}_{counter}"
            counter += 1
        if name != base:
            todos.append(("name", f"two legacy elements give the name '{base}'; this one ({legacy}) is '{name}'"))
        self.used.add(name)
        return name


def content(children: list[Node], in_structure: bool) -> Content:
    """Draft one level: every element and attribute becomes a field or a constant; nothing is left out
    silently (what cannot be carried is a note naming it)."""
    result = Content()
    names = _Names()
    for node in children:
        row = node.row
        if row.name == "*":
            result.notes.append(f"{row.path}: a wildcard ({row.xsd_type}); its content is not described by the schema, "
                                "so it cannot be mapped")
            continue
        if row.attribute:
            _attribute(node, result, names, in_structure)
            continue
        if "recursive" in row.note:
            result.notes.append(f"{row.path}: {row.note}")
            continue
        if row.choice:
            result.notes.append(f"{row.path}: one branch of an xs:choice; made optional (an answer carries one branch)")
        constant = _constant_of(node) if node.simple else None
        if constant is not None and not row.repeated:
            result.mapping[row.name] = {"constant": constant}
            continue
        if node.simple:
            _simple(node, result, names)
        elif row.simple_content:
            _simple_content(node, result, names)
        else:
            _structure(node, result, names)
    return result


def _description(row: FieldRow, what: str = "") -> str:
    return f"Legacy element {row.path} ({what or row.xsd_type})"


def _optional(row: FieldRow) -> bool:
    return row.optional or row.choice


def _simple(node: Node, result: Content, names: _Names) -> None:
    row = node.row
    todos: list[tuple[str, str]] = []
    name = names.take(row.name, todos)
    kind = _scalar_type(row, result.notes)
    facts = _restrictions(row, kind, result.notes)
    if row.repeated:
        result.fields.append(DraftField(name, "list", not row.optional, _description(row, f"repeated {row.xsd_type}"),
                                        items=kind, todos=todos, **facts))
    else:
        nillable = row.nillable
        result.fields.append(DraftField(name, kind, not _optional(row) and not nillable, _description(row),
                                        nillable=nillable, todos=todos, legacy_type=row.type_name, **facts))
    result.mapping[row.name] = name


def _attribute(node: Node, result: Content, names: _Names, in_structure: bool) -> None:
    row = node.row
    constant = _constant_of(node)
    if constant is not None:
        result.mapping[row.name] = {"constant": constant}
        return
    todos: list[tuple[str, str]] = []
    name = names.take(row.name[1:], todos)
    kind = _scalar_type(row, result.notes)
    result.fields.append(DraftField(name, kind, not row.optional, f"Legacy attribute {row.path} ({row.xsd_type})",
                                    xml="attribute" if in_structure else None, todos=todos,
                                    **_restrictions(row, kind, result.notes)))
    result.mapping[row.name] = name


def _text_content(node: Node, value_name: str) -> Content:
    """Simple content with attributes: the text and each attribute (fixed ones as constants)."""
    row = node.row
    inner = Content()
    kind = _scalar_type(row, inner.notes)
    inner.fields.append(DraftField(value_name, kind, True, f"Text of the legacy element {row.path} ({row.xsd_type})",
                                   xml="text", **_restrictions(row, kind, inner.notes)))
    inner.mapping["#text"] = value_name
    names = _Names()
    names.used.add(value_name)
    for attribute in node.attributes:
        _attribute(attribute, inner, names, in_structure=True)
    return inner


def _simple_content(node: Node, result: Content, names: _Names) -> None:
    row = node.row
    variable = [a for a in node.attributes if _constant_of(a) is None]
    todos: list[tuple[str, str]] = []
    name = names.take(row.name, todos)
    if not variable and not row.repeated and not _optional(row):
        # <Mass unit="kg">1385</Mass>: one value; the fixed attributes are constants of the element
        kind = _scalar_type(row, result.notes)
        result.fields.append(DraftField(name, kind, True, _description(row), todos=todos,
                                        **_restrictions(row, kind, result.notes)))
        group: dict[str, Any] = {"#text": name}
        for attribute in node.attributes:
            group[attribute.name] = {"constant": _constant_of(attribute)}
        result.mapping[row.name] = {"fields": group}
        return
    inner = _text_content(node, "value")
    result.notes.extend(inner.notes)
    result.fields.append(DraftField(name, "list" if row.repeated else "object", not _optional(row),
                                    _description(row, f"text with attributes, {row.xsd_type}"), fields=inner.fields,
                                    todos=todos))
    result.mapping[row.name] = {"field": name, "fields": inner.mapping}


def wrapped_item(node: Node) -> Node | None:
    """The repeated child of a wrapper element (``Owners`` holding ``Owner``s), or None."""
    elements = node.elements
    if (node.row.complex and not node.row.repeated and len(elements) == 1 and elements[0].row.repeated
            and not node.attributes and len(node.children) == 1):
        return elements[0]
    return None


def _structure(node: Node, result: Content, names: _Names) -> None:
    row = node.row
    todos: list[tuple[str, str]] = []
    name = names.take(row.name, todos)
    item = wrapped_item(node)
    if item is not None:
        if item.simple:
            kind = _scalar_type(item.row, result.notes)
            result.fields.append(DraftField(name, "list", not _optional(row),
                                            _description(row, f"wrapper of repeated {item.name}, {item.row.xsd_type}"),
                                            items=kind, todos=todos, **_restrictions(item.row, kind, result.notes)))
            result.mapping[row.name] = {"field": name, "item": item.name}
            return
        inner = _text_content(item, "value") if item.row.simple_content else content(item.children, True)
        result.notes.extend(inner.notes)
        result.fields.append(DraftField(name, "list", not _optional(row),
                                        _description(row, f"wrapper of repeated {item.name}, {item.row.xsd_type}"),
                                        fields=inner.fields, todos=todos))
        result.mapping[row.name] = {"field": name, "item": item.name, "fields": inner.mapping}
        return
    inner = content(node.children, True)
    result.notes.extend(inner.notes)
    if not inner.fields:
        if inner.mapping:  # only fixed values inside: the element is a constant structure
            result.mapping[row.name] = {"fields": inner.mapping}
        else:
            result.notes.append(f"{row.path}: a structure without content; it cannot carry a value")
        return
    kind = "list" if row.repeated else "object"
    result.fields.append(DraftField(name, kind, not _optional(row), _description(row), fields=inner.fields,
                                    todos=todos))
    result.mapping[row.name] = {"field": name, "fields": inner.mapping}


# -- field paths (search criteria) ----------------------------------------------------------------

def leaf_paths(fields: list[DraftField], prefix: str = "", joined: tuple[tuple[str, ...], ...] = ()
               ) -> Iterator[tuple[str, DraftField, tuple[str, ...]]]:
    """Every scalar (or list of values) with its path (``owners[].person_code``) and the names it is
    known by in a request (``owner_person_code``, ``owners_person_code``, ``person_code``)."""
    for f in fields:
        if f.fields is not None:
            step = f"{prefix}{f.name}{'[]' if f.type == 'list' else ''}."
            forms: tuple[str, ...] = (f.name, _singular(f.name)) if f.type == "list" else (f.name,)
            yield from leaf_paths(f.fields, step, joined + (forms,))
        else:
            path = f"{prefix}{f.name}"
            aliases = [f.name]
            if joined:
                for forms in _combinations(joined):
                    aliases.append("_".join((*forms, f.name)))
                    aliases.append("_".join((forms[-1], f.name)))
            yield path, f, tuple(dict.fromkeys(aliases))


def _combinations(joined: tuple[tuple[str, ...], ...]) -> Iterator[tuple[str, ...]]:
    if not joined:
        yield ()
        return
    for rest in _combinations(joined[1:]):
        for form in joined[0]:
            yield (form, *rest)


def _singular(name: str) -> str:
    for suffix, replacement in (("ies", "y"), ("sses", "ss"), ("ses", "s"), ("s", "")):
        if name.endswith(suffix) and len(name) > len(suffix) + 1:
            return name[: -len(suffix)] + replacement
    return name


def match_criterion(element: str, fields: list[DraftField]) -> str | None:
    """The field a request element names: a top-level field by name, else a nested one by its joined
    name (``OwnerPersonCode`` -> ``owners[].person_code``), else a unique nested leaf of that name."""
    wanted = snake(element)
    top = {f.name: f for f in fields if f.fields is None}
    if wanted in top:
        return wanted
    paths = list(leaf_paths(fields))
    joined = [p for p, _f, aliases in paths if "." in p and wanted in aliases[1:]]
    if len(set(joined)) == 1:
        return joined[0]
    leaves = [p for p, f, _aliases in paths if "." in p and f.name == wanted]
    if len(leaves) == 1:
        return leaves[0]
    return None


def field_at(fields: list[DraftField], path: str) -> DraftField | None:
    current: list[DraftField] | None = fields
    found = None
    for part in path.replace("[]", "").split("."):
        found = next((f for f in current or [] if f.name == part), None)
        if found is None:
            return None
        current = found.fields
    return found


# -- roles of the elements beside the record -----------------------------------------------------

@dataclass
class Roles:
    """What the response's top-level elements and the request's elements are for."""

    record: Node | None = None  # the element carrying the record(s), or the wrapper holding them
    item: Node | None = None  # the repeated record inside a wrapper (or the record itself when it repeats)
    result_codes: list[Node] = field(default_factory=list)  # ResultCode, Status/Code...
    result_texts: list[Node] = field(default_factory=list)
    computed: dict[str, str] = field(default_factory=dict)  # response element -> total|page|...
    cursor_out: str | None = None
    constants: dict[str, Any] = field(default_factory=dict)  # fixed values beside the record
    others: list[Node] = field(default_factory=list)  # top-level elements with no role
    uncarried: list[Node] = field(default_factory=list)  # attributes and wildcards of the response element
    structures: list[Node] = field(default_factory=list)  # complex top-level elements (candidates)
    page: Node | None = None
    page_size: Node | None = None
    cursor: Node | None = None
    criteria: list[Node] = field(default_factory=list)


def _result_role(node: Node, roles: Roles, prefix: str = "") -> bool:
    name = snake(node.name)
    if node.simple and RESULT.match(name):
        (roles.result_texts if re.search(r"(text|message|description|desc|msg|teksts)$", name)
         else roles.result_codes).append(node)
        return True
    if node.row.complex and not node.row.repeated and RESULT.match(name) and node.elements and \
            all(c.simple and RESULT_PARTS.match(snake(c.name)) for c in node.elements):
        for child in node.elements:  # Status/Code, Status/Text
            _result_role(Node(_renamed(child.row, f"{node.name}.{child.name}")), roles)
        return True
    return False


def _renamed(row: FieldRow, name: str) -> FieldRow:
    copy = FieldRow(**{**row.__dict__})
    copy.name = name
    return copy


def roles(op: OperationInfo) -> Roles:
    result = Roles()
    for node in tree(op.output):
        name = snake(node.name)
        if node.row.attribute or node.name == "*":
            result.uncarried.append(node)
        elif _result_role(node, result):
            continue
        elif node.simple and name in COMPUTED_NAMES:
            result.computed[node.name] = COMPUTED_NAMES[name]
        elif node.simple and name in CURSOR_OUT:
            result.cursor_out = node.name
        elif node.simple and _constant_of(node) is not None:
            result.constants[node.name] = _constant_of(node)
        elif node.row.complex or node.row.simple_content:
            result.structures.append(node)
        else:
            result.others.append(node)
    if len(result.structures) == 1:
        record = result.structures[0]
        result.record = record
        inner = wrapped_item(record)
        result.item = inner if inner is not None and inner.row.complex else (record if record.row.repeated else None)
    for node in tree(op.input):
        name = snake(node.name)
        if node.simple and name in PAGE_IN and result.page is None:
            result.page = node
        elif node.simple and name in PAGE_SIZE_IN and result.page_size is None:
            result.page_size = node
        elif node.simple and name in CURSOR_IN and result.cursor is None:
            result.cursor = node
        else:
            result.criteria.append(node)
    return result


def result_values(code: Node) -> tuple[Any, Any]:
    """The result code of a found answer and of a not-found one: from the enumeration (first, second), else
    the convention 0/1 (numbers) or OK/NOT_FOUND (text); a guess a person confirms."""
    row = code.row
    if len(row.enum) >= 2:
        return typed_constant(row.enum[0], row.xsd_type), typed_constant(row.enum[1], row.xsd_type)
    numeric = TYPE_MAP.get(row.xsd_type.removeprefix("xs:")) in ("integer", "decimal")
    found = typed_constant(row.default, row.xsd_type) if row.default is not None else (0 if numeric else "OK")
    return found, (1 if numeric else "NOT_FOUND")


def page_sizes(node: Node | None) -> tuple[int, int, list[str]]:
    """default and maximum page size from the schema (default=, maxInclusive), else 20 and 100."""
    notes: list[str] = []
    if node is None:
        return DEFAULT_PAGE_SIZE, DEFAULT_MAX_PAGE_SIZE, notes
    maximum = DEFAULT_MAX_PAGE_SIZE
    if node.row.max_inclusive and node.row.max_inclusive.isdigit():
        maximum = int(node.row.max_inclusive)
    else:
        notes.append(f"{node.name}: the schema sets no maximum; max_page_size {maximum} is the bridge's default")
    if node.row.default and node.row.default.isdigit():
        default = int(node.row.default)
    else:
        default = min(DEFAULT_PAGE_SIZE, maximum)
        notes.append(f"{node.name}: the schema gives no default; default_page_size {default} is a guess: set the "
                     "old service's (shadowing shows it)")
    return min(default, maximum), maximum, notes
