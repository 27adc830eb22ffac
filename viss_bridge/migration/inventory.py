"""``migrate inventory``: many WSDLs at once, rendered as a table, JSON or CSV.

A WSDL that cannot be read does not stop the others: its error (file and
cause) is collected and reported after the ones that could be read. Within a
WSDL, an operation whose types cannot be resolved (a type missing from the
schemas) is a problem of that operation, naming it and the type; the other
operations are still inventoried. Each operation lists the constructs it is
made of (``viss_bridge.migration.constructs``).
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from viss_bridge.migration.constructs import service_constructs, summary
from viss_bridge.migration.wsdl import WsdlError, WsdlInventory, complexity_band, read_wsdl

WSDL_SUFFIXES = (".wsdl", ".xml")


@dataclass
class InventoryResult:
    inventories: list[WsdlInventory] = field(default_factory=list)
    errors: list[WsdlError] = field(default_factory=list)

    @property
    def operation_count(self) -> int:
        return sum(len(s.operations()) for inv in self.inventories for s in inv.services)

    @property
    def problems(self) -> list[str]:
        """Per operation, what could not be read (``source: operation direction: cause``)."""
        return [f"{inv.source}: {problem}" for inv in self.inventories for s in inv.services for op in s.operations()
                for problem in op.problems]


def expand(locations: Iterable[str]) -> list[str]:
    """Folders stand for the WSDL files in them (not the XSDs they include)."""
    result: list[str] = []
    for location in locations:
        path = Path(location)
        if "://" not in location and path.is_dir():
            result.extend(str(p) for p in sorted(path.rglob("*")) if p.suffix.lower() in WSDL_SUFFIXES and p.is_file())
        else:
            result.append(location)
    return result


def run_inventory(locations: Iterable[str], *, allow_network: bool = False,
                  schema_dirs: tuple[str, ...] = ()) -> InventoryResult:
    result = InventoryResult()
    listed = set(locations)
    abstract: list[WsdlError] = []
    for location in expand(locations):
        try:
            result.inventories.append(read_wsdl(location, allow_network=allow_network, schema_dirs=schema_dirs))
        except WsdlError as exc:
            if exc.abstract and location not in listed:
                abstract.append(exc)  # found in a folder: fine if another WSDL of the run imports it
            else:
                result.errors.append(exc)
    imported = {Path(doc).resolve() for inv in result.inventories for doc in inv.documents[1:] if "://" not in doc}
    result.errors.extend(e for e in abstract if Path(e.source).resolve() not in imported)
    return result


def _with_constructs(inv: WsdlInventory) -> dict[str, object]:
    data = inv.to_json()
    for service, sdata in zip(inv.services, data["services"]):
        constructs = service_constructs(service, inv)
        for pdata in sdata["ports"]:
            for odata in pdata["operations"]:
                odata["constructs"] = constructs.get(odata["name"], {})
    return data


def render_json(result: InventoryResult) -> str:
    data = {"wsdls": [_with_constructs(inv) for inv in result.inventories],
            "problems": result.problems,
            "errors": [{"source": e.source, "cause": e.cause} for e in result.errors],
            "totals": {"wsdls": len(result.inventories), "failed": len(result.errors),
                       "services": sum(len(i.services) for i in result.inventories),
                       "operations": result.operation_count,
                       "complexity": sum(i.complexity for i in result.inventories)}}
    return json.dumps(data, indent=2, ensure_ascii=False)


CSV_COLUMNS = ("wsdl", "service", "port", "soap_version", "style", "operation", "direction", "element", "path",
               "name", "xsd_type", "optional", "repeated", "depth", "note", "operation_complexity")


def render_csv(result: InventoryResult) -> str:
    """One row per field of every message (a spreadsheet a mapping team can work in)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for inv in result.inventories:
        for service in inv.services:
            for port in service.ports:
                for op in port.operations:
                    for direction, message in (("input", op.input), ("output", op.output)):
                        if message is None:
                            continue
                        rows = message.fields or [None]
                        for row in rows:
                            writer.writerow([
                                inv.source, service.name, port.name, port.soap_version, op.style, op.name, direction,
                                message.element,
                                row.path if row else "", row.name if row else "", row.xsd_type if row else "",
                                str(row.optional).lower() if row else "", str(row.repeated).lower() if row else "",
                                row.depth if row else "", row.note if row else "", op.complexity])
    return out.getvalue()


def render_table(result: InventoryResult, with_fields: bool = False) -> str:
    header = ("service", "port", "soap", "style", "operation", "input", "output", "fields", "depth", "repeated",
              "complexity")
    lines: list[str] = []
    for inv in result.inventories:
        lines.append(f"{inv.source}  (namespace {inv.target_namespace or '-'}; {len(inv.documents)} document(s), "
                     f"{inv.schema_count} schema(s); complexity {inv.complexity}, {complexity_band(inv.complexity)})")
        rows: list[tuple[str, ...]] = []
        extra: dict[int, list[str]] = {}
        for service in inv.services:
            constructs = service_constructs(service, inv)
            for port in service.ports:
                for op in port.operations:
                    rows.append((service.name, port.name, port.soap_version, op.style, op.name,
                                 op.input.element if op.input else "-", op.output.element if op.output else "-",
                                 str(op.field_count), str(op.max_depth), str(op.repeated_count),
                                 f"{op.complexity} {complexity_band(op.complexity)}"))
                    field_lines = [f"      problem: {problem}" for problem in op.problems]
                    if constructs.get(op.name):
                        field_lines.append(f"      constructs: {summary(constructs[op.name])}")
                    extra[len(rows) - 1] = field_lines
                    if with_fields:
                        for direction, message in (("in ", op.input), ("out", op.output)):
                            for row in (message.fields if message else []):
                                flags = ",".join(f for f, on in (("optional", row.optional), ("repeated", row.repeated),
                                                                 ("nillable", row.nillable)) if on)
                                facts = [row.note] if row.note else []
                                if row.enum:
                                    facts.append(f"enum: {', '.join(row.enum)}")
                                if row.fixed is not None:
                                    facts.append(f"fixed: {row.fixed}")
                                note = f"  ({'; '.join(facts)})" if facts else ""
                                field_lines.append(f"      {direction} {'  ' * (row.depth - 1)}{row.name}: "
                                                   f"{row.xsd_type}{' [' + flags + ']' if flags else ''}{note}")
                        extra[len(rows) - 1] = field_lines
        widths = [max(len(str(x)) for x in column) for column in zip(header, *rows)]
        for index, row in enumerate((header, *rows)):
            lines.append("  " + "  ".join(str(v).ljust(w) for v, w in zip(row, widths)).rstrip())
            lines.extend(extra.get(index - 1, []))
        for warning in inv.warnings:
            lines.append(f"  note: {warning}")
        lines.append("")
    lines.append(f"{len(result.inventories)} WSDL(s) read, {len(result.errors)} failed; "
                 f"{sum(len(i.services) for i in result.inventories)} service(s), {result.operation_count} operation(s)"
                 + (f"; {len(result.problems)} operation problem(s)" if result.problems else ""))
    return "\n".join(lines)
