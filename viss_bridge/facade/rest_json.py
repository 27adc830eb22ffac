"""Records as typed JSON for the REST face, and the JSON Schema of each dataset's record.

The manifest types map to JSON as follows (docs/rest.md), the same in answers and in the
OpenAPI document, so a schema-generated client reads what the face sends:

- ``string`` -> string (``maxLength`` from ``max_length``); ``integer`` -> integer;
  ``boolean`` -> boolean;
- ``decimal`` -> **string** of the exact decimal (``"1250.50"``, never an exponent): JSON numbers
  become binary floats in most consumers (JavaScript, many Java mappers), which would change
  amounts; the text keeps every digit;
- ``date`` -> ISO 8601 string (``format: date``); ``datetime`` -> RFC 3339 string with offset
  (``format: date-time``);
- ``object`` -> object with its own fields; ``list`` -> array of objects with the list's own
  fields, or (``items:``) array of scalar values, nested at any depth;
- ``enum`` -> the schema's ``enum``; ``nillable`` -> the value may be ``null`` (it is sent as
  ``null`` when the record holds no value, as SOAP sends ``xsi:nil``).

A field without a value is left out, as the SOAP faces leave its element out; key fields are
always present.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any, Iterable, Sequence

from viss_bridge.catalog.manifest import Dataset, Field, FieldType
from viss_bridge.catalog.values import KEY_SEPARATOR, to_python

DECIMAL_PATTERN = r"^-?[0-9]+(\.[0-9]+)?$"


def json_value(field: Field, value: Any) -> Any:
    """One field's Python value (as the store or a provider gives it) as JSON."""
    if value is None:
        return None
    if field.type is FieldType.OBJECT:
        assert field.fields is not None
        return json_object(field.fields, value)
    if field.type is FieldType.LIST:
        if field.fields is None:  # a list of values
            return [_scalar(item) for item in value]
        return [json_object(field.fields, item) for item in value]
    return _scalar(value)


def _scalar(value: Any) -> Any:
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    return value


def json_object(fields: Iterable[Field], record: dict[str, Any]) -> dict[str, Any]:
    """A record (or a list element) as a JSON object in manifest field order, without empty fields."""
    result: dict[str, Any] = {}
    for field in fields:
        value = json_value(field, record.get(field.name))
        if value is not None:
            result[field.name] = value
        elif field.nillable:
            result[field.name] = None
    return result


def json_record(dataset: Dataset, record: dict[str, Any]) -> dict[str, Any]:
    """A (narrowed) record as the REST face answers it: only the fields it holds, typed."""
    return json_object((f for f in dataset.fields if f.name in record), record)


def key_object(dataset: Dataset, key_text: str) -> dict[str, Any]:
    """The store's canonical key text (parts joined by the key separator) as a typed JSON object."""
    parts = key_text.split(KEY_SEPARATOR)
    return {f.name: json_value(f, to_python(f, part)) for f, part in zip(dataset.key_fields, parts)}


# -- JSON Schema ----------------------------------------------------------------------------------

def field_schema(field: Field) -> dict[str, Any]:
    """The JSON Schema of one field's JSON value (see the module docstring for the mapping)."""
    description = {"description": field.description} if field.description else {}
    if field.type is FieldType.OBJECT:
        assert field.fields is not None
        return {**object_schema(field.fields, ()), **description}
    if field.type is FieldType.LIST:
        if field.fields is not None:
            items = object_schema(field.fields, ())
        else:
            assert field.items is not None
            items = _scalar_schema(FieldType(field.items), field)
        return {"type": "array", "items": items, **description}
    return {**_scalar_schema(field.type, field), **description}


def _scalar_schema(kind: FieldType, field: Field) -> dict[str, Any]:
    if kind is FieldType.STRING:
        schema: dict[str, Any] = {"type": "string"}
        if field.max_length is not None:
            schema["maxLength"] = field.max_length
    elif kind is FieldType.INTEGER:
        schema = {"type": "integer"}
    elif kind is FieldType.BOOLEAN:
        schema = {"type": "boolean"}
    elif kind is FieldType.DECIMAL:
        schema = {"type": "string", "pattern": DECIMAL_PATTERN, "x-manifest-type": "decimal"}
    elif kind is FieldType.DATE:
        schema = {"type": "string", "format": "date"}
    else:
        schema = {"type": "string", "format": "date-time"}
    if field.enum is not None:
        schema["enum"] = list(field.enum)
    if field.nillable:
        schema["type"] = [schema["type"], "null"]
        if "enum" in schema:
            schema["enum"].append(None)
    return schema


def object_schema(fields: Iterable[Field], required: Sequence[str]) -> dict[str, Any]:
    fields = tuple(fields)
    schema: dict[str, Any] = {"type": "object", "properties": {f.name: field_schema(f) for f in fields},
                              "additionalProperties": False}
    if required:
        schema["required"] = list(required)
    return schema


def record_schema(dataset: Dataset) -> dict[str, Any]:
    """The schema of a (narrowed) dataset's record: key fields required, nothing beyond the fields.

    Only keys are required: a field with no value is left out of an answer (the store does not
    enforce a manifest's ``required``, and the SOAP faces leave such an element out too).
    """
    schema = object_schema(dataset.fields, dataset.key)
    schema["title"] = f"{dataset.dataset} record"
    return schema


def key_schema(dataset: Dataset) -> dict[str, Any]:
    return object_schema(dataset.key_fields, dataset.key)


def parameter_schema(field: Field) -> dict[str, Any]:
    """A key field's schema as a path or query parameter (text on the wire, never empty)."""
    schema = field_schema(field)
    schema.pop("description", None)
    if field.type is FieldType.STRING:
        schema["minLength"] = 1
    return schema
