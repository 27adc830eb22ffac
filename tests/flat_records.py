"""Records as the generated Java and .NET clients print them: one name=value per leaf, at any depth.

``plate``, ``technical.mass`` (an object's field), ``owners`` (a list's length),
``owners[0].contacts[1].kind`` (a field of an element of a list inside a list),
``previous_plates[0]`` (a list of values). Absent and nil values are left out. The printed
text is read back in the manifest's types, so ``2846.00`` equals ``Decimal("2846")``.
"""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from typing import Any


def flatten(fields: Any, record: dict[str, Any] | None, prefix: str = "") -> dict[str, Any]:
    """A record (dict or zeep object serialised to dicts) flattened to ``path -> value``."""
    flat: dict[str, Any] = {}
    for field in fields:
        value = (record or {}).get(field.name)
        name = prefix + field.name
        if field.type.value == "list":
            items = value or []
            flat[name] = len(items)
            for index, item in enumerate(items):
                if field.fields is not None:
                    flat.update(flatten(field.fields, item, f"{name}[{index}]."))
                elif item is not None:
                    flat[f"{name}[{index}]"] = item
        elif field.type.value == "object":
            if value is not None:
                flat.update(flatten(field.fields, value, f"{name}."))
        elif value is not None:
            flat[name] = value
    return flat


def _field_at(fields: Any, path: str) -> tuple[Any, bool]:
    """(field, is a list length) for a printed path such as ``owners[0].contacts[1].kind``."""
    parts = path.split(".")
    field = None
    for depth, part in enumerate(parts):
        match = re.fullmatch(r"([a-z][a-z0-9_]*)((?:\[\d+\])?)", part)
        assert match, path
        field = next(f for f in fields if f.name == match.group(1))
        last = depth == len(parts) - 1
        if last:
            return field, field.type.value == "list" and not match.group(2)
        fields = field.fields
    raise AssertionError(path)


def typed(fields: Any, printed: dict[str, str]) -> dict[str, Any]:
    """Printed strings read back in the manifest's types (so 2846.00 == 2846, Z == +00:00)."""
    result: dict[str, Any] = {}
    for name, text in printed.items():
        field, is_length = _field_at(fields, name)
        if is_length:
            result[name] = int(text)
            continue
        kind = field.value_type.value
        if kind == "date":
            result[name] = dt.date.fromisoformat(text)
        elif kind == "datetime":
            result[name] = dt.datetime.fromisoformat(text)
        elif kind == "decimal":
            result[name] = Decimal(text)
        elif kind == "integer":
            result[name] = int(text)
        elif kind == "boolean":
            result[name] = {"true": True, "false": False}[text]
        else:
            result[name] = text
    return result


# -- the checkers' output: one line per fact, ``tag|kind|name=value|...`` (tests/java, tests/dotnet) ----------

Lines = dict[str, list[tuple[str, dict[str, str]]]]


def unescape(text: str) -> str:
    return re.sub(r"\\(.)", lambda m: {"\\": "\\", "p": "|", "n": "\n"}[m.group(1)], text)


def parse_checker_output(stdout: str) -> Lines:
    """``tag -> [(kind, fields)]`` from a generated client's checker output (escapes: ``\\p`` ``\\n`` ``\\\\``)."""
    lines: Lines = {}
    for line in stdout.splitlines():
        if not line or line == "done":
            continue
        tag, kind, *pairs = line.split("|")
        fields = {}
        for pair in pairs:
            name, _, value = pair.partition("=")
            fields[name] = unescape(value)
        lines.setdefault(unescape(tag), []).append((kind, fields))
    return lines


def one_line(lines: Lines, tag: str, kind: str, stderr: str = "") -> dict[str, str]:
    """The one ``kind`` line printed for ``tag`` (the test fails naming what was printed instead)."""
    found = [fields for k, fields in lines.get(tag, []) if k == kind]
    assert len(found) == 1, f"expected one '{kind}' line for {tag}, got {lines.get(tag)}\n{stderr}"
    return found[0]
