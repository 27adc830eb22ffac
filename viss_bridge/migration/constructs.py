"""What an operation's contract is made of: the constructs a migration team maps, with where they occur.

``migrate inventory`` reports them per operation (table and JSON) so a team sees before scaffolding
what a service holds: nested objects, lists (and the wrappers holding them), attributes, simple
content, enumerations, choices, nillable and fixed values, wildcards, recursive types, how the
scaffold reads the operation (lookup, search and its criteria, change feed), result codes, paging
and computed values, and the schema files its types come from (imported or included).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from viss_bridge.migration.drafting import roles, tree, wrapped_item
from viss_bridge.migration.service_draft import ServiceDraft, draft_service
from viss_bridge.migration.wsdl import MessageInfo, OperationInfo, ServiceInfo, WsdlInventory

ORDER = ("kind", "criteria", "objects", "lists_of_structures", "lists_of_values", "wrappers", "attributes",
         "simple_content", "enums", "choices", "nillable", "fixed", "wildcards", "recursive", "result_codes", "paging",
         "computed", "schemas")


def _rows(message: MessageInfo | None, direction: str, found: dict[str, list[str]]) -> None:
    def add(name: str, what: str) -> None:
        found.setdefault(name, []).append(f"{direction}:{what}")

    for node in _walk(tree(message)):
        row = node.row
        if row.name == "*":
            add("wildcards", row.path)
            continue
        if "recursive" in row.note:
            add("recursive", row.path)
        if row.attribute:
            add("attributes", row.path)
        elif row.simple_content:
            add("simple_content", row.path)
        elif row.complex:
            if wrapped_item(node) is not None:
                add("wrappers", f"{row.path} ({wrapped_item(node).name})")  # type: ignore[union-attr]
            elif row.repeated:
                add("lists_of_structures", row.path)
            else:
                add("objects", row.path)
        elif row.repeated:
            add("lists_of_values", row.path)
        if row.simple_content and row.repeated:
            add("lists_of_structures", row.path)
        if row.enum:
            add("enums", f"{row.path} ({', '.join(row.enum)})")
        if row.choice:
            add("choices", row.path)
        if row.nillable:
            add("nillable", row.path)
        if row.fixed is not None:
            add("fixed", f"{row.path}={row.fixed}")


def _walk(nodes: list[Any]) -> list[Any]:
    result = []
    for node in nodes:
        result.append(node)
        result.extend(_walk(node.children))
    return result


def operation_constructs(op: OperationInfo, draft: ServiceDraft | None, inventory: WsdlInventory) -> dict[str, list[str]]:
    """Construct -> where it occurs (``output:Vehicle/Owners (Owner)``), only those present."""
    found: dict[str, list[str]] = {}
    _rows(op.input, "input", found)
    _rows(op.output, "output", found)
    if op.output is not None and op.output.fields and op.style != "rpc":
        r = roles(op)
        if r.result_codes or r.result_texts:
            found["result_codes"] = [n.name for n in r.result_codes + r.result_texts]
        paging = [f"{what}={node.name}" for what, node in (("page", r.page), ("page_size", r.page_size),
                                                          ("cursor", r.cursor)) if node is not None]
        if r.cursor_out:
            paging.append(f"cursor_out={r.cursor_out}")
        if paging:
            found["paging"] = paging
        if r.computed:
            found["computed"] = [f"{element}={value}" for element, value in r.computed.items()]
    operation = next((d for ds in (draft.datasets if draft else []) for d in ds.operations if d.op.name == op.name),
                     None)
    if operation is not None:
        found["kind"] = [operation.kind + (" (single)" if operation.kind == "search" and operation.single else "")]
        if operation.criteria:
            found["criteria"] = [f"{element} -> {path}" for element, (path, _) in operation.criteria.items()]
    kinds = {target: kind for kind, _source, target in inventory.links}
    if op.documents:
        found["schemas"] = [f"{Path(d).name} ({kinds.get(d, 'inline')})" for d in op.documents]
    return {name: found[name] for name in ORDER if name in found}


def service_constructs(service: ServiceInfo, inventory: WsdlInventory) -> dict[str, dict[str, list[str]]]:
    """Operation name -> its constructs."""
    try:
        draft: ServiceDraft | None = draft_service(service)
    except (ValueError, KeyError):  # a service the scaffold cannot read still gets its schema constructs
        draft = None
    return {op.name: operation_constructs(op, draft, inventory) for op in service.operations()}


def summary(constructs: dict[str, list[str]]) -> str:
    """One line: ``lookup; objects 2, wrappers 3 (...)``."""
    parts = []
    for name, places in constructs.items():
        if name == "kind":
            parts.append(places[0])
        elif name in ("criteria", "result_codes", "paging", "computed", "schemas"):
            parts.append(f"{name.replace('_', ' ')}: {', '.join(places)}")
        else:
            parts.append(f"{name.replace('_', ' ')} {len(places)}")
    return "; ".join(parts)
