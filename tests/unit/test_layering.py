"""The package layering of DESIGN.md section 3, read from the imports.

Dependencies point downward only. A new import that points up (say ``catalog``
importing ``access``, or any package importing ``cli`` or ``server``) fails
here with the file and line, before it becomes a cycle that a newcomer has to
untangle.
"""

from __future__ import annotations

import ast
from pathlib import Path

import viss_bridge

ROOT = Path(viss_bridge.__file__).parent

# Leaf modules every layer may use: they import no other part of the project.
LEAVES = {"xml", "config", "db", "observability", "namespaces", "grouping", "memtrim"}
BELOW_FACADE = {"catalog", "access", "msglog", "security", "upstream"}
TOP = {"cli", "server", "serving"}

# What each top-level package or module may import, besides itself.
ALLOWED: dict[str, set[str]] = {
    # namespaces: constants only, the one module every layer may import
    "namespaces": set(),
    "xml": {"namespaces"},
    "config": set(),
    "db": set(),
    "grouping": set(),
    "memtrim": set(),
    "observability": set(),
    "catalog": {"namespaces"},
    "security": {"namespaces"},
    "msglog": {"security", "xml", "namespaces", "grouping"},
    "access": {"catalog", "xml", "db", "config", "observability", "namespaces", "grouping"},
    "upstream": {"catalog", "security", "msglog", "xml", "db", "config", "observability", "namespaces"},
    "migration": BELOW_FACADE | LEAVES,
    "facade": BELOW_FACADE | LEAVES,
    "console": BELOW_FACADE | LEAVES | {"facade", "migration"},
    "demo": BELOW_FACADE | LEAVES | {"facade", "migration"},
}


def _layer(module: str) -> str | None:
    """``viss_bridge.facade.xroad`` -> ``facade``; None outside the project."""
    parts = module.split(".")
    if parts[0] != "viss_bridge":
        return None
    return parts[1] if len(parts) > 1 else ""


def _imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = ".".join(("viss_bridge",) + path.relative_to(ROOT).with_suffix("").parts[:-1])
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative import: resolve against this file's package
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            found.append((node.lineno, module))
            if module == "viss_bridge":  # ``from viss_bridge import facade``
                found.extend((node.lineno, f"viss_bridge.{alias.name}") for alias in node.names)
    return found


def _violations() -> list[str]:
    problems = []
    for path in sorted(ROOT.rglob("*.py")):
        own = path.relative_to(ROOT).parts[0].removesuffix(".py")
        if own in TOP or own == "__init__":
            allowed = None  # the top uses everything
        else:
            allowed = ALLOWED.get(own)
            if allowed is None:
                problems.append(f"{path.relative_to(ROOT.parent)}: package {own!r} has no rule in test_layering.ALLOWED")
                continue
        for line, module in _imports(path):
            layer = _layer(module)
            if layer is None or layer in ("", own):
                continue
            if layer in TOP and own not in TOP:
                problems.append(f"{path.relative_to(ROOT.parent)}:{line}: imports {module} (nothing imports cli or server)")
            elif allowed is not None and layer not in allowed:
                problems.append(f"{path.relative_to(ROOT.parent)}:{line}: {own} imports {module}, "
                                f"against DESIGN.md section 3 (allowed: {', '.join(sorted(allowed)) or 'nothing'})")
    return problems


def test_imports_point_downward_only() -> None:
    assert _violations() == []


def test_the_check_sees_an_upward_import(tmp_path: Path) -> None:
    """The reader must resolve absolute and relative imports, or the check above proves nothing."""
    sample = ROOT / "catalog" / "manifest.py"
    modules = {m for _, m in _imports(sample)}
    assert any(m.startswith("viss_bridge.catalog") for m in modules)
    relative = tmp_path / "viss_bridge" / "catalog" / "probe.py"
    relative.parent.mkdir(parents=True)
    relative.write_text("from ..access import policy\nfrom . import store\n")
    tree_root = ROOT
    try:
        globals()["ROOT"] = tmp_path / "viss_bridge"
        resolved = [m for _, m in _imports(relative)]
    finally:
        globals()["ROOT"] = tree_root
    assert resolved == ["viss_bridge.access", "viss_bridge.catalog"]
