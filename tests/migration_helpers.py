"""A person's decisions on scaffolded drafts: each ``# TODO(decide): <category>: ...`` line is about the line
right below it; a decision rewrites that line (or keeps it) and the TODO line goes, as a person editing would."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Callable

TODO = re.compile(r"^(\s*)# TODO\(decide\): ([a-z_]+): (.*)$")
Decision = Callable[[str, str], "str | None"]  # (the line below the TODO, the TODO's text) -> new line(s), or keep


def todo_lines(folder: Path) -> list[tuple[Path, str, str, str]]:
    """Every TODO(decide) of the drafts: (file, category, text, the line it is about)."""
    found = []
    for file in sorted(folder.rglob("*.yaml")):
        lines = file.read_text(encoding="utf-8").splitlines()
        for index, line in enumerate(lines):
            match = TODO.match(line)
            if match:
                target = next((t for t in lines[index + 1:] if not TODO.match(t)), "")
                found.append((file, match.group(2), match.group(3), target))
    return found


def decide(folder: Path, decisions: dict[str, Decision]) -> int:
    """Apply ``decisions`` (by category) to every draft in ``folder``; returns how many TODOs were settled.
    A category without a decision keeps the drafted line (the person agrees with it)."""
    settled = 0
    for file in sorted(folder.rglob("*.yaml")):
        lines = file.read_text(encoding="utf-8").splitlines()
        out: list[str] = []
        pending: list[tuple[str, str]] = []
        for line in lines:
            match = TODO.match(line)
            if match:
                pending.append((match.group(2), match.group(3)))
                continue
            for category, text in pending:
                decision = decisions.get(category)
                changed = decision(line, text) if decision else None
                if changed is not None:
                    line = changed
                settled += 1
            pending = []
            out.append(line)
        file.write_text("\n".join(out) + "\n", encoding="utf-8")
    return settled
