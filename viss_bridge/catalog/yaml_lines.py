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


def load_with_lines(text: str) -> tuple[Any, dict[Path, int]]:
    """Return (data, {path: 1-based line}) for a single YAML document."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        raise YamlSyntaxError(mark.line + 1 if mark else None, f"{exc.problem or exc}") from None
    except yaml.YAMLError as exc:
        raise YamlSyntaxError(None, str(exc)) from None
    lines: dict[Path, int] = {}
    if node is None:
        return None, lines
    return _build(node, (), lines), lines


def _build(node: yaml.Node, path: Path, lines: dict[Path, int]) -> Any:
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = yaml.SafeLoader.construct_scalar(yaml.SafeLoader(""), key_node) if isinstance(key_node, yaml.ScalarNode) else str(key_node)
            key = str(key)
            if key in result:
                raise YamlSyntaxError(key_node.start_mark.line + 1, f"duplicate key '{key}'")
            result[key] = _build(value_node, path + (key,), lines)
            lines[path + (key,)] = key_node.start_mark.line + 1
        return result
    if isinstance(node, yaml.SequenceNode):
        return [_build(item, path + (index,), lines) for index, item in enumerate(node.value)]
    loader = yaml.SafeLoader("")
    return loader.construct_object(node, deep=True)


def line_for(lines: dict[Path, int], path: Path) -> int | None:
    """Line of the deepest known prefix of ``path`` (a missing key points at its parent)."""
    path = tuple(path)
    while path:
        if path in lines:
            return lines[path]
        path = path[:-1]
    return lines.get(())
