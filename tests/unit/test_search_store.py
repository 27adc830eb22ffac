"""Searches in the dataset store, on SQLite files and PostgreSQL: index entries kept in step by every
write path, list and object paths, both kinds of paging in a stable order, totals that leave out
excluded persons, manifest errors with file and line, and rebuilding when a manifest's indexes change."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any, Iterator

import pytest
from sqlalchemy import func, select

from viss_bridge.catalog.manifest import ManifestError, parse_manifest
from viss_bridge.catalog.search import SearchProblem, SearchRequest, index_values, subject_key
from viss_bridge.catalog.search_index import dataset_index
from viss_bridge.catalog.store import DatasetStore
from viss_bridge.db import make_engine

MANIFEST = """\
dataset: vehicles
title: {lv: "Transportlīdzekļi", en: "Vehicles"}
owner: LV/GOV/90000000001/T
key: [plate]
subject: holder
fields:
  - {name: plate, type: string}
  - {name: vin, type: string}
  - {name: holder, type: string}
  - {name: registered, type: date}
  - name: technical
    type: object
    fields:
      - {name: fuel, type: string}
      - {name: mass, type: decimal}
  - name: owners
    type: list
    fields:
      - {name: person_code, type: string}
      - name: contacts
        type: list
        fields: [{name: value, type: string}]
  - {name: previous_plates, type: list, items: string}
indexes:
  - vin
  - technical.fuel
  - technical.mass
  - registered
  - owners[].person_code
  - owners[].contacts[].value
  - previous_plates[]
"""


def vehicle(number: int, *owners: str, fuel: str = "petrol", holder: str | None = None) -> dict[str, Any]:
    return {"plate": f"AB{number:04d}", "vin": f"VIN{number:014d}", "holder": holder or (owners[0] if owners else None),
            "registered": dt.date(2020, 1, 1) + dt.timedelta(days=number),
            "technical": {"fuel": fuel, "mass": f"{1000 + number}.50"},
            "owners": [{"person_code": o, "contacts": [{"value": f"{o}@example.lv"}]} for o in owners],
            "previous_plates": [f"OLD{number}"]}


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[DatasetStore]:
    url = request.getfixturevalue("pg_database") if request.param == "postgresql" else f"sqlite:///{tmp_path / 's.sqlite'}"
    engine = make_engine(url)
    store = DatasetStore(engine)
    store.create_schema()
    try:
        yield store
    finally:
        engine.dispose()


@pytest.fixture()
def dataset():  # type: ignore[no-untyped-def]
    return parse_manifest(MANIFEST, "vehicles.yaml")


def plates(store: DatasetStore, dataset: Any, criteria: dict[str, Any], size: int = 50, **paging: Any) -> list[str]:
    return [r["plate"] for r in store.search(dataset, SearchRequest(criteria, page_size=size, **paging)).records]


def entries(store: DatasetStore) -> int:
    with store.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(dataset_index)).scalar_one())


def test_every_write_path_keeps_the_index_in_step(store: DatasetStore, dataset: Any) -> None:
    store.upsert(dataset, [vehicle(1, "010190-10001"), vehicle(2, "010190-10001", "020290-10002")])
    assert plates(store, dataset, {"owners[].person_code": "010190-10001"}) == ["AB0001", "AB0002"]
    # upsert replacing a record: its old values no longer find it, its new ones do
    store.upsert(dataset, [vehicle(2, "030390-10003", fuel="diesel")])
    assert plates(store, dataset, {"owners[].person_code": "010190-10001"}) == ["AB0001"]
    assert plates(store, dataset, {"owners[].person_code": "030390-10003"}) == ["AB0002"]
    assert plates(store, dataset, {"technical.fuel": "diesel"}) == ["AB0002"]
    # delete: gone from every index
    store.delete(dataset, {"plate": "AB0001"})
    assert plates(store, dataset, {"owners[].person_code": "010190-10001"}) == []
    assert plates(store, dataset, {"vin": "VIN00000000000001"}) == []
    # replace_all: only the new contents are found
    store.replace_all(dataset, [vehicle(7, "070790-10007"), vehicle(8, "070790-10007")], batch=1)
    assert plates(store, dataset, {"owners[].person_code": "030390-10003"}) == []
    assert plates(store, dataset, {"owners[].person_code": "070790-10007"}) == ["AB0007", "AB0008"]
    # the sync job's path: upsert with its cursor in the same transaction
    store.upsert(dataset, [vehicle(9, "070790-10007")], also=lambda conn: None)
    assert store.search(dataset, SearchRequest({"owners[].person_code": "070790-10007"}, page_size=5)).total == 3
    # 7 declared paths (mass, registered, vin, fuel, one owner, one contact, one plate) + the subject, per record
    assert entries(store) == 3 * 8


def test_paths_inside_objects_lists_and_lists_of_values_with_typed_values(store: DatasetStore, dataset: Any) -> None:
    store.upsert(dataset, [vehicle(n, f"0101{n:02d}-10000", "999999-99999") for n in range(1, 6)])
    assert plates(store, dataset, {"owners[].contacts[].value": "010103-10000@example.lv"}) == ["AB0003"]
    assert plates(store, dataset, {"previous_plates[]": "OLD4"}) == ["AB0004"]
    assert plates(store, dataset, {"owners[].person_code": "999999-99999"}) == [f"AB000{n}" for n in range(1, 6)]
    # values compare by their type, however sent: a date as text or date, a decimal with more zeros
    assert plates(store, dataset, {"registered": "2020-01-03"}) == ["AB0002"]
    assert plates(store, dataset, {"registered": dt.date(2020, 1, 3)}) == ["AB0002"]
    assert plates(store, dataset, {"technical.mass": "1002.500"}) == ["AB0002"]
    # AND of several criteria, and a key criterion
    assert plates(store, dataset, {"owners[].person_code": "999999-99999", "technical.mass": "1004.5"}) == ["AB0004"]
    assert plates(store, dataset, {"owners[].person_code": "999999-99999", "plate": "AB0005"}) == ["AB0005"]
    assert index_values(dataset, "owners[].person_code", store.get(dataset, {"plate": "AB0001"}) or {}) == {
        "010101-10000", "999999-99999"}


def test_page_and_cursor_paging_walk_every_match_once_in_key_order(store: DatasetStore, dataset: Any) -> None:
    numbers = [17, 3, 11, 5, 20, 1, 8, 14, 2, 9, 30]  # written out of order
    store.upsert(dataset, [vehicle(n, "010190-10001") for n in numbers] + [vehicle(50, "other")])
    expected = [f"AB{n:04d}" for n in sorted(numbers)]
    criteria = {"owners[].person_code": "010190-10001"}
    by_page = []
    for number in range(1, 5):
        page = store.search(dataset, SearchRequest(criteria, page_size=3, page=number))
        assert page.total == len(numbers) and page.page == number
        assert (page.next_cursor is None) == (number == 4)
        by_page += [r["plate"] for r in page.records]
    assert by_page == expected
    assert store.search(dataset, SearchRequest(criteria, page_size=3, page=9)).records == []
    by_cursor, cursor, added = [], None, 0
    while True:
        page = store.search(dataset, SearchRequest(criteria, page_size=4, cursor=cursor))
        by_cursor += [r["plate"] for r in page.records]
        assert page.total == len(numbers) + added and page.page is None
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
        if not added:  # a match added ahead of the cursor is found; nothing is read twice (keyset paging)
            store.upsert(dataset, [vehicle(100, "010190-10001"), vehicle(0, "010190-10001")])
            added = 2
    assert by_cursor == expected + ["AB0100"]


def test_excluded_subjects_are_left_out_of_the_page_and_the_total(store: DatasetStore, dataset: Any) -> None:
    store.upsert(dataset, [vehicle(1, "010190-10001"), vehicle(2, "020290-10002", "010190-10001"),
                           vehicle(3, "LV030390-10003", "010190-10001")])
    criteria = {"owners[].person_code": "010190-10001"}
    page = store.search(dataset, SearchRequest(criteria, page_size=2, page=1), exclude_subjects=["01019010001"])
    assert [r["plate"] for r in page.records] == ["AB0002", "AB0003"] and page.total == 2 and page.next_cursor is None
    # persons are compared as the restriction register keys them (LV prefix, dashes)
    page = store.search(dataset, SearchRequest(criteria, page_size=5), exclude_subjects=[subject_key("030390-10003")])
    assert [r["plate"] for r in page.records] == ["AB0001", "AB0002"] and page.total == 2
    assert store.search(dataset, SearchRequest(criteria, page_size=5), exclude_subjects=[]).total == 3


def test_unindexed_and_bad_criteria_are_refused_naming_the_field(store: DatasetStore, dataset: Any) -> None:
    store.upsert(dataset, [vehicle(1, "010190-10001")])
    for criteria, words in [({"holder": "x"}, "'holder' is not indexed"), ({}, "at least one criterion"),
                            ({"registered": "yesterday"}, "registered"), ({"owners.person_code": "x"}, "owners.person_code")]:
        with pytest.raises(SearchProblem, match=words):
            store.search(dataset, SearchRequest(criteria, page_size=5))


def test_changing_the_indexes_rebuilds_only_that_dataset_once(store: DatasetStore, dataset: Any) -> None:
    store.upsert(dataset, [vehicle(n, "010190-10001") for n in range(1, 4)])
    assert store.ensure_indexes([dataset]) == []  # written with this definition: nothing to do
    fewer = parse_manifest(MANIFEST.replace("  - vin\n", "").replace("  - registered\n", ""), "vehicles.yaml")
    assert store.ensure_indexes([fewer]) == ["vehicles"]
    assert store.ensure_indexes([fewer]) == []
    assert entries(store) == 3 * 6
    with pytest.raises(SearchProblem):
        store.search(fewer, SearchRequest({"vin": "VIN00000000000001"}, page_size=5))
    # a filled dataset gains an index: the next publish (or `catalog reindex`) finds its records by it
    assert store.ensure_indexes([dataset]) == ["vehicles"]
    assert plates(store, dataset, {"vin": "VIN00000000000002"}) == ["AB0002"]
    # a store write under another definition rebuilds the dataset first, so all entries match one definition
    store.upsert(fewer, [vehicle(4, "010190-10001")])
    assert store.ensure_indexes([fewer]) == [] and entries(store) == 4 * 6


@pytest.mark.parametrize("index,words", [
    ("owners.person_code", "write 'owners[].person_code'"), ("technical", "ends at 'technical'"),
    ("owners[].nobody", "'nobody' is not among the fields of owners[]"), ("vin[]", "not a list"),
    ("page", "paging parameter"), ("vin", "listed twice")])
def test_a_bad_index_names_file_line_and_entry(index: str, words: str) -> None:
    text = MANIFEST.replace("  - technical.mass\n", f"  - {index}\n")
    with pytest.raises(ManifestError) as caught:
        parse_manifest(text, "vehicles.yaml")
    line = MANIFEST.splitlines().index("  - technical.mass") + 1  # the entry's own line
    assert words in caught.value.reason and caught.value.file == "vehicles.yaml"
    assert (caught.value.line, caught.value.field) == (line, "indexes[2]")
