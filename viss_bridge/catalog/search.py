"""Searches on non-key fields: the request and page every face uses, index paths and index values.

A manifest declares ``indexes:``, each a path to scalar values (``vin``, ``technical.fuel``,
``owners[].person_code``, ``previous_plates[]``). Every store write turns a record into index
entries ``(path, value)`` with :func:`index_entries`, so a search is a lookup in one SQL table,
never a scan of records (see :mod:`viss_bridge.catalog.search_index`).

Values are compared as normalised text: the same conversion for a record's value and for a
criterion, so ``2003-09-22`` matches a date however it was sent, ``1.50`` matches ``1.5``.

The data subject (the manifest's ``subject``) is always indexed under the internal path
:data:`SUBJECT_PATH`, normalised as the restriction register stores persons
(:func:`subject_key`), so that a search can leave out restricted persons' records in SQL and
its total does not count them.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import json
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Iterator

if TYPE_CHECKING:
    from viss_bridge.catalog.manifest import Dataset, Field

# The data subject's internal index path: '@' is no field-name character, so it never meets a manifest path.
SUBJECT_PATH = "@subject"
# Names the faces read as paging parameters (REST: docs/rest.md; X-Road: pageSize): no index may be called so.
PAGING_NAMES = frozenset({"page", "page_size", "cursor"})
PAGING_ELEMENTS = frozenset({"page", "pageSize", "cursor"})
# Bumped when index values are computed differently: every dataset's entries are rebuilt once.
INDEX_FORMAT = "1"


@dataclass(frozen=True)
class SearchRequest:
    """What a face asks: criteria (ALL must match) and one page, by number or after a cursor."""

    criteria: dict[str, Any]          # index path (or key field) -> value; ALL must match (AND)
    page_size: int                    # already capped by the face's maximum
    page: int | None = None           # 1-based page number paging, or
    cursor: str | None = None         # opaque cursor paging (the last record key of the previous page)


@dataclass(frozen=True)
class SearchPage:
    """One page of a search, as the caller may see it."""

    records: list[dict[str, Any]]     # in stable order: by record key
    total: int                        # every match the caller may see (restricted persons not counted)
    page: int | None                  # the page number answered (page paging)
    next_cursor: str | None           # None on the last page


class SearchProblem(ValueError):
    """A search the store cannot run as asked (unknown or unindexed criterion, bad cursor or value)."""


def subject_key(code: str) -> str:
    """A personal code as the restriction register and the data tracker key it (``LV010190-10009`` ->
    ``01019010009``); kept here so index entries and restrictions compare equal in SQL."""
    text = code.strip().upper()
    if text.startswith("LV") and text[2:3].isdigit():
        text = text[2:]
    return text.replace("-", "").replace(" ", "")


# -- paths ------------------------------------------------------------------------------------------

def path_steps(path: str) -> list[tuple[str, bool]]:
    """``owners[].person_code`` -> ``[("owners", True), ("person_code", False)]`` (name, is a list)."""
    steps = []
    for part in path.split("."):
        is_list = part.endswith("[]")
        steps.append((part[:-2] if is_list else part, is_list))
    return steps


def criterion_element(path: str) -> str:
    """The XML element name of a criterion on the X-Road face: ``owners[].person_code`` -> ``owners_person_code``."""
    return path.replace("[]", "").replace(".", "_")


def index_problem(dataset: "Dataset", path: str) -> str | None:
    """Why ``path`` cannot be an index of ``dataset`` (a message starting with a verb), or None."""
    from viss_bridge.catalog.manifest import FieldType

    if not isinstance(path, str) or not path:
        return "is not a field path"
    if path in PAGING_NAMES or criterion_element(path) in PAGING_ELEMENTS:
        return f"is a paging parameter name ({', '.join(sorted(PAGING_NAMES | PAGING_ELEMENTS))}); rename the field"
    fields: tuple["Field", ...] | None = dataset.fields
    steps = path_steps(path)
    walked: list[str] = []
    for position, (name, is_list) in enumerate(steps):
        last = position == len(steps) - 1
        field = next((f for f in fields or () if f.name == name), None)
        where = ".".join(walked + [name]) if walked else name
        if field is None:
            return f"names no field: '{name}' is not among the fields of {'.'.join(walked) or dataset.dataset}"
        if field.type is FieldType.LIST and not is_list:
            fixed = ".".join(walked + [name + "[]"] + [n + ("[]" if lst else "") for n, lst in steps[position + 1:]])
            return f"must mark the list '{where}' with []: write '{fixed}'"
        if is_list and field.type is not FieldType.LIST:
            return f"marks '{where}' with [] but it is {field.type.value}, not a list"
        if last:
            if field.value_type is None:
                return (f"ends at '{where}', {field.type.value if not is_list else 'a list of objects'}; an index "
                        "ends at a scalar field (or a list of values)")
            return None
        if field.fields is None:
            return f"goes on past '{where}', which is {field.value_type.value if field.value_type else field.type.value}"
        fields = field.fields
        walked.append(name + ("[]" if is_list else ""))
    return None


def end_field(dataset: "Dataset", path: str) -> "Field":
    """The scalar field (or list of values) an index path ends at; KeyError if there is none."""
    if index_problem(dataset, path) is not None:
        raise KeyError(path)
    fields: tuple["Field", ...] | None = dataset.fields
    field = None
    for name, _ in path_steps(path):
        field = next(f for f in fields or () if f.name == name)
        fields = field.fields
    assert field is not None
    return field


def search_paths(dataset: "Dataset") -> tuple[str, ...]:
    """Every path the store keeps entries for: the declared indexes, and the subject (internally)."""
    return tuple(dataset.indexes) + ((SUBJECT_PATH,) if dataset.subject else ())


def fingerprint(dataset: "Dataset") -> str:
    """What the dataset's index entries depend on: the paths and their value types. A manifest whose
    fingerprint differs from the stored one gets its entries rebuilt (``search_index.ensure``)."""
    described = [INDEX_FORMAT]
    for path in search_paths(dataset):
        if path == SUBJECT_PATH:
            described.append(f"{path}={dataset.subject}")
        else:
            value_type = end_field(dataset, path).value_type
            described.append(f"{path}:{value_type.value if value_type else '?'}")
    return hashlib.sha256(json.dumps(described).encode()).hexdigest()


# -- values -----------------------------------------------------------------------------------------

def value_text(value: Any) -> str:
    """One Python value as index text: dates ISO (datetimes in UTC), decimals without exponent or
    trailing zeros, booleans true/false, strings exactly."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)
        return moment.astimezone(dt.timezone.utc).isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, Decimal):
        text = format(value.normalize(), "f")
        return "0" if text in ("-0", "0") else text
    return str(value)


def _walk(value: Any, steps: list[tuple[str, bool]]) -> Iterator[Any]:
    if value is None:
        return
    if not steps:
        yield value
        return
    (name, is_list), rest = steps[0], steps[1:]
    inner = value.get(name) if isinstance(value, dict) else None
    if inner is None:
        return
    if is_list:
        for item in inner if isinstance(inner, list) else ():
            yield from _walk(item, rest)
    else:
        yield from _walk(inner, rest)


def index_values(dataset: "Dataset", path: str, record: dict[str, Any]) -> set[str]:
    """Every value ``record`` (Python values, as the store reads them) has at ``path``, as index text."""
    if path == SUBJECT_PATH:
        subject = record.get(dataset.subject) if dataset.subject else None
        return {subject_key(str(subject))} if subject not in (None, "") else set()
    return {value_text(v) for v in _walk(record, path_steps(path)) if v is not None and v != ""}


def index_entries(dataset: "Dataset", record: dict[str, Any]) -> list[tuple[str, str]]:
    """The (path, value) pairs one record is found by."""
    return [(path, value) for path in search_paths(dataset) for value in sorted(index_values(dataset, path, record))]


def criterion_text(dataset: "Dataset", path: str, value: Any) -> str:
    """A criterion's value as index text, converted by the path's field type (SearchProblem if it is no
    such value)."""
    from viss_bridge.catalog.values import ValueProblem, to_python

    field = end_field(dataset, path)
    scalar = field.item_field if field.is_value_list else field
    try:
        python = to_python(scalar, value, path)
    except ValueProblem as exc:
        raise SearchProblem(str(exc)) from None
    if python is None:
        raise SearchProblem(f"criterion '{path}' is empty")
    return value_text(python)


# -- cursors ----------------------------------------------------------------------------------------

def encode_cursor(record_key: str) -> str:
    """The opaque cursor after ``record_key`` (URL- and XML-safe: a composite key holds a control character)."""
    return base64.urlsafe_b64encode(record_key.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> str:
    try:
        return base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise SearchProblem(f"cursor {cursor[:40]!r} is not one this service gave out") from None
