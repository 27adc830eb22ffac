"""YAML loading that remembers the line of every value.

An operator who wrote a wrong manifest needs the file and line, not just the
field. PyYAML's composer keeps marks on nodes, so we build plain Python data
from the node tree and a map from each value's path to its line.
"""

from __future__ import annotations

from typing import Any

import yaml

Path = tuple[str | int, ...]


class YamlSyntaxError(ValueError):
    def __init__(self, line: int | None, message: str) -> None:
        super().__init__(message)
        self.line = line


# libyaml's parser where PyYAML was built with it (the wheels are): 745 manifests parse in a
# fraction of the pure-Python parser's time, with the same nodes and marks.
_COMPOSER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load_with_lines(text: str) -> tuple[Any, dict[Path, int]]:
    """Return (data, {path: 1-based line}) for a single YAML document."""
    try:
        node = yaml.compose(text, Loader=_COMPOSER)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        raise YamlSyntaxError(mark.line + 1 if mark else None, f"{exc.problem or exc}") from None
    except yaml.YAMLError as exc:
        raise YamlSyntaxError(None, str(exc)) from None
    lines: dict[Path, int] = {}
    if node is None:
        return None, lines
    return _build(node, (), lines, yaml.SafeLoader("")), lines


def _build(node: yaml.Node, path: Path, lines: dict[Path, int], constructor: yaml.SafeLoader) -> Any:
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = str(constructor.construct_scalar(key_node) if isinstance(key_node, yaml.ScalarNode) else key_node)
            if key in result:
                raise YamlSyntaxError(key_node.start_mark.line + 1, f"duplicate key '{key}'")
            result[key] = _build(value_node, path + (key,), lines, constructor)
            lines[path + (key,)] = key_node.start_mark.line + 1
        return result
    if isinstance(node, yaml.SequenceNode):
        return [_build(item, path + (index,), lines, constructor) for index, item in enumerate(node.value)]
    return constructor.construct_object(node, deep=True)


def line_for(lines: dict[Path, int], path: Path) -> int | None:
    """Line of the deepest known prefix of ``path`` (a missing key points at its parent)."""
    path = tuple(path)
    while path:
        if path in lines:
            return lines[path]
        path = path[:-1]
    return lines.get(())


def validation_problem(errors: list[dict[str, Any]], lines: dict[Path, int], data: Any = None,
                       unknown_key: str = "unknown key",
                       union_members: tuple[str, ...] = ()) -> tuple[int | None, str | None, str]:
    """Turn pydantic's first error into (line, field label, message) for a file+line+field report.

    Every YAML file the bridge validates (manifests, contract mappings, shadow plans) reports the
    same way; ``unknown_key`` says where the allowed keys are listed; ``union_members`` are the
    type names pydantic puts into locations of union-typed values (they are not keys).
    """
    error = errors[0]
    raw = [part for part in error["loc"]
           if isinstance(part, int) or (not str(part).startswith(("function-", "tagged-union", "union"))
                                        and part not in union_members)]
    # A tagged union puts its tag (e.g. the source kind) into the location: it is not a key of the YAML.
    # Walk the data and drop names that are not there, except a last one (a missing key is reported as itself).
    kept: list[str | int] = []
    node = data
    for index, part in enumerate(raw):
        last = index == len(raw) - 1
        if isinstance(part, str) and isinstance(node, dict) and part not in node and not last:
            continue
        kept.append(part)
        if isinstance(part, int):
            node = node[part] if isinstance(node, list) and part < len(node) else None
        else:
            node = node.get(part) if isinstance(node, dict) else None
    path = tuple(kept)
    message = str(error["msg"]).removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        message = unknown_key
    elif error["type"] == "missing":
        message = "is required but missing"
    elif error["type"] == "enum":
        message = f"{message}, got {error.get('input')!r}"
    more = len(errors) - 1
    if more:
        message += f" (and {more} more problem{'s' if more > 1 else ''})"
    return line_for(lines, path), field_label(data, path) or None, message


def field_label(data: Any, path: tuple[str | int, ...]) -> str:
    """Readable label: ``fields[2].type`` becomes ``fields.birth_date.type`` where items have names."""
    parts: list[str] = []
    node = data
    for part in path:
        if isinstance(part, int):
            item = node[part] if isinstance(node, list) and part < len(node) else None
            name = item.get("name") if isinstance(item, dict) else None
            parts.append(str(name) if name else str(part))
            node = item
        else:
            parts.append(str(part))
            node = node.get(part) if isinstance(node, dict) else None
    return ".".join(parts)
