"""``migrate scaffold``: draft dataset manifests and a draft contract mapping (v2) from a WSDL.

For a legacy service the scaffold writes

* ``<out>/<dataset>.yaml`` per dataset (operations whose records have one shape share one): fields
  and types from the record's XSD type at every depth (objects, lists of objects, lists of values,
  attributes, simple content, enumerations, nillable values), the key, and ``indexes:`` for every
  search criterion that is not the key;
* ``<out>/legacy/<name>.yaml``: the contract mapping ``/legacy/<name>`` serves (lookups, searches
  with paging and computed totals, change feeds; result codes as ``constants`` and ``not_found``),
  next to a copy of the WSDL and the schemas it imports and includes.

Nothing of a response is left out: every element and attribute is a field or a constant; what
cannot be carried (a wildcard, a recursive type) is a ``# NOTE`` naming it. ``# TODO(decide):
<category>: ...`` marks, on the line right below it, what only a person can decide: names, owner,
access, subject, a guessed key, the not-found answer, an unknown constant. The drafts are valid
as they are: ``catalog validate`` passes and a bridge serves them.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from viss_bridge.migration.drafting import DraftField, snake
from viss_bridge.migration.service_draft import DatasetDraft, OperationDraft, ServiceDraft, draft_service
from viss_bridge.migration.tracking import service_id
from viss_bridge.migration.wsdl import ServiceInfo, WsdlInventory

__all__ = ["CONTRACT_NAME", "ScaffoldError", "ScaffoldResult", "TODO_CATEGORIES", "contract_name", "scaffold", "snake"]

CONTRACT_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")  # what /legacy/<name> accepts
TODO_CATEGORIES = ("name", "owner", "access", "subject", "key", "not_found", "value")
TODO = "# TODO(decide): "


class ScaffoldError(ValueError):
    pass


@dataclass
class ScaffoldResult:
    service: str
    contract: str
    files: list[Path]
    datasets: list[str]
    changes: list[tuple[str, bool]]  # change-feed operations, and whether the mapping serves them
    skipped_operations: list[str]
    todo_count: int
    searches: list[str]  # search operations, with their criteria


def _q(value: Any) -> str:
    """A YAML scalar: JSON strings, numbers and booleans are valid YAML."""
    return json.dumps(value, ensure_ascii=False)


def _todo(category: str, text: str) -> str:
    assert category in TODO_CATEGORIES, category
    return f"{TODO}{category}: {text}"


def contract_name(service: ServiceInfo) -> str:
    """The ``/legacy/<name>`` a scaffolded contract is served at: ``pmlp-fizpersonas-v1-0``."""
    ident = service_id(service.namespace, service.name)
    name = re.sub(r"[^a-z0-9_-]+", "-", ident.lower()).strip("-")
    return (name or "legacy")[:63]


# -- manifests ----------------------------------------------------------------------------------

def _field_lines(fields: list[DraftField], indent: str) -> list[str]:
    lines: list[str] = []
    for f in fields:
        for category, text in f.todos:
            lines.append(f"{indent}{_todo(category, text)}")
        facts = [f"name: {f.name}", f"type: {f.type}", f"required: {'true' if f.required else 'false'}"]
        if f.items:
            facts.append(f"items: {f.items}")
        if f.nillable:
            facts.append("nillable: true")
        if f.max_length is not None:
            facts.append(f"max_length: {f.max_length}")
        if f.enum:
            facts.append("enum: [" + ", ".join(_q(v) for v in f.enum) + "]")
        if f.xml:
            facts.append(f"xml: {f.xml}")
        if f.fields is None:
            lines.append(f"{indent}- {{{', '.join(facts)}, description: {_q(f.description)}}}")
            continue
        lines.append(f"{indent}- {facts[0]}")
        lines.extend(f"{indent}  {fact}" for fact in facts[1:])
        lines.append(f"{indent}  description: {_q(f.description)}")
        lines.append(f"{indent}  fields:")
        lines.extend(_field_lines(f.fields, indent + "    "))
    return lines


def _key(text: str) -> str:
    return _q(text) if text[0] in "@#" else text


def _path(text: str) -> str:
    return _q(text) if "[" in text else text


def mapping_lines(mapping: dict[str, Any], indent: str) -> list[str]:
    """A v2 ``fields:`` mapping as YAML (blocks for nested elements, flow for constants)."""
    lines: list[str] = []
    for key, target in mapping.items():
        if isinstance(target, str):
            lines.append(f"{indent}{_key(key)}: {_path(target)}")
        elif "constant" in target:
            lines.append(f"{indent}{_key(key)}: {{constant: {_q(target['constant'])}}}")
        else:
            lines.append(f"{indent}{_key(key)}:")
            if target.get("field"):
                lines.append(f"{indent}  field: {target['field']}")
            if target.get("item"):
                lines.append(f"{indent}  item: {target['item']}")
            if target.get("fields"):
                lines.append(f"{indent}  fields:")
                lines.extend(mapping_lines(target["fields"], indent + "    "))
    return lines


def manifest_text(dataset: DatasetDraft, service: ServiceInfo, inventory: WsdlInventory, contract: str,
                  wsdl_ref: str, owner: str | None, access: str, provider_url: str | None, mode: str) -> str:
    ident = service_id(service.namespace, service.name)
    ops = ", ".join(d.op.name for d in dataset.operations)
    lines = [
        "# DRAFT dataset manifest scaffolded by `viss-bridge migrate scaffold` from",
        f"#   {Path(inventory.source).name}: service {service.name}, operation(s) {ops}.",
        "# It loads and serves as it is. Each TODO(decide) is about the line right below it.",
        _todo("name", "the dataset's name (also its X-Road serviceCode). Field names are the legacy element "
                      "names in snake_case: rename a field here and in the contract mapping together."),
        f"dataset: {dataset.name}",
        "version: v1",
        _todo("name", "Latvian and English titles for the catalog."),
        f"title: {{lv: {_q(f'{service.name} ({ident})')}, en: {_q(f'{service.name} ({ident})')}}}",
        f"description: {{lv: {_q(f'Pārnests no VISS servisa {ident} ({ops}).')}, "
        f"en: {_q(f'Migrated from the generation-II service {ident} ({ops}).')}}}",
    ]
    if owner:
        lines.append(f"owner: {owner}")
    else:
        inst = ident.split("/")[0].upper() if "/" in ident else "LEGACY"
        inst = re.sub(r"[^A-Za-z0-9-]", "-", inst) or "LEGACY"
        lines += [_todo("owner", "the data owner's X-Road member and subsystem (placeholder registration number)."),
                  f"owner: LV/GOV/00000000000/{inst}"]
    for category, text in dataset.todos:
        lines.append(_todo(category, text))
    lookup = dataset.lookup
    if lookup is not None:
        matched = ", ".join(f"{element} -> {path}" for element, (path, _) in lookup.criteria.items())
        lines.append(f"# key: the request of {lookup.op.name} ({matched})")
    lines.append(f"key: [{', '.join(dataset.key)}]")
    if dataset.indexes:
        searches = ", ".join(d.op.name for d in dataset.operations if d.kind == "search")
        lines.append(f"indexes:  # the criteria of {searches}")
        lines.extend(f"  - {_path(path)}" for path in dataset.indexes)
    if dataset.subject:
        lines += [_todo("subject", f"{dataset.subject_hint}, so it is taken as the data subject (data tracker, "
                                   "restrictions); remove the line if records are not about persons."),
                  f"subject: {dataset.subject}"]
    else:
        hint = f" ({dataset.subject_hint})" if dataset.subject_hint else ""
        lines += [_todo("subject", f"if records are personal data, the top-level field holding the person's "
                                   f"code{hint}."),
                  "# subject: <field>"]
    lines += [_todo("access", "open | public | restricted | private (drafts default to restricted)."),
              f"access: {access}", "fields:"]
    lines.extend(_field_lines(dataset.record.fields, "  "))
    notes = list(dict.fromkeys(dataset.record.notes + dataset.notes))
    lines.extend(f"# NOTE: {note}" for note in notes)
    lines.append("source:")
    if provider_url and lookup is not None:
        lines += _source_lines(dataset, lookup, contract, wsdl_ref, provider_url, mode)
    else:
        lines += ["  # store: records replicated into the platform (`catalog load`, or `sync` from a legacy_soap",
                  "  # source: scaffold with --provider-url URL --mode replicated).",
                  "  kind: store"]
    lines.append("legacy:")
    lines.extend(f"  - {{dialect: legacy, service: {contract}/{d.op.name}}}" for d in dataset.operations)
    lines.append("")
    return "\n".join(lines)


def _source_lines(dataset: DatasetDraft, lookup: OperationDraft, contract: str, wsdl_ref: str, provider_url: str,
                  mode: str) -> list[str]:
    lines = ["  # Answered by the legacy provider through zeep: live (every lookup calls it) or replicated",
             "  # (`viss-bridge sync` copies its records into the store through the changes section).",
             "  kind: legacy_soap",
             f"  mode: {mode}",
             f"  provider: {contract}",
             f"  wsdl: {wsdl_ref}",
             f"  address: {provider_url}",
             "  lookup:",
             f"    operation: {lookup.op.name}",
             "    request: {" + ", ".join(f"{e}: {p}" for e, (p, _) in lookup.criteria.items()) + "}",
             f"    result: {lookup.record_element}"]
    feed = dataset.feed
    if feed is not None and feed.feed is not None:
        f = feed.feed
        lines += ["  changes:", f"    operation: {feed.op.name}", f"    since: {f.since}"]
        if f.after_key:
            lines.append(f"    after_key: {f.after_key}")
        if f.page_size_element:
            lines += [f"    page_size_element: {f.page_size_element}", "    page_size: 200"]
        lines += [f"    items: {f.items}", f"    record: {f.record}", f"    changed_at: {f.changed_at}"]
        if f.more:
            lines.append(f"    more: {f.more}")
    lines.append("  fields:")
    lines.extend(mapping_lines(dataset.record.mapping, "    "))
    lines += ["  timeouts: {connect: 3, operation: 10}", "  retries: {attempts: 3, backoff: 0.2}",
              "  breaker: {failures: 5, reset_after: 30}"]
    return lines


# -- the contract mapping -------------------------------------------------------------------------

def _flow(values: dict[str, Any]) -> str:
    parts = []
    for key, value in values.items():
        parts.append(f"{key}: {_flow(value) if isinstance(value, dict) else _q(value)}")
    return "{" + ", ".join(parts) + "}"


def _operation_lines(draft: OperationDraft, dataset: DatasetDraft) -> list[str]:
    lines = [f"  {draft.op.name}:", f"    dataset: {dataset.name}"]
    for note in draft.notes:
        lines.append(f"    # NOTE: {note}")
    if draft.kind == "changes" and draft.feed is not None:
        f = draft.feed
        lines += ["    # NOTE: an old 'changed since' feed, answered from the store by the time each record changed in",
                  "    # the platform (for a replicated dataset: when sync applied it), not the register's own time;",
                  "    # deletions are not reported. A live dataset has nothing in the store: replicate it.",
                  "    kind: changes", f"    since: {f.since}"]
        if f.after_key:
            lines.append(f"    after_key: {f.after_key}")
        if f.page_size_element:
            lines.append(f"    page_size_element: {f.page_size_element}")
        lines += ["    page_size: 100", f"    items: {f.items}", f"    record: {f.record}", f"    changed_at: {f.changed_at}"]
        if f.more:
            lines.append(f"    more: {f.more}")
    else:
        if draft.kind == "search":
            lines.append("    kind: search")
        request = []
        for element, (path, optional) in draft.criteria.items():
            request.append(f"{element}: {{field: {path}, optional: true}}" if optional else f"{element}: {_path(path)}")
        lines.append("    request: {" + ", ".join(request) + "}")
        if draft.single:
            if draft.kind == "search":
                lines.append("    single: true")
            lines.append(f"    response: {draft.record_element}")
        else:
            if draft.paging:
                lines.append(f"    paging: {_flow(draft.paging)}")
            if draft.wrapper:
                lines.append(f"    wrapper: {draft.wrapper}")
            lines.append(f"    items: {draft.record_element}")
        if draft.computed:
            lines.append("    computed: {" + ", ".join(f"{e}: {v}" for e, v in draft.computed.items()) + "}")
        todos = dict(draft.todos)
        if "value" in todos:
            lines.append(f"    {_todo('value', todos['value'])}")
        if draft.constants:
            lines.append(f"    constants: {_flow(draft.constants)}")
        if draft.not_found is not None:
            lines.append(f"    {_todo('not_found', todos.get('not_found', 'what the old service answered'))}")
            lines.append(f"    not_found: {_flow(draft.not_found)}")
    lines.append("    fields:")
    lines.extend(mapping_lines(draft.record.mapping, "      "))
    return lines


def contract_text(draft: ServiceDraft, inventory: WsdlInventory, wsdl_ref: str, contract: str, consumer: str | None,
                  consumer_networks: tuple[str, ...] = ()) -> str:
    service = draft.service
    ident = service_id(service.namespace, service.name)
    lines = [
        f"# DRAFT contract mapping scaffolded by `viss-bridge migrate scaffold` from {Path(inventory.source).name}",
        f"# (service {service.name}, {ident}). Served at /legacy/{contract} with the original WSDL:",
        "# old consumers change only their endpoint address. Each TODO(decide) is about the line right below it.",
        f"wsdl: {wsdl_ref}",
    ]
    if consumer:
        lines += ["# Old callers send no identity of their own; this one is checked against the datasets' permissions,",
                  "# for callers that authenticate as it, or that call from consumer_networks (docs/legacy.md).",
                  f"consumer: {consumer}"]
        if consumer_networks:
            lines.append("consumer_networks: [" + ", ".join(f'"{n}"' for n in consumer_networks) + "]")
        else:
            lines += [_todo("access", "the old clients' networks whose unauthenticated calls stand for the consumer; "
                                      "without it only callers authenticated as the consumer are served as it."),
                      "# consumer_networks: [10.0.0.0/24]"]
    else:
        lines += [_todo("access", "the identity old callers get for permission checks (register and grant it with "
                                  "`viss-bridge clients add/grant`); without it only open datasets are served."),
                  "# consumer: LV/GOV/<member code>/<subsystem>"]
    lines.append("operations:")
    by_op = {d.op.name: (d, ds) for ds in draft.datasets for d in ds.operations}
    for op in service.operations():
        if op.name in by_op:
            lines.extend(_operation_lines(*by_op[op.name]))
    for skipped in draft.skipped:
        lines.append(f"# NOTE: not mapped: {skipped}")
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
        draft = draft_service(service, prefix)
        if not draft.datasets:
            raise ScaffoldError(f"{inventory.source}: service {service.name} has no operation that can be served from "
                                "a dataset: " + "; ".join(draft.skipped))
        legacy_dir = out / "legacy"
        targets = [out / f"{d.name}.yaml" for d in draft.datasets] + [legacy_dir / f"{contract}.yaml"]
        existing = [t for t in targets if t.exists()]
        if existing and not force:
            raise ScaffoldError(f"would overwrite {', '.join(str(t) for t in existing)} (use --force)")
        legacy_dir.mkdir(parents=True, exist_ok=True)
        wsdl_ref = _copy_wsdl(inventory, legacy_dir)
        files: list[Path] = []
        manifest_wsdl = os.path.relpath(legacy_dir / wsdl_ref, out)
        for dataset in draft.datasets:
            path = out / f"{dataset.name}.yaml"
            path.write_text(manifest_text(dataset, service, inventory, contract, manifest_wsdl, owner, access,
                                          provider_url, mode), encoding="utf-8")
            files.append(path)
        mapping = legacy_dir / f"{contract}.yaml"
        mapping.write_text(contract_text(draft, inventory, wsdl_ref, contract, consumer, consumer_networks),
                           encoding="utf-8")
        files.append(mapping)
        todos = sum(p.read_text(encoding="utf-8").count("TODO(decide)") for p in files)
        operations = [d for ds in draft.datasets for d in ds.operations]
        results.append(ScaffoldResult(
            service_id(service.namespace, service.name), contract, files, [d.name for d in draft.datasets],
            [(d.op.name, True) for d in operations if d.kind == "changes"] + [(n, False) for n in draft.unserved_feeds],
            [s for s in draft.skipped if s.split(":")[0] not in draft.unserved_feeds], todos,
            [f"{d.op.name} ({', '.join(f'{e} -> {p}' for e, (p, _) in d.criteria.items())})"
             for d in operations if d.kind == "search"]))
    return results
