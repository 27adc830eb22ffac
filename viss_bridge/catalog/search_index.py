"""The search index in SQL: one table of (dataset, path, value, record_key) entries, and the queries.

Kept in step by every write of :class:`~viss_bridge.catalog.store.DatasetStore` (upsert, delete,
replace_all; sync jobs and loads use those), in the same transaction as the records, so a reader
never sees a record without its entries. ``dataset_index_defs`` remembers, per dataset, the
fingerprint of the index definition the entries were built for
(:func:`~viss_bridge.catalog.search.fingerprint`): publishing a catalog compares fingerprints (one
query for all datasets) and rebuilds only a dataset whose ``indexes:`` (or subject) changed.

A search is a range of the unique index (dataset, path, value, record_key): already in record-key
order, so a page is the first ``n`` entries after an offset or after the cursor's key (keyset), and
the total is a count over the same range. Withheld persons' records are left out with a NOT EXISTS
on the subject's internal entry, so neither a page nor the total reveals them.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any, Iterable, Sequence

from sqlalchemy import (Column, DateTime, Index, Integer, MetaData, String, Table, Text, and_, bindparam, delete, exists,
                        func, insert, select)
from sqlalchemy.engine import Connection
from sqlalchemy.sql import Select

from viss_bridge.catalog.manifest import Dataset
from viss_bridge.catalog.search import (SUBJECT_PATH, SearchProblem, SearchRequest, criterion_text, decode_cursor,
                                        encode_cursor, fingerprint, index_entries, search_paths)
from viss_bridge.catalog.values import ValueProblem, compose_key, record_to_python

index_metadata = MetaData()

# Values are compared on their first VALUE_CHARS characters (a b-tree entry has a size limit on PostgreSQL).
VALUE_CHARS = 500

dataset_index = Table(
    "dataset_index",
    index_metadata,
    Column("dataset", String(64), nullable=False),
    Column("path", String(255), nullable=False),
    Column("value", Text, nullable=False),
    Column("record_key", String(512), nullable=False),
    Index("ux_dataset_index", "dataset", "path", "value", "record_key", unique=True),
    Index("ix_dataset_index_record", "dataset", "record_key"),
)

index_defs = Table(
    "dataset_index_defs",
    index_metadata,
    Column("dataset", String(64), primary_key=True),
    Column("fingerprint", String(64), nullable=False),
    Column("built_at", DateTime(timezone=True), nullable=False),
)

_CHUNK = 500


def entry_rows(dataset: Dataset, record_key: str, record: dict[str, Any]) -> list[dict[str, Any]]:
    pairs = dict.fromkeys((path, value[:VALUE_CHARS]) for path, value in index_entries(dataset, record))
    return [{"dataset": dataset.dataset, "path": path, "value": value, "record_key": record_key}
            for path, value in pairs]


def stored_fingerprint(conn: Connection, name: str) -> str | None:
    return conn.execute(select(index_defs.c.fingerprint).where(index_defs.c.dataset == name)).scalar_one_or_none()


def stored_fingerprints(conn: Connection) -> dict[str, str]:
    return {row.dataset: row.fingerprint for row in conn.execute(select(index_defs.c.dataset, index_defs.c.fingerprint))}


def _mark(conn: Connection, dataset: Dataset) -> None:
    conn.execute(delete(index_defs).where(index_defs.c.dataset == dataset.dataset))
    if search_paths(dataset):
        conn.execute(insert(index_defs).values(dataset=dataset.dataset, fingerprint=fingerprint(dataset),
                                               built_at=dt.datetime.now(dt.timezone.utc)))


def needs_rebuild(dataset: Dataset, stored: str | None) -> bool:
    """Whether the entries stored for ``dataset`` were built for another definition."""
    if not search_paths(dataset):
        return stored is not None  # indexes removed: the old entries go
    return stored != fingerprint(dataset)


def rebuild(conn: Connection, dataset: Dataset, records: Table, batch: int = 5000) -> int:
    """Drop and recompute every entry of ``dataset`` from its live records; returns the entries written."""
    conn.execute(delete(dataset_index).where(dataset_index.c.dataset == dataset.dataset))
    written = 0
    if search_paths(dataset):
        after = None
        while True:  # key-ordered batches: no cursor stays open while the entries are inserted
            query = (select(records.c.record_key, records.c.data)
                     .where(records.c.dataset == dataset.dataset, records.c.deleted.is_(False))
                     .order_by(records.c.record_key).limit(batch))
            rows = conn.execute(query if after is None else query.where(records.c.record_key > after)).all()
            if not rows:
                break
            after = rows[-1].record_key
            chunk: list[dict[str, Any]] = []
            for row in rows:
                try:
                    record = record_to_python(dataset.fields, json.loads(row.data))
                except ValueProblem:  # a record the manifest no longer describes cannot be found by its values
                    continue
                chunk.extend(entry_rows(dataset, row.record_key, record))
            write_entries(conn, chunk)
            written += len(chunk)
    _mark(conn, dataset)
    return written


def drop_entries(conn: Connection, dataset: Dataset | str, keys: Sequence[str] | None = None) -> None:
    """Delete the entries of these record keys (all of the dataset's when ``keys`` is None)."""
    name = dataset if isinstance(dataset, str) else dataset.dataset
    if keys is None:
        conn.execute(delete(dataset_index).where(dataset_index.c.dataset == name))
        return
    for start in range(0, len(keys), _CHUNK):
        conn.execute(delete(dataset_index).where(dataset_index.c.dataset == name,
                                                 dataset_index.c.record_key.in_(keys[start:start + _CHUNK])))


def write_entries(conn: Connection, rows: list[dict[str, Any]]) -> None:
    if rows:
        conn.execute(insert(dataset_index), rows)


def after_write(conn: Connection, dataset: Dataset, records: Table, written: list[tuple[str, dict[str, Any]]],
                replaced: bool) -> None:
    """Bring the entries in step with records just written in this transaction.

    ``written``: (record key, record) pairs; ``replaced``: the dataset's records were all replaced.
    With entries built for another definition (or none yet), the whole dataset is rebuilt once,
    so a dataset's entries always match one definition.
    """
    stored = stored_fingerprint(conn, dataset.dataset)
    if not search_paths(dataset):
        if stored is not None:
            drop_entries(conn, dataset)
            _mark(conn, dataset)
        return
    if stored != fingerprint(dataset) and not replaced:
        rebuild(conn, dataset, records)
        return
    if replaced:
        drop_entries(conn, dataset)
    else:
        drop_entries(conn, dataset, [key for key, _ in written])
    rows: list[dict[str, Any]] = []
    for key, record in written:
        rows.extend(entry_rows(dataset, key, record))
        if len(rows) >= 5000:
            write_entries(conn, rows)
            rows = []
    write_entries(conn, rows)
    if stored != fingerprint(dataset):
        _mark(conn, dataset)


# -- searching ---------------------------------------------------------------------------------------

def criteria_of(dataset: Dataset, criteria: dict[str, Any]) -> tuple[str | None, list[tuple[str, str]]]:
    """(record key the criteria fix, or None; [(index path, value text)]), or SearchProblem naming the field.

    A criterion names an index path or a key field; a composite key's parts count only all together
    (or where the manifest indexes a part).
    """
    if not dataset.indexes:
        raise SearchProblem(f"{dataset.dataset} declares no indexes: it is looked up by key, not searched")
    if not criteria:
        raise SearchProblem("a search needs at least one criterion")
    key_parts = {name: value for name, value in criteria.items() if name in dataset.key and name not in dataset.indexes}
    indexed: list[tuple[str, str]] = []
    for name, value in criteria.items():
        if name in key_parts:
            continue
        if name not in dataset.indexes:
            searchable = ", ".join(sorted(set(dataset.indexes) | set(dataset.key)))
            raise SearchProblem(f"'{name}' is not indexed in {dataset.dataset}; it is searched by {searchable}")
        indexed.append((name, criterion_text(dataset, name, value)))
    key = None
    if key_parts:
        missing = [k for k in dataset.key if k not in key_parts]
        if missing:
            raise SearchProblem(f"'{next(iter(key_parts))}' is part of the key of {dataset.dataset}; search by the "
                                f"whole key ({', '.join(dataset.key)}) or by an index")
        try:
            key = compose_key(dataset.key_fields, key_parts)
        except ValueProblem as exc:
            raise SearchProblem(str(exc)) from None
    return key, indexed


_Shape = tuple[Any, ...]
# Statements by shape (dataset, criteria paths, key or not, paging kind, exclusion): built once, then run with
# new parameters, so a search costs no statement building or cache-key work (see benchmarks/RESULTS.md).
_statements: dict[_Shape, tuple[Select[Any], Select[Any]]] = {}
_STATEMENTS_MAX = 4096


def _build(dataset: Dataset, records: Table, paths: tuple[str, ...], has_key: bool, paging: str,
           exclude: Any) -> tuple[Select[Any], Select[Any]]:
    """(the page query: record_key, data, total; the total alone, for a page past the end) of one shape."""
    name: Any = bindparam("dataset_name", dataset.dataset)
    count_conditions: list[Any] = []
    if paths:
        first = dataset_index.alias("i0")
        counted: Any = first
        key_column = first.c.record_key
        count_conditions += [first.c.dataset == name, first.c.path == paths[0], first.c.value == bindparam("v0")]
        for number, path in enumerate(paths[1:], start=1):
            other = dataset_index.alias(f"i{number}")
            counted = counted.join(other, and_(other.c.dataset == name, other.c.record_key == first.c.record_key,
                                               other.c.path == path, other.c.value == bindparam(f"v{number}")))
        joined = counted.join(records, and_(records.c.dataset == first.c.dataset,
                                            records.c.record_key == first.c.record_key))
        page_conditions = [records.c.deleted.is_(False)]
    else:
        counted = joined = records
        key_column = records.c.record_key
        count_conditions += [records.c.dataset == name, records.c.deleted.is_(False)]
        page_conditions = []
    if has_key:
        count_conditions.append(key_column == bindparam("key"))
    if exclude is not None:
        persons: Any = exclude if isinstance(exclude, Select) else bindparam("persons", expanding=True)
        subject = dataset_index.alias("subject")
        # ``value || ''``: the subject entry is found by its record key (one probe of ix_dataset_index_record),
        # then its value tested against the restricted persons; compared bare, SQLite probes the value index once
        # per restricted person for every candidate record (40x slower with 1,000 restrictions).
        count_conditions.append(~exists().where(subject.c.dataset == name, subject.c.path == SUBJECT_PATH,
                                                subject.c.record_key == key_column,
                                                subject.c.value.concat("").in_(persons)))
    # The total counts index entries only (kept in step with the records in every write transaction).
    total = select(func.count()).select_from(counted).where(*count_conditions)
    page = (select(records.c.record_key, records.c.data, total.scalar_subquery().label("total"))
            .select_from(joined).where(*count_conditions, *page_conditions))
    if paging == "cursor":
        page = page.where(key_column > bindparam("after"))
    elif paging == "page":
        page = page.offset(bindparam("offset", type_=Integer))
    return page.order_by(key_column).limit(bindparam("limit", type_=Integer)), total


def search_statement(dataset: Dataset, records: Table, request: SearchRequest,
                     exclude_subjects: Select[Any] | Iterable[str] | None) -> tuple[Select[Any], Select[Any], dict[str, Any]]:
    """(page query, total query, parameters) for ``request``; SearchProblem for a criterion the dataset lacks."""
    key, indexed = criteria_of(dataset, request.criteria)
    params: dict[str, Any] = {f"v{number}": value[:VALUE_CHARS] for number, (_, value) in enumerate(indexed)}
    params["limit"] = request.page_size + 1
    params["dataset_name"] = dataset.dataset
    exclude: Any = None
    if exclude_subjects is not None and dataset.subject:
        if isinstance(exclude_subjects, Select):
            exclude = exclude_subjects  # the restriction register's select (a policy hands out one per register)
        else:
            params["persons"] = list(exclude_subjects)
            exclude = "list" if params["persons"] else None
    if key is not None:
        params["key"] = key
    if request.cursor is not None:
        paging = "cursor"
        params["after"] = decode_cursor(request.cursor)
    elif request.page is not None and request.page > 1:
        paging = "page"
        params["offset"] = (request.page - 1) * request.page_size
    else:
        paging = "first"
    paths = tuple(path for path, _ in indexed)
    shape = (dataset.dataset, paths, key is not None, paging, exclude)
    built = _statements.get(shape)
    if built is None:
        if len(_statements) >= _STATEMENTS_MAX:
            _statements.clear()
        built = _statements[shape] = _build(dataset, records, paths, key is not None, paging, exclude)
    return built[0], built[1], params


def next_cursor(keys: list[str], page_size: int) -> str | None:
    """The cursor after this page's last key, None when the page (read with one extra row) is the last."""
    return encode_cursor(keys[page_size - 1]) if len(keys) > page_size else None
