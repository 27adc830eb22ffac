"""A legacy service's operations drafted as datasets and contract-mapping operations (v2).

Operations whose records have the same shape share one dataset: the first lookup among them (a
single record found by top-level fields) gives the key; another operation finding one record by
other fields is a ``single`` search, one answering a repeated record (or a wrapper of them) a
search with paging; each non-key criterion becomes an entry of the manifest's ``indexes:``. A
change feed (a time in the request, repeated changes each carrying a record and its time) whose
record matches a dataset is its ``kind: changes`` operation. Operations that cannot be served
are listed with the reason (a type missing from the schemas names the operation and the type).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from viss_bridge.migration.drafting import (PERSON_CODE_NAMES, TIME_TYPES, TYPE_MAP, Content, DraftField, Node, Roles,
                                            content, field_at, match_criterion, page_sizes, result_values, roles,
                                            snake, tree)
from viss_bridge.migration.tracking import service_id
from viss_bridge.migration.wsdl import OperationInfo, ServiceInfo


@dataclass
class ChangeFeed:
    since: str
    after_key: str | None
    page_size_element: str | None
    items: str
    record: str
    changed_at: str
    more: str | None


@dataclass
class OperationDraft:
    op: OperationInfo
    kind: str  # lookup | search | changes
    record: Content  # the record level: fields and their mapping
    record_element: str  # lookup / single search: ``response``; search: ``items``; changes: ``record``
    roles: Roles | None = None
    wrapper: str | None = None
    single: bool = False
    criteria: dict[str, tuple[str, bool]] = field(default_factory=dict)  # request element -> (path, optional)
    unmatched: list[str] = field(default_factory=list)  # request elements naming no field
    feed: ChangeFeed | None = None
    notes: list[str] = field(default_factory=list)
    todos: list[tuple[str, str]] = field(default_factory=list)
    constants: dict[str, Any] = field(default_factory=dict)
    not_found: dict[str, Any] | None = None
    computed: dict[str, str] = field(default_factory=dict)
    paging: dict[str, Any] | None = None

    @property
    def signature(self) -> str:
        return json.dumps(self.record.mapping, sort_keys=True)

    @property
    def lookup_like(self) -> bool:
        """One record found by top-level fields only: it could give the dataset's key."""
        return (self.kind != "changes" and not self.wrapper and self.roles is not None and self.roles.item is None
                and bool(self.criteria) and all("." not in path and getattr(field_at(self.record.fields, path), "type", "")
                                                not in ("list", "object") for path, _ in self.criteria.values()))


@dataclass
class DatasetDraft:
    name: str
    record: Content
    key: list[str]
    operations: list[OperationDraft]
    indexes: list[str] = field(default_factory=list)
    subject: str | None = None
    subject_hint: str = ""
    todos: list[tuple[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def lookup(self) -> OperationDraft | None:
        return next((d for d in self.operations if d.kind == "lookup"), None)

    @property
    def feed(self) -> OperationDraft | None:
        return next((d for d in self.operations if d.kind == "changes"), None)


@dataclass
class ServiceDraft:
    service: ServiceInfo
    datasets: list[DatasetDraft]
    skipped: list[str]  # operations not mapped, with why
    unserved_feeds: list[str] = field(default_factory=list)  # change feeds whose records match no dataset


def change_feed(op: OperationInfo) -> tuple[ChangeFeed, Node] | None:
    """A "changed since" operation: a time in the request, repeated changes (record + time) in the response."""
    request, response = tree(op.input), tree(op.output)
    since = next((n for n in request if n.simple and n.row.xsd_type in TIME_TYPES and not n.row.repeated), None)
    items = next((n for n in response if n.row.complex and n.row.repeated), None)
    if since is None or items is None:
        return None
    record = next((c for c in items.elements if c.row.complex and not c.row.repeated), None)
    changed_at = next((c for c in items.elements if c.simple and c.row.xsd_type in TIME_TYPES), None)
    if record is None or changed_at is None:
        return None
    more = next((n for n in response if n.simple and n.row.xsd_type == "xs:boolean"), None)
    after = next((n for n in request if n is not since and n.simple and n.row.xsd_type == "xs:string"
                  and n.row.optional), None)
    page = next((n for n in request if n.simple and TYPE_MAP.get(n.row.xsd_type.removeprefix("xs:")) == "integer"),
                None)
    return ChangeFeed(since.name, after.name if after else None, page.name if page else None, items.name, record.name,
                      changed_at.name, more.name if more else None), record


def draft_operation(op: OperationInfo) -> OperationDraft | str:
    """The draft of one operation, or why it cannot be served from a dataset."""
    if op.problems:
        return f"{op.name}: cannot be read: {'; '.join(op.problems)}"
    if op.input is None or op.output is None:
        return f"{op.name}: one-way operation (no response): not a lookup"
    if op.style == "rpc":
        return f"{op.name}: rpc style; /legacy contracts serve document/literal operations only"
    found = change_feed(op)
    if found is not None:
        feed, record_node = found
        return OperationDraft(op, "changes", content(record_node.children, False), feed.record, feed=feed)
    r = roles(op)
    if r.record is None:
        what = ", ".join(n.name for n in r.structures) or "none"
        return f"{op.name}: the response has no single structure carrying a record (structures: {what})"
    item = r.item
    record_node = item if item is not None else r.record
    if not record_node.row.complex:
        return f"{op.name}: the record {record_node.name} is a value, not a structure"
    record = content(record_node.children, False)
    if not record.fields:
        return f"{op.name}: the record {record_node.name} has no fields"
    draft = OperationDraft(op, "search" if item is not None else "lookup", record, record_node.name, roles=r,
                           wrapper=r.record.name if item is not None and item is not r.record else None,
                           single=item is None)
    for node in r.criteria:
        path = match_criterion(node.name, record.fields) if node.simple else None
        if path is None:
            draft.unmatched.append(node.name)
            draft.notes.append(f"request element {node.name} names no field of the record; the bridge ignores it")
        else:
            draft.criteria[node.name] = (path, node.row.optional)
    _beside_the_record(draft, r, record_node)
    return draft


def _beside_the_record(draft: OperationDraft, r: Roles, record_node: Node) -> None:
    """Result codes, computed values, constants and paging: the response elements that are not the record."""
    draft.constants.update(r.constants)
    draft.computed.update(r.computed)
    record_required = not (r.record.row.optional if r.record is not None else True)
    name = record_node.name
    if r.result_codes:
        codes = {n.name: result_values(n) for n in r.result_codes}
        draft.constants.update({element: found for element, (found, _nf) in codes.items()})
        texts = {n.name: ("OK", f"{name} not found") for n in r.result_texts}
        draft.constants.update({element: found for element, (found, _nf) in texts.items()
                                if not any(n.name == element and n.row.optional for n in r.result_texts)})
        answer = {element: nf for element, (_f, nf) in codes.items()} | {e: nf for e, (_f, nf) in texts.items()}
        if draft.single and record_required:
            draft.not_found = {"fault": {"code": f"Client.{name}NotFound", "string": f"{name} not found"}}
            why = (f"the response requires {name}, so the old service answered 'not found' with a fault: its code "
                   "and text (guessed)")
        else:
            draft.not_found = {"answer": answer}
            why = (f"the result code of a found answer ({', '.join(f'{e}={v}' for e, (v, _) in codes.items())}) and "
                   f"of a not-found one ({', '.join(f'{e}={v}' for e, v in answer.items())}) are guesses"
                   + (" from the enumeration" if any(len(n.row.enum) >= 2 for n in r.result_codes) else "")
                   + (f"; {', '.join(n.name for n in r.result_texts)}: the text the old service sent"
                      if r.result_texts else ""))
            if not draft.single:
                why += "; or remove not_found if an empty search answered the found code"
        draft.todos.append(("not_found", why))
    elif draft.single and record_required:
        draft.not_found = {"fault": {"code": f"Client.{name}NotFound", "string": f"{name} not found"}}
        draft.todos.append(("not_found", f"the response requires {name}, so the old service answered 'not found' "
                                         "with a fault: its code and text (guessed)"))
    for node in r.uncarried:
        draft.notes.append(f"{node.row.path}: an attribute or wildcard of the response element itself; the mapping "
                           "carries the elements beside the record only, so it is not sent")
    for node in r.result_texts:
        if node.row.optional:
            draft.notes.append(f"{node.name}: optional; sent with the not-found answer only")
    if r.others:
        for node in r.others:
            if node.row.optional:
                draft.notes.append(f"{node.name}: an optional response element with no role; left out of answers")
            else:
                value = _placeholder(node)
                draft.constants[node.name] = value
                draft.todos.append(("value", f"{node.name} is required beside the record and has no role: the "
                                             f"constant {value!r} is a placeholder for the value the old service sent"))
    if not draft.single:
        default, maximum, notes = page_sizes(r.page_size)
        draft.notes.extend(notes)
        paging: dict[str, Any] = {}
        if r.cursor is not None:
            paging["cursor"] = r.cursor.name
            if r.cursor_out:
                paging["cursor_out"] = r.cursor_out
        elif r.page is not None:
            paging["page"] = r.page.name
        if r.page_size is not None:
            paging["page_size"] = r.page_size.name
        if paging:
            draft.paging = dict(paging, default_page_size=default, max_page_size=maximum)
    elif r.page or r.page_size or r.cursor:
        draft.notes.append("paging elements in the request of a single-record answer are ignored")


def _placeholder(node: Node) -> Any:
    kind = TYPE_MAP.get(node.row.xsd_type.removeprefix("xs:"), "string")
    return {"integer": 0, "decimal": 0, "boolean": False}.get(kind, "")


def _prefix(service: ServiceInfo) -> str:
    ident = service_id(service.namespace, service.name)
    first = ident.split("/")[0] if "/" in ident else ident
    return snake(first)[:20]


def draft_service(service: ServiceInfo, prefix: str | None = None) -> ServiceDraft:
    prefix = prefix if prefix is not None else _prefix(service)
    skipped: list[str] = []
    unserved: list[str] = []
    drafts: list[OperationDraft] = []
    for op in service.operations():
        draft = draft_operation(op)
        if isinstance(draft, str):
            skipped.append(draft)
        else:
            drafts.append(draft)
    groups: dict[str, list[OperationDraft]] = {}
    for draft in drafts:
        groups.setdefault(draft.signature, []).append(draft)
    datasets: list[DatasetDraft] = []
    names: set[str] = set()
    for members in groups.values():
        served = [d for d in members if d.kind != "changes"]
        if not served:
            for d in members:
                unserved.append(d.op.name)
                skipped.append(f"{d.op.name}: a change feed ({d.feed.since if d.feed else '?'} -> repeated "
                               f"{d.feed.items if d.feed else '?'}) whose records match no other operation; not served")
            continue
        dataset = _dataset(members, prefix, names, skipped)
        if dataset is not None:
            datasets.append(dataset)
    return ServiceDraft(service, datasets, skipped, unserved)


def _dataset(members: list[OperationDraft], prefix: str, names: set[str], skipped: list[str]) -> DatasetDraft | None:
    first = next(d for d in members if d.kind != "changes")
    record = first.record
    stem = snake(first.record_element)
    if stem in ("result", "response", "return", "data", "item", "record"):
        stem = snake(re.sub(r"^(Get|Find|get|find)", "", first.op.name))
    name = (f"{prefix}_{stem}" if prefix else stem)[:63]
    while name in names:
        name = f"{name[:55]}_{snake(first.op.name)}"[:63]
    names.add(name)
    dataset = DatasetDraft(name, record, [], [])
    keyed = next((d for d in members if d.lookup_like), None)
    if keyed is not None:
        dataset.key = list(dict.fromkeys(path for path, _ in keyed.criteria.values()))
    else:
        scalars = [f for f in record.fields if f.fields is None and f.type not in ("list",) and not f.nillable]
        guess = next((f for f in scalars if f.required and f.type == "string"), scalars[0] if scalars else None)
        if guess is None:
            skipped.extend(f"{d.op.name}: no top-level value could serve as the key" for d in members)
            return None
        dataset.key = [guess.name]
        dataset.todos.append(("key", f"no operation looks a record up by top-level values; '{guess.name}' (the first "
                                     "required text field) is a guess: the register's identifier"))
    for name_ in dataset.key:
        f = field_at(record.fields, name_)
        if f is not None:
            f.required, f.nillable = True, False
    for draft in members:
        if draft.kind == "changes":
            dataset.operations.append(draft)
            continue
        paths = {path for path, _ in draft.criteria.values()}
        if draft.lookup_like and paths == set(dataset.key):
            draft.kind = "lookup"
        else:
            draft.kind = "search"
            if not draft.criteria:
                skipped.append(f"{draft.op.name}: a search without any request element naming a field")
                continue
            for path, _optional in draft.criteria.values():  # in the request's order
                if path not in dataset.key and path not in dataset.indexes:
                    dataset.indexes.append(path)
        dataset.operations.append(draft)
    _subject(dataset)
    return dataset


def _subject(dataset: DatasetDraft) -> None:
    """The field holding the data subject's personal code: a top-level text field named or typed as one."""
    for f in dataset.record.fields:
        if f.type == "string" and (f.name in PERSON_CODE_NAMES or re.search(r"person(al)?_?code", snake(f.legacy_type))
                                   or f.name.endswith("person_code")):
            dataset.subject = f.name
            dataset.subject_hint = (f"'{f.name}' looks like a personal code (" +
                                    (f"type {f.legacy_type}" if f.legacy_type else "its name") + ")")
            return
    nested = [path for path, f in _paths(dataset.record.fields) if "." in path and
              (f.name in PERSON_CODE_NAMES or re.search(r"person(al)?_?code", snake(f.legacy_type)))]
    if nested:
        dataset.subject_hint = (f"records hold personal codes at {', '.join(nested)}; the subject is one top-level "
                                "field")


def _paths(fields: list[DraftField], prefix: str = "") -> list[tuple[str, DraftField]]:
    result: list[tuple[str, DraftField]] = []
    for f in fields:
        if f.fields is not None:
            result.extend(_paths(f.fields, f"{prefix}{f.name}{'[]' if f.type == 'list' else ''}."))
        else:
            result.append((f"{prefix}{f.name}", f))
    return result
