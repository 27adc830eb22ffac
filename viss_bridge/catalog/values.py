"""Conversions between manifest field types, Python values, JSON and text.

Records are stored as JSON, keys as canonical text; the facades need real
Python types back (dates, decimals) to produce typed XML. Keeping every
conversion here means a date looks the same in the store, in a key and on
the wire.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal, InvalidOperation
from typing import Any, Iterable

from viss_bridge.catalog.manifest import Field, FieldType

KEY_SEPARATOR = "\x1f"


class ValueProblem(ValueError):
    """A value that does not fit its field's type."""


def to_python(field: Field, value: Any, where: str | None = None) -> Any:
    """Coerce a JSON/text/native value to the Python type of ``field``, at any depth.

    Objects become dicts, lists of objects lists of dicts, lists of values lists of scalars.
    ``where`` names the value in messages (``owners[1].share``); it defaults to the field name.
    """
    where = where or field.name
    if value is None or value == "" and field.type is not FieldType.STRING:
        return None
    t = field.type
    if t is FieldType.OBJECT:
        assert field.fields is not None
        return record_to_python(field.fields, value, where)
    if t is FieldType.LIST:
        if not isinstance(value, (list, tuple)):
            raise ValueProblem(f"{where}: expected a list, got {type(value).__name__}")
        if field.fields is not None:
            return [record_to_python(field.fields, item, f"{where}[{i}]") for i, item in enumerate(value)]
        item_field = field.item_field
        result = []
        for i, item in enumerate(value):
            converted = to_python(item_field, item, f"{where}[{i}]")
            if converted is None:
                raise ValueProblem(f"{where}[{i}]: a list of values holds no empty values")
            result.append(converted)
        return result
    try:
        if t is FieldType.STRING:
            return str(value)
        if t is FieldType.INTEGER:
            if isinstance(value, bool):
                raise ValueProblem(f"{where}: expected an integer, got {value!r}")
            if isinstance(value, float) and not value.is_integer():
                raise ValueProblem(f"{where}: expected an integer, got {value!r}")
            return int(value)
        if t is FieldType.DECIMAL:
            return value if isinstance(value, Decimal) else Decimal(str(value))
        if t is FieldType.BOOLEAN:
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text in ("true", "1", "yes"):
                return True
            if text in ("false", "0", "no"):
                return False
            raise ValueProblem(f"{where}: expected true or false, got {value!r}")
        if t is FieldType.DATE:
            if isinstance(value, dt.datetime):
                return value.date()
            if isinstance(value, dt.date):
                return value
            return dt.date.fromisoformat(str(value))
        if t is FieldType.DATETIME:
            moment = value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(
                str(value).replace("Z", "+00:00"))
            return moment if moment.tzinfo else moment.replace(tzinfo=dt.timezone.utc)
    except (ValueError, InvalidOperation, TypeError) as exc:
        if isinstance(exc, ValueProblem):
            raise
        raise ValueProblem(f"{where}: {value!r} is not a valid {t.value}") from None
    raise ValueProblem(f"{where}: unknown type {t}")


def record_to_python(fields: Iterable[Field], data: dict[str, Any], where: str = "") -> dict[str, Any]:
    """A record (or an object, or one element of a list of objects) as Python values."""
    if not isinstance(data, dict):
        raise ValueProblem(f"{where + ': ' if where else ''}expected a record (mapping), got {type(data).__name__}")
    fields = tuple(fields)
    names = {f.name for f in fields}
    unknown = set(data) - names
    if unknown:
        raise ValueProblem(f"{where + ': ' if where else ''}unknown field(s): {', '.join(sorted(unknown))}")
    prefix = f"{where}." if where else ""
    return {f.name: to_python(f, data.get(f.name), prefix + f.name) for f in fields}


def constraint_problem(fields: Iterable[Field], record: dict[str, Any], where: str = "") -> str | None:
    """The first value breaking its field's ``enum`` or ``max_length``, at any depth, or None.

    Kept apart from :func:`to_python` so a record already stored stays readable after a
    manifest narrows an enum; loads (``catalog load``) refuse such values with this check.
    """
    for f in fields:
        value = record.get(f.name)
        if value is None:
            continue
        name = f"{where}{f.name}"
        if f.type is FieldType.OBJECT and isinstance(value, dict):
            problem = constraint_problem(f.fields or (), value, f"{name}.")
        elif f.is_object_list and isinstance(value, list):
            problem = next((p for i, item in enumerate(value) if isinstance(item, dict)
                            for p in [constraint_problem(f.fields or (), item, f"{name}[{i}].")] if p), None)
        elif f.is_value_list and isinstance(value, list):
            problem = next((p for i, item in enumerate(value) for p in [_scalar_problem(f, item, f"{name}[{i}]")]
                            if p), None)
        else:
            problem = _scalar_problem(f, value, name)
        if problem:
            return problem
    return None


def _scalar_problem(field: Field, value: Any, name: str) -> str | None:
    if field.max_length is not None and isinstance(value, str) and len(value) > field.max_length:
        return f"field '{name}' has {len(value)} characters, more than its max_length {field.max_length}"
    if field.enum is not None and value not in field.enum:
        allowed = ", ".join(str(v) for v in field.enum)
        return f"field '{name}' is {value!r}, not one of its enum values ({allowed})"
    return None


def to_json(value: Any) -> Any:
    """JSON-safe form: dates as ISO text, decimals as text (no float rounding)."""
    if isinstance(value, dict):
        return {k: to_json(v) for k, v in value.items() if v is not None}
    if isinstance(value, (list, tuple)):
        return [to_json(v) for v in value]
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return value


def key_text(field: Field, value: Any) -> str:
    """Canonical text of one key value, so '010190-12345' and a date key match however sent."""
    python = to_python(field, value)
    if python is None:
        raise ValueProblem(f"key field '{field.name}' is empty")
    return str(to_json(python)) if not isinstance(python, bool) else ("true" if python else "false")


def compose_key(key_fields: Iterable[Field], values: dict[str, Any]) -> str:
    parts = []
    for f in key_fields:
        if values.get(f.name) in (None, ""):
            raise ValueProblem(f"key field '{f.name}' is missing")
        parts.append(key_text(f, values[f.name]))
    return KEY_SEPARATOR.join(parts)
