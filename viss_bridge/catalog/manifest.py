"""Dataset manifests: one YAML file per dataset, validated into a :class:`Dataset`.

"Configured, not developed": a migration team publishes a dataset by writing a
manifest. Because nobody compiles a manifest, validation is the only safety
net, so it is strict (unknown keys are errors, a typo must not silently drop a
field) and every message names the file, the line and the field.
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated, Any, Literal, Union

from pydantic import (BaseModel, BeforeValidator, ConfigDict, Discriminator, Field as PydField, StrictInt, StrictStr, Tag,
                      ValidationError, field_validator, model_validator)

from viss_bridge.catalog.legacy_source import LegacySoapSource, mapping_problems
from viss_bridge.catalog.platform_source import PlatformSource
from viss_bridge.catalog.themes import THEME_LABELS, DataTheme

from viss_bridge.catalog.yaml_lines import YamlSyntaxError, line_for, load_with_lines, validation_problem

NAME_PATTERN = r"^[a-z][a-z0-9_]{0,62}$"
XROAD_MEMBER_PATTERN = r"^[A-Z0-9-]+/[A-Z0-9-]+/[A-Za-z0-9-]+(/[A-Za-z0-9._-]+)?$"
# A register (subject domain): "/"-separated parts of X-Road identifier characters (and "_", as in
# dataset names), e.g. LV/GOV/90000100015/FPR/persons; restrictions are keyed by it (64 characters).
REGISTER_PATTERN = r"^[A-Za-z0-9'()+,.=?_-]+(/[A-Za-z0-9'()+,.=?_-]+)*$"
RESERVED_FIELD_NAMES = {"record", "records"}


class ManifestError(ValueError):
    """A manifest that cannot be published; says where and what."""

    def __init__(self, file: str | Path, line: int | None, field: str | None, message: str) -> None:
        self.file = str(file)
        self.line = line
        self.field = field
        self.reason = message
        where = f"{self.file}:{line}" if line else self.file
        what = f"field '{field}': " if field else ""
        super().__init__(f"{where}: {what}{message}")


class FieldType(str, Enum):
    STRING = "string"
    INTEGER = "integer"
    DECIMAL = "decimal"
    BOOLEAN = "boolean"
    DATE = "date"
    DATETIME = "datetime"
    OBJECT = "object"
    LIST = "list"


SCALAR_TYPES = (FieldType.STRING, FieldType.INTEGER, FieldType.DECIMAL, FieldType.BOOLEAN, FieldType.DATE,
                FieldType.DATETIME)
# Types an ``enum`` may restrict: the values are compared as the manifest spells them.
ENUM_TYPES = (FieldType.STRING, FieldType.INTEGER)


class Access(str, Enum):
    OPEN = "open"
    PUBLIC = "public"
    RESTRICTED = "restricted"
    PRIVATE = "private"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, use_enum_values=False)


class ItemType(str, Enum):
    """What a list of values (``items:``) holds: one scalar type."""

    STRING = "string"
    INTEGER = "integer"
    DECIMAL = "decimal"
    BOOLEAN = "boolean"
    DATE = "date"
    DATETIME = "datetime"


class Field(_Strict):
    """One field of a record, an object or a list element; nests to any depth.

    ``type: object`` holds ``fields`` once; ``type: list`` holds either ``fields`` (a list of
    objects) or ``items`` (a list of values of one scalar type). ``enum``, ``max_length`` and
    ``nillable`` restrict a scalar (for a list of values: each value). ``xml`` says how a scalar
    inside an object or a list of objects is carried: as an element (the default), as an
    attribute of the structure's element, or as its text (``<mass unit="kg">1385</mass>``: an
    object whose fields are one ``text`` and any ``attribute``s), as generation-II contracts do.
    """

    name: Annotated[str, PydField(pattern=NAME_PATTERN)]
    type: FieldType
    description: str = ""
    required: bool = False
    nillable: bool = False
    max_length: Annotated[int, PydField(gt=0)] | None = None
    enum: Annotated[tuple[Union[StrictInt, StrictStr], ...], PydField(min_length=1)] | None = None
    items: ItemType | None = None
    xml: Literal["element", "attribute", "text"] = "element"
    fields: tuple["Field", ...] | None = None

    @field_validator("enum")
    @classmethod
    def _enum_values_distinct(cls, value: tuple[Any, ...] | None) -> tuple[Any, ...] | None:
        if value is not None and len(set(value)) != len(value):
            twice = sorted({str(v) for v in value if value.count(v) > 1})
            raise ValueError(f"enum lists {', '.join(twice)} more than once")
        return value

    @model_validator(mode="after")
    def _shape(self) -> "Field":
        if self.type is FieldType.OBJECT:
            if not self.fields:
                raise ValueError("an object field needs 'fields' (the fields it holds)")
            if self.items is not None:
                raise ValueError("an object has 'fields', not 'items'")
            _unique_names(self.fields)
        elif self.type is FieldType.LIST:
            if self.fields is not None and self.items is not None:
                raise ValueError("a list has either 'fields' (a list of objects) or 'items' (a list of values), "
                                 "not both")
            if not self.fields and self.items is None:
                raise ValueError("a list field needs 'fields' (the fields of each element) or 'items' "
                                 "(the type of each value)")
            if self.fields:
                _unique_names(self.fields)
            if self.nillable:
                raise ValueError("a list cannot be nillable: an empty list is sent as no element")
        else:
            if self.fields is not None:
                raise ValueError("only an object or a list field may have 'fields'")
            if self.items is not None:
                raise ValueError("only a list field may have 'items'")
        value_type = self.value_type
        if self.max_length is not None and value_type is not FieldType.STRING:
            raise ValueError("max_length applies to string fields (or lists of strings) only")
        if self.enum is not None:
            if value_type not in ENUM_TYPES:
                raise ValueError("enum applies to string and integer fields (or lists of them) only")
            for value in self.enum:
                expected = str if value_type is FieldType.STRING else int
                if not isinstance(value, expected):
                    raise ValueError(f"enum value {value!r} is not a {value_type.value}")
                if self.max_length is not None and len(str(value)) > self.max_length:
                    raise ValueError(f"enum value {value!r} is longer than max_length {self.max_length}")
        if self.xml != "element":
            if not self.is_scalar:
                raise ValueError(f"only a scalar field can be carried as xml: {self.xml}")
            if self.nillable:
                raise ValueError(f"an xml: {self.xml} value cannot be nillable (XML has no nil attribute or text)")
        if self.fields:
            _check_xml_layout(self.fields)
        return self

    @property
    def is_scalar(self) -> bool:
        return self.type in SCALAR_TYPES

    @property
    def value_type(self) -> FieldType | None:
        """The scalar type of the field's values: its own type, or a list's ``items``; None for structures."""
        if self.is_scalar:
            return self.type
        if self.type is FieldType.LIST and self.items is not None:
            return FieldType(self.items.value)
        return None

    @property
    def is_value_list(self) -> bool:
        return self.type is FieldType.LIST and self.items is not None

    @property
    def is_object_list(self) -> bool:
        return self.type is FieldType.LIST and self.fields is not None

    @property
    def item_field(self) -> "Field":
        """A list of values' element as a scalar field of its own (same name), for conversions and schemas."""
        assert self.is_value_list and self.items is not None
        return Field(name=self.name, type=FieldType(self.items.value), description=self.description,
                     max_length=self.max_length, enum=self.enum)


class Texts(_Strict):
    lv: str
    en: str


def _theme_code(value: Any) -> Any:
    if isinstance(value, str) and value not in THEME_LABELS:
        raise ValueError(f"{value!r} is not an EU data-theme code (one of {', '.join(THEME_LABELS)}; "
                         "http://publications.europa.eu/resource/authority/data-theme)")
    return value


Theme = Annotated[DataTheme, BeforeValidator(_theme_code)]
Keyword = Annotated[str, PydField(min_length=1, max_length=100)]


class Keywords(_Strict):
    """Search words for catalogues (DCAT-AP ``dcat:keyword``), per language."""

    lv: tuple[Keyword, ...] = ()
    en: tuple[Keyword, ...] = ()


class Source(_Strict):
    """Records kept in the bridge's own store (replicated, or loaded from files): no other keys.

    A CSV file is not a source of its own: its rows are loaded into the store with
    ``viss-bridge catalog load``, so ``kind: csv`` is refused with that advice instead of
    being accepted and doing nothing."""

    kind: Literal["store"] = "store"

    @field_validator("kind", mode="before")
    @classmethod
    def _no_csv_kind(cls, value: Any) -> Any:
        if value == "csv":
            raise ValueError("kind 'csv' is not a source: use kind: store and load the file with "
                             "`viss-bridge catalog load DATASET FILE.csv`")
        return value


def _source_tag(value: Any) -> str:
    kind = value.get("kind", "store") if isinstance(value, dict) else getattr(value, "kind", "store")
    if isinstance(kind, str) and kind not in ("store", "csv"):
        return kind  # legacy_soap, platform, or a misspelt kind that the union refuses naming every kind
    return "store"


AnySource = Annotated[Union[Annotated[Source, Tag("store")], Annotated[LegacySoapSource, Tag("legacy_soap")],
                            Annotated[PlatformSource, Tag("platform")]],
                      Discriminator(_source_tag, custom_error_type="source_kind",
                                    custom_error_message="'kind' must be store, legacy_soap or platform")]


class LegacyContract(_Strict):
    dialect: Literal["xroad", "viss", "legacy"]
    service: Annotated[str, PydField(min_length=1)]


class Dataset(_Strict):
    dataset: Annotated[str, PydField(pattern=NAME_PATTERN)]
    version: Annotated[str, PydField(pattern=r"^v[0-9]+(\.[0-9]+)*$")] = "v1"
    title: Texts
    description: Texts | None = None
    owner: Annotated[str, PydField(pattern=XROAD_MEMBER_PATTERN)]
    owner_name: str | None = None
    key: Annotated[tuple[str, ...], PydField(min_length=1)]
    subject: str | None = None
    # The register (subject domain) this dataset publishes; copies, replicas and live views of one
    # register declare the same one, so a person's restriction covers them all. Default: the dataset name.
    # (``register`` in YAML; the attribute has another name because pydantic models already have ``register``)
    subject_register: Annotated[str | None, PydField(alias="register", pattern=REGISTER_PATTERN, max_length=64)] = None
    access: Access = Access.RESTRICTED
    fields: Annotated[tuple[Field, ...], PydField(min_length=1)]
    source: AnySource = Source()
    legacy: tuple[LegacyContract, ...] = ()
    # For the DCAT-AP catalogue (GET /dcat): EU data-theme codes and keywords in Latvian and English.
    themes: tuple[Theme, ...] = ()
    keywords: Keywords | None = None
    # Searches on non-key fields: each entry one scalar field path (``vin``, ``technical.fuel``,
    # ``owners[].person_code``, ``previous_plates[]``); checked by :func:`catalog.search.index_problem`.
    indexes: tuple[str, ...] = ()

    # Not part of the YAML: where it was read from, for messages and reloads.
    origin: str | None = PydField(default=None, exclude=True)

    @field_validator("fields")
    @classmethod
    def _names_unique(cls, value: tuple[Field, ...]) -> tuple[Field, ...]:
        _unique_names(value)
        for f in value:
            if f.name in RESERVED_FIELD_NAMES:
                raise ValueError(f"'{f.name}' is reserved; choose another field name")
        return value

    @model_validator(mode="after")
    def _key_and_subject_exist(self) -> "Dataset":
        by_name = {f.name: f for f in self.fields}
        for name in self.key:
            if name not in by_name:
                raise ValueError(f"key field '{name}' is not among the fields")
            if not by_name[name].is_scalar:
                raise ValueError(f"key field '{name}' must be a scalar, not {by_name[name].type.value}")
            if by_name[name].nillable:
                raise ValueError(f"key field '{name}' cannot be nillable")
        if len(set(self.key)) != len(self.key):
            raise ValueError("key names a field twice")
        if self.subject is not None:
            if self.subject not in by_name:
                raise ValueError(f"subject field '{self.subject}' is not among the fields")
            if by_name[self.subject].type is not FieldType.STRING:
                raise ValueError(f"subject field '{self.subject}' must be a string")
        from viss_bridge.catalog.search import criterion_element, index_problem  # search reads this module's types

        elements: dict[str, str] = {}
        for position, path in enumerate(self.indexes):
            problem = index_problem(self, path)
            if problem is None and path in self.indexes[:position]:
                problem = "is listed twice"
            if problem is None and criterion_element(path) in elements:
                problem = (f"has the same X-Road criterion element '{criterion_element(path)}' as "
                           f"'{elements[criterion_element(path)]}'")
            elements.setdefault(criterion_element(path), path)
            if problem is None and getattr(self.source, "mode", None) == "live":
                problem = (f"cannot be searched: a live {self.source.kind} dataset has no records here "
                           "(use mode: replicated)")
            if problem is not None:
                raise ValueError(f"indexes[{position}] '{path}' {problem}")
        return self

    # -- conveniences used by the store and the facades -------------------

    def field(self, name: str) -> Field:
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(name)

    @property
    def key_fields(self) -> tuple[Field, ...]:
        return tuple(self.field(name) for name in self.key)

    @property
    def register_key(self) -> str:
        """The register restrictions and their checks are keyed by: ``register``, else the dataset name."""
        return self.subject_register or self.dataset

    @property
    def owner_parts(self) -> list[str]:
        return self.owner.split("/")


def _check_xml_layout(fields: tuple[Field, ...]) -> None:
    """Text content excludes child elements: a structure with an ``xml: text`` field has only attributes besides."""
    texts = [f.name for f in fields if f.xml == "text"]
    if len(texts) > 1:
        raise ValueError(f"only one field may be xml: text ({', '.join(texts)} are)")
    if texts:
        elements = [f.name for f in fields if f.xml == "element"]
        if elements:
            raise ValueError(f"'{texts[0]}' is xml: text, so the other fields must be xml: attribute "
                             f"({', '.join(elements)} are elements)")


def _unique_names(fields: tuple[Field, ...]) -> None:
    seen: set[str] = set()
    for f in fields:
        if f.name in seen:
            raise ValueError(f"field name '{f.name}' appears twice")
        seen.add(f.name)


def parse_manifest(text: str, file: str | Path) -> Dataset:
    """Validate one manifest's text; raise :class:`ManifestError` with file and line."""
    try:
        data, lines = load_with_lines(text)
    except YamlSyntaxError as exc:
        raise ManifestError(file, exc.line, None, f"not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ManifestError(file, 1, None, "a manifest must be a YAML mapping (dataset: ..., fields: ...)")
    try:
        dataset = Dataset.model_validate(data)
    except ValidationError as exc:
        line, label, message = validation_problem(
            [dict(e) for e in exc.errors()], lines, data, "unknown key (check the spelling; allowed keys are in docs/manifests.md)")
        if label is None:  # a check across keys: name the key its message is about (key, subject)
            about = message.split(" ", 1)[0]
            if about in ("key", "subject") and about in data:
                line, label = line_for(lines, (about,)), about
            elif about.startswith("indexes[") and "indexes" in data:  # the entry's own line
                position = int(about[len("indexes["):-1])
                line, label = line_for(lines, ("indexes", position)), f"indexes[{position}]"
                message = message.split(" ", 1)[1]
        raise ManifestError(file, line, label, message) from None
    for index, f in enumerate(dataset.fields):
        if f.xml != "element":  # checked here, where the field's own line is known
            raise ManifestError(file, line_for(lines, ("fields", index, "xml")), f"fields.{f.name}.xml",
                                f"xml: {f.xml} applies to fields inside an object or a list of objects; "
                                "a record's own fields are elements")
    stem = Path(str(file)).stem
    if stem != dataset.dataset:
        raise ManifestError(file, line_for(lines, ("dataset",)), "dataset",
                            f"the file name '{stem}' must equal the dataset name '{dataset.dataset}'")
    if isinstance(dataset.source, LegacySoapSource):
        _check_legacy_source(dataset, lines, file)
    return dataset.model_copy(update={"origin": str(file)})


def _check_legacy_source(dataset: Dataset, lines: dict[Any, int], file: str | Path) -> None:
    """Cross-checks of a legacy_soap source against the dataset's fields and key."""
    source = dataset.source
    assert isinstance(source, LegacySoapSource)
    problems: list[tuple[tuple[str, ...], str]] = []
    keys = set(dataset.key)
    requested = set(source.lookup.request.values())
    for element, name in source.lookup.request.items():
        if name not in keys:
            problems.append((("lookup", "request", element), f"'{name}' is not a key field (key: {', '.join(dataset.key)})"))
    if not problems and requested != keys:
        problems.append((("lookup", "request"), f"the request must carry every key field: {', '.join(sorted(keys - requested))} missing"))
    problems.extend(mapping_problems(source.fields, dataset.fields))
    if source.mode == "replicated" and source.changes is None:
        problems.append((("mode",), "mode replicated needs a 'changes' operation to pull records from"))
    if problems:
        path, message = problems[0]
        more = len(problems) - 1
        if more:
            message += f" (and {more} more problem{'s' if more > 1 else ''})"
        full = ("source",) + path
        raise ManifestError(file, line_for(lines, full), ".".join(full), message)


def load_manifest(path: str | Path) -> Dataset:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ManifestError(path, None, None, f"not UTF-8 text: {exc}") from None
    except OSError as exc:
        raise ManifestError(path, None, None, f"cannot read: {exc.strerror}") from None
    return parse_manifest(text, path)


def manifest_to_yaml_dict(dataset: Dataset) -> dict[str, Any]:
    """The manifest as plain data (for ``catalog show`` and scaffolding)."""
    data = dataset.model_dump(mode="json", exclude_none=True, exclude={"origin"}, by_alias=True)
    _drop_new_defaults(data.get("fields", []))
    return data


def _drop_new_defaults(fields: list[dict[str, Any]]) -> None:
    """Leave ``nillable: false`` and ``xml: element`` out: every field has them, they say nothing."""
    for f in fields:
        if f.get("nillable") is False:
            del f["nillable"]
        if f.get("xml") == "element":
            del f["xml"]
        _drop_new_defaults(f.get("fields") or [])
