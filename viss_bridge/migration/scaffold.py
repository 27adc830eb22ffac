"""``migrate scaffold``: draft dataset manifests and a draft legacy contract mapping from a WSDL.

For each lookup operation of a legacy service (a request with a few scalar
elements, a response carrying one record) the scaffold writes

* ``<out>/<dataset>.yaml``: a dataset manifest whose fields and types come from
  the record's XSD type, and whose key is guessed from the request elements
  that also appear in the record;
* ``<out>/legacy/<name>.yaml``: the contract mapping that ``/legacy/<name>``
  reads (``viss_bridge.facade.legacy_contract``), next to a copy of the WSDL
  and the schemas it includes.

Everything a person must decide carries a ``# TODO(decide): ...`` comment, but
the drafts are valid as they are: ``viss-bridge catalog validate <out>``
passes and a bridge serves them, so a team can shadow-compare early and refine.
Operations that look like change feeds (a time in the request, a repeated
record in the response) are mapped as ``kind: changes`` operations of the same
dataset when their records match a lookup's, and offered as the ``changes``
section of a ``legacy_soap`` source (``--provider-url``).
"""

from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from viss_bridge.migration.tracking import service_id
from viss_bridge.migration.wsdl import FieldRow, MessageInfo, OperationInfo, ServiceInfo, WsdlInventory

TYPE_MAP = {
    "string": "string", "normalizedString": "string", "token": "string", "anyURI": "string", "language": "string",
    "Name": "string", "NCName": "string", "ID": "string", "NMTOKEN": "string",
    "int": "integer", "integer": "integer", "long": "integer", "short": "integer", "byte": "integer",
    "nonNegativeInteger": "integer", "positiveInteger": "integer", "nonPositiveInteger": "integer",
    "negativeInteger": "integer", "unsignedLong": "integer", "unsignedInt": "integer", "unsignedShort": "integer",
    "unsignedByte": "integer",
    "decimal": "decimal", "float": "decimal", "double": "decimal",
    "boolean": "boolean", "date": "date", "dateTime": "datetime",
}
PERSON_CODE_NAMES = {"person_code", "personal_code", "personas_kods", "pk", "person_id_code"}
RESERVED = {"record", "records"}
TIME_TYPES = {"xs:dateTime", "xs:date"}
CONTRACT_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")  # what /legacy/<name> accepts


class ScaffoldError(ValueError):
    pass


def snake(name: str) -> str:
    """``GivenName`` -> ``given_name``; ``AtvkCode`` -> ``atvk_code``; ``personCode`` -> ``person_code``."""
    text = re.sub(r"[^A-Za-z0-9]+", "_", name)
    text = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", text)
    text = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", text)
    text = re.sub(r"_+", "_", text).strip("_").lower()
    if not text or not text[0].isalpha():
        text = f"f_{text}"
    return text[:63]


def _q(value: str) -> str:
    """A YAML double-quoted scalar (JSON strings are valid YAML)."""
    return json.dumps(value, ensure_ascii=False)


@dataclass
class DraftField:
    name: str
    type: str
    required: bool
    description: str
    element: str
    todo: list[str] = field(default_factory=list)
    fields: list["DraftField"] = field(default_factory=list)


@dataclass
class DraftOperation:
    operation: OperationInfo
    dataset: str
    record_element: str
    fields: list[DraftField]
    key: list[str]
    request_map: dict[str, str]
    todos: list[str]  # operation-level decisions
    skipped: list[str]  # legacy elements left out of the mapping, with why
    subject: str | None = None


@dataclass
class ChangeFeed:
    operation: OperationInfo
    since: str
    after_key: str | None
    page_size_element: str | None
    items: str
    record: str | None
    changed_at: str | None
    more: str | None


@dataclass
class ScaffoldResult:
    service: str
    contract: str
    files: list[Path]
    datasets: list[str]
    changes: list[tuple[str, bool]]  # change-feed operations, and whether the mapping serves them
    skipped_operations: list[str]
    todo_count: int


def _children(message: MessageInfo, parent: str) -> list[FieldRow]:
    prefix = f"{parent}/" if parent else ""
    depth = parent.count("/") + 2 if parent else 1
    return [r for r in message.fields if r.path.startswith(prefix) and r.depth == depth]


def _draft_fields(message: MessageInfo, parent: str, skipped: list[str], in_list: bool = False) -> list[DraftField]:
    fields: list[DraftField] = []
    used: set[str] = set()
    for row in _children(message, parent):
        where = row.path
        if row.attribute:
            skipped.append(f"{where}: an attribute; contract mappings map elements only")
            continue
        if row.name == "*":
            skipped.append(f"{where}: a wildcard (xs:any); its content is not described")
            continue
        name = snake(row.name)
        todo: list[str] = []
        if name in RESERVED:
            todo.append(f"'{name}' is reserved in manifests; renamed to '{name}_value'")
            name = f"{name}_value"
        base = name
        counter = 2
        while name in used:
            name = f"{base}_{counter}"
            counter += 1
        if name != base:
            todo.append(f"two legacy elements give the name '{base}'; this one is '{name}'")
        if row.note.startswith("choice"):
            todo.append(f"{row.name} is one branch of an xs:choice; made optional")
        if row.complex:
            if not row.repeated:
                skipped.append(f"{where}: a nested structure that is not repeated; contract mappings map scalar "
                               "elements and repeated elements only (flatten it into fields by hand, or leave it out)")
                continue
            nested = _draft_fields(message, row.path, skipped, in_list=True)
            if not nested:
                skipped.append(f"{where}: a repeated structure without mappable children")
                continue
            fields.append(DraftField(name, "list", not row.optional, f"Legacy element {where} (repeated {row.xsd_type})",
                                     row.name, todo, nested))
            used.add(name)
            continue
        if row.repeated:
            skipped.append(f"{where}: a repeated simple value ({row.xsd_type}); contract mappings map repeated "
                           "elements with children only")
            continue
        local = row.xsd_type.removeprefix("xs:")
        ftype = TYPE_MAP.get(local)
        if ftype is None:
            ftype = "string"
            todo.append(f"XSD type {row.xsd_type} has no manifest type; carried as a string")
        fields.append(DraftField(name, ftype, not row.optional and not row.note.startswith("choice"),
                                 f"Legacy element {where} ({row.xsd_type})", row.name, todo))
        used.add(name)
    return fields


def _record_element(message: MessageInfo) -> FieldRow | None:
    """The response child that carries the record: the only complex child, or the only child."""
    top = _children(message, "")
    complex_rows = [r for r in top if r.complex]
    if len(complex_rows) == 1:
        return complex_rows[0]
    return None


def change_feed(op: OperationInfo) -> ChangeFeed | None:
    """A change-feed operation: a time in the request, a repeated structure in the response."""
    if op.input is None or op.output is None:
        return None
    request = _children(op.input, "")
    since = next((r for r in request if r.xsd_type in TIME_TYPES and not r.repeated), None)
    items = next((r for r in _children(op.output, "") if r.complex and r.repeated), None)
    if since is None or items is None:
        return None
    inner = _children(op.output, items.path)
    record = next((r for r in inner if r.complex and not r.repeated), None)
    changed_at = next((r for r in inner if r.xsd_type in TIME_TYPES), None)
    more = next((r for r in _children(op.output, "") if r.xsd_type == "xs:boolean"), None)
    after = next((r for r in request if r is not since and r.xsd_type == "xs:string" and r.optional), None)
    page = next((r for r in request if r.xsd_type in ("xs:int", "xs:integer", "xs:long", "xs:short")), None)
    return ChangeFeed(op, since.name, after.name if after else None, page.name if page else None, items.name,
                      record.name if record else None, changed_at.name if changed_at else None,
                      more.name if more else None)


def _prefix(service: ServiceInfo) -> str:
    ident = service_id(service.namespace, service.name)
    first = ident.split("/")[0] if "/" in ident else ident
    return snake(first)[:20]


def contract_name(service: ServiceInfo) -> str:
    """The ``/legacy/<name>`` a scaffolded contract is served at: ``pmlp-fizpersonas-v1-0``."""
    ident = service_id(service.namespace, service.name)
    name = re.sub(r"[^a-z0-9_-]+", "-", ident.lower()).strip("-")
    return (name or "legacy")[:63]


def draft_operations(service: ServiceInfo, prefix: str | None = None) -> tuple[list[DraftOperation], list[ChangeFeed],
                                                                               list[str]]:
    prefix = prefix if prefix is not None else _prefix(service)
    drafts: list[DraftOperation] = []
    feeds: list[ChangeFeed] = []
    skipped_ops: list[str] = []
    names: set[str] = set()
    for op in service.operations():
        feed = change_feed(op)
        if feed is not None:
            feeds.append(feed)
            continue
        if op.input is None or op.output is None:
            skipped_ops.append(f"{op.name}: one-way operation (no response): not a lookup")
            continue
        if op.style == "rpc":
            skipped_ops.append(f"{op.name}: rpc style; /legacy contracts serve document/literal operations only")
            continue
        record = _record_element(op.output)
        if record is None:
            skipped_ops.append(f"{op.name}: the response has no single structure carrying a record")
            continue
        skipped: list[str] = []
        fields = _draft_fields(op.output, record.path, skipped)
        if not fields:
            skipped_ops.append(f"{op.name}: the record {record.name} has no mappable fields")
            continue
        todos: list[str] = []
        if record.repeated:
            todos.append(f"the response repeats {record.name}: a lookup serves one record per key; check the key")
        by_element = {f.element: f for f in fields if f.type != "list"}
        request_map: dict[str, str] = {}
        for row in _children(op.input, ""):
            if row.complex or row.repeated:
                todos.append(f"request element {row.name} is structured or repeated; not used as a key")
                continue
            match = by_element.get(row.name)
            if match is None:
                match = next((f for f in fields if f.type != "list" and f.name == snake(row.name)), None)
            if match is not None:
                request_map[row.name] = match.name
            else:
                todos.append(f"request element {row.name} matches no response field; it is not used for the lookup")
        if not request_map:
            scalars = [f for f in fields if f.type != "list"]
            first = next((f for f in scalars if f.required), scalars[0] if scalars else None)
            if first is None:
                skipped_ops.append(f"{op.name}: no scalar field could serve as the key")
                continue
            todos.append(f"no request element matches a response field; the key '{first.name}' is a guess and the "
                         "mapping's request section must be written by hand")
            key = [first.name]
        else:
            key = list(dict.fromkeys(request_map.values()))
        for name in key:
            for f in fields:
                if f.name == name:
                    f.required = True
        stem = snake(record.name)
        if stem in ("result", "response", "return", "data", "item"):
            stem = snake(op.name.removeprefix("Get").removeprefix("get"))
        dataset = f"{prefix}_{stem}" if prefix else stem
        dataset = dataset[:63]
        while dataset in names:
            dataset = f"{dataset[:55]}_{snake(op.name)}"[:63]
        names.add(dataset)
        subject = next((f.name for f in fields if f.name in PERSON_CODE_NAMES and f.type == "string"), None)
        drafts.append(DraftOperation(op, dataset, record.name, fields, key, request_map, todos, skipped, subject))
    return drafts, feeds, skipped_ops


# -- writing -------------------------------------------------------------------------------------

def _field_lines(fields: list[DraftField], indent: str) -> list[str]:
    lines: list[str] = []
    for f in fields:
        for todo in f.todo:
            lines.append(f"{indent}# TODO(decide): {todo}")
        if f.type == "list":
            lines.append(f"{indent}- name: {f.name}")
            lines.append(f"{indent}  type: list")
            lines.append(f"{indent}  required: {'true' if f.required else 'false'}")
            lines.append(f"{indent}  description: {_q(f.description)}")
            lines.append(f"{indent}  fields:")
            lines.extend(_field_lines(f.fields, indent + "    "))
        else:
            lines.append(f"{indent}- {{name: {f.name}, type: {f.type}, required: {'true' if f.required else 'false'}, "
                         f"description: {_q(f.description)}}}")
    return lines


def _mapping_lines(fields: list[DraftField], indent: str) -> list[str]:
    lines = []
    for f in fields:
        if f.type == "list":
            lines.append(f"{indent}{f.element}:")
            lines.append(f"{indent}  field: {f.name}")
            lines.append(f"{indent}  fields:")
            lines.extend(_mapping_lines(f.fields, indent + "    "))
        else:
            lines.append(f"{indent}{f.element}: {f.name}")
    return lines


def manifest_text(draft: DraftOperation, service: ServiceInfo, inventory: WsdlInventory, contract: str,
                  wsdl_ref: str, owner: str | None, access: str, provider_url: str | None, mode: str,
                  feed: ChangeFeed | None) -> str:
    ident = service_id(service.namespace, service.name)
    op = draft.operation
    lines = [
        "# DRAFT dataset manifest scaffolded by `viss-bridge migrate scaffold` from",
        f"#   {Path(inventory.source).name}: service {service.name}, operation {op.name}",
        f"# (record element {draft.record_element} of {op.output.element if op.output else '?'}).",
        "# It loads as it is; every TODO(decide) below needs a person's decision before switch-over.",
        f"dataset: {draft.dataset}",
        "version: v1",
        "# TODO(decide): real Latvian and English titles for the catalog.",
        f"title: {{lv: {_q(f'{op.name} ({ident})')}, en: {_q(f'{op.name} ({ident})')}}}",
        f"description: {{lv: {_q(f'Pārnests no VISS servisa {ident}, operācija {op.name}.')}, "
        f"en: {_q(f'Migrated from the generation-II service {ident}, operation {op.name}.')}}}",
    ]
    if owner:
        lines.append(f"owner: {owner}")
    else:
        inst = ident.split("/")[0].upper() if "/" in ident else "LEGACY"
        inst = re.sub(r"[^A-Za-z0-9-]", "-", inst) or "LEGACY"
        lines += ["# TODO(decide): the data owner's X-Road member and subsystem (placeholder registration number).",
                  f"owner: LV/GOV/00000000000/{inst}"]
    if draft.request_map:
        matched = ", ".join(f"{element} -> {name}" for element, name in draft.request_map.items())
        lines.append(f"# TODO(decide): key guessed from the request elements that also appear in the record: {matched}")
    for todo in draft.todos:
        lines.append(f"# TODO(decide): {todo}")
    lines.append(f"key: [{', '.join(draft.key)}]")
    if draft.subject:
        lines += [f"# TODO(decide): '{draft.subject}' looks like a personal code, so it is taken as the data subject "
                  "(data tracker, restrictions); remove if records are not about persons.",
                  f"subject: {draft.subject}"]
    else:
        lines.append("# TODO(decide): if records are personal data, name the field holding the person's code: "
                     "subject: <field>")
    lines += ["# TODO(decide): access level: open | public | restricted | private (drafts default to restricted).",
              f"access: {access}", "fields:"]
    lines.extend(_field_lines(draft.fields, "  "))
    if draft.skipped:
        lines.append("# Legacy elements NOT carried into the dataset:")
        for skip in draft.skipped:
            lines.append(f"# TODO(decide): {skip}")
    lines.append("source:")
    if provider_url:
        lines += ["  # Answered by the legacy provider through zeep: live (every lookup calls it) or replicated",
                  "  # (`viss-bridge sync` copies its records into the store; needs the changes section).",
                  "  # TODO(decide): live or replicated; timeouts, retries and the breaker for this provider.",
                  "  kind: legacy_soap",
                  f"  mode: {mode}",
                  f"  provider: {contract}",
                  f"  wsdl: {wsdl_ref}",
                  f"  address: {provider_url}",
                  "  lookup:",
                  f"    operation: {op.name}",
                  f"    request: {{{', '.join(f'{k}: {v}' for k, v in draft.request_map.items())}}}",
                  f"    result: {draft.record_element}"]
        if feed is not None and feed.record and feed.changed_at:
            lines += ["  changes:",
                      f"    operation: {feed.operation.name}",
                      f"    since: {feed.since}"]
            if feed.after_key:
                lines.append(f"    after_key: {feed.after_key}")
            if feed.page_size_element:
                lines += [f"    page_size_element: {feed.page_size_element}", "    page_size: 200"]
            lines += [f"    items: {feed.items}", f"    record: {feed.record}", f"    changed_at: {feed.changed_at}"]
            if feed.more:
                lines.append(f"    more: {feed.more}")
        lines.append("  fields:")
        lines.extend(_mapping_lines(draft.fields, "    "))
        lines += ["  timeouts: {connect: 3, operation: 10}", "  retries: {attempts: 3, backoff: 0.2}",
                  "  breaker: {failures: 5, reset_after: 30}"]
    else:
        lines += ["  # TODO(decide): store (records replicated into the platform and loaded with `catalog load` or",
                  "  # `sync`), or legacy_soap (answered by the old provider; scaffold with --provider-url).",
                  "  kind: store"]
    lines += ["legacy:", f"  - {{dialect: legacy, service: {contract}/{op.name}}}", ""]
    return "\n".join(lines)


def contract_text(drafts: list[DraftOperation], feeds: list[ChangeFeed], skipped_ops: list[str], service: ServiceInfo,
                  inventory: WsdlInventory, wsdl_ref: str, contract: str, consumer: str | None,
                  consumer_networks: tuple[str, ...] = ()) -> str:
    ident = service_id(service.namespace, service.name)
    lines = [
        f"# DRAFT contract mapping scaffolded by `viss-bridge migrate scaffold` from {Path(inventory.source).name}",
        f"# (service {service.name}, {ident}). Served at /legacy/{contract} with the original WSDL:",
        "# old consumers change only their endpoint address.",
        f"wsdl: {wsdl_ref}",
    ]
    if consumer:
        lines += ["# Old callers send no identity of their own; this one is checked against the datasets' permissions,",
                  "# for callers that authenticate as it, or that call from consumer_networks (docs/legacy.md).",
                  f"consumer: {consumer}"]
        if consumer_networks:
            lines.append("consumer_networks: [" + ", ".join(f'"{n}"' for n in consumer_networks) + "]")
        else:
            lines += ["# TODO(decide): the old clients' networks whose unauthenticated calls stand for the consumer;",
                      "# without it only callers authenticated as the consumer are served as it.",
                      "# consumer_networks: [10.0.0.0/24]"]
    else:
        lines += ["# TODO(decide): the identity old callers get for permission checks (register and grant it with",
                  "# `viss-bridge clients add/grant`); without it only open datasets are served.",
                  "# consumer: LV/GOV/<member code>/<subsystem>"]
    lines.append("operations:")
    for draft in drafts:
        lines += [f"  {draft.operation.name}:", f"    dataset: {draft.dataset}"]
        if not draft.request_map:
            lines.append("    # TODO(decide): no request element matched a record field; name the key element(s) here")
            lines.append(f"    request: {{{draft.operation.input.fields[0].name if draft.operation.input and draft.operation.input.fields else 'Key'}: {draft.key[0]}}}")
        else:
            lines.append(f"    request: {{{', '.join(f'{k}: {v}' for k, v in draft.request_map.items())}}}")
        lines += [f"    response: {draft.record_element}", "    fields:"]
        lines.extend(_mapping_lines(draft.fields, "      "))
    for feed in feeds:
        draft = served_feed(feed, drafts)
        if draft is None:
            lines.append(f"# TODO(decide): {feed.operation.name} is a change feed ({feed.since} -> repeated "
                         f"{feed.items}) whose records match no lookup above; it is not served here. Map it by hand "
                         "(kind: changes) or keep it on the old provider until retired.")
            continue
        lines += [f"  {feed.operation.name}:",
                  "    # TODO(decide): an old 'changed since' feed, answered from the store by the time each record",
                  "    # changed in the platform (for a replicated dataset: when sync applied it), not the register's",
                  "    # own time; deletions are not reported. A live dataset has nothing in the store: replicate it.",
                  f"    dataset: {draft.dataset}",
                  "    kind: changes",
                  f"    since: {feed.since}"]
        if feed.after_key:
            lines.append(f"    after_key: {feed.after_key}")
        if feed.page_size_element:
            lines.append(f"    page_size_element: {feed.page_size_element}")
        lines += ["    page_size: 100", f"    items: {feed.items}", f"    record: {feed.record}",
                  f"    changed_at: {feed.changed_at}"]
        if feed.more:
            lines.append(f"    more: {feed.more}")
        lines.append("    fields:")
        lines.extend(_mapping_lines(draft.fields, "      "))
    for skipped in skipped_ops:
        lines.append(f"# TODO(decide): not mapped: {skipped}")
    lines.append("")
    return "\n".join(lines)


def _copy_wsdl(inventory: WsdlInventory, target: Path) -> str:
    """Copy the WSDL and every local document it includes; return the WSDL's path relative to ``target``."""
    documents = [Path(d).resolve() for d in inventory.documents if "://" not in d]
    if not documents:
        raise ScaffoldError(f"{inventory.source}: the WSDL was read from the network; save it locally to scaffold")
    root = Path(os.path.commonpath([str(d.parent) for d in documents]))
    wsdl_dir = documents[0].parent
    base = wsdl_dir if all(d.is_relative_to(wsdl_dir) for d in documents) else root
    sub = target if base == wsdl_dir else target / documents[0].stem
    for doc in documents:
        destination = sub / doc.relative_to(base)
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(doc, destination)
    return str((sub / documents[0].relative_to(base)).relative_to(target))


def scaffold(inventory: WsdlInventory, out: str | Path, *, name: str | None = None, prefix: str | None = None,
             owner: str | None = None, access: str = "restricted", consumer: str | None = None,
             provider_url: str | None = None, mode: str = "live", force: bool = False,
             consumer_networks: tuple[str, ...] = ()) -> list[ScaffoldResult]:
    out = Path(out)
    results: list[ScaffoldResult] = []
    if name is not None and not CONTRACT_NAME.match(name):
        raise ScaffoldError(f"--name '{name}' cannot name a /legacy contract: use lower-case letters, digits, '-' "
                            "and '_' (at most 63)")
    if len(inventory.services) > 1 and name:
        raise ScaffoldError("--name applies to a WSDL with one service; this one has "
                            f"{len(inventory.services)}")
    for service in inventory.services:
        contract = name or contract_name(service)
        drafts, feeds, skipped_ops = draft_operations(service, prefix)
        if not drafts:
            raise ScaffoldError(f"{inventory.source}: service {service.name} has no operation that can be served as a "
                                "dataset lookup: " + "; ".join(skipped_ops + [f"{f.operation.name}: change feed"
                                                                              for f in feeds]))
        legacy_dir = out / "legacy"
        targets = [out / f"{d.dataset}.yaml" for d in drafts] + [legacy_dir / f"{contract}.yaml"]
        existing = [t for t in targets if t.exists()]
        if existing and not force:
            raise ScaffoldError(f"would overwrite {', '.join(str(t) for t in existing)} (use --force)")
        legacy_dir.mkdir(parents=True, exist_ok=True)
        wsdl_ref = _copy_wsdl(inventory, legacy_dir)
        files: list[Path] = []
        feed_for = {id(d): _feed_for(d, feeds) for d in drafts}
        manifest_wsdl = os.path.relpath(legacy_dir / wsdl_ref, out)
        for draft in drafts:
            path = out / f"{draft.dataset}.yaml"
            path.write_text(manifest_text(draft, service, inventory, contract, manifest_wsdl, owner, access,
                                          provider_url, mode, feed_for[id(draft)]), encoding="utf-8")
            files.append(path)
        mapping = legacy_dir / f"{contract}.yaml"
        mapping.write_text(contract_text(drafts, feeds, skipped_ops, service, inventory, wsdl_ref, contract, consumer,
                                         consumer_networks),
                           encoding="utf-8")
        files.append(mapping)
        todos = sum(p.read_text(encoding="utf-8").count("TODO(decide)") for p in files)
        results.append(ScaffoldResult(service_id(service.namespace, service.name), contract, files,
                                      [d.dataset for d in drafts],
                                      [(f.operation.name, served_feed(f, drafts) is not None) for f in feeds],
                                      skipped_ops, todos))
    return results


def served_feed(feed: ChangeFeed, drafts: list[DraftOperation]) -> DraftOperation | None:
    """The lookup whose dataset a change feed can be served from: same record element, same legacy elements."""
    if not feed.record or not feed.changed_at or feed.operation.output is None:
        return None
    for draft in drafts:
        if draft.record_element != feed.record:
            continue
        skipped: list[str] = []
        fields = _draft_fields(feed.operation.output, f"{feed.items}/{feed.record}", skipped)
        if _elements(fields) == _elements(draft.fields):
            return draft
    return None


def _elements(fields: list[DraftField]) -> list[tuple[str, object]]:
    return [(f.element, _elements(f.fields) if f.fields else f.type) for f in fields]


def _feed_for(draft: DraftOperation, feeds: list[ChangeFeed]) -> ChangeFeed | None:
    """The change feed carrying the same record element as this lookup, if any."""
    for feed in feeds:
        if feed.record == draft.record_element:
            return feed
    return None
