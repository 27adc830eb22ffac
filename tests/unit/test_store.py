"""The dataset store on a real SQLite file: typed round trips, change feed, atomic batches."""

import datetime as dt
from decimal import Decimal
from pathlib import Path

import pytest

from viss_bridge.catalog.manifest import parse_manifest
from viss_bridge.catalog.store import DatasetStore, StoreUnavailable
from viss_bridge.catalog.values import ValueProblem
from viss_bridge.db import make_engine

MANIFEST = """\
dataset: things
title: {lv: "Lietas", en: "Things"}
owner: LV/GOV/90000000001/T
key: [region, number]
fields:
  - {name: region, type: string}
  - {name: number, type: integer}
  - {name: price, type: decimal}
  - {name: active, type: boolean}
  - {name: made, type: date}
  - {name: seen, type: datetime}
  - {name: parts, type: list, fields: [{name: label, type: string}, {name: weight, type: decimal}]}
"""


@pytest.fixture()
def setup(tmp_path: Path):  # type: ignore[no-untyped-def]
    dataset = parse_manifest(MANIFEST, "things.yaml")
    store = DatasetStore(make_engine(f"sqlite:///{tmp_path / 'store.sqlite'}"))
    store.create_schema()
    return dataset, store


def test_typed_round_trip_with_composite_key_and_lists(setup) -> None:  # type: ignore[no-untyped-def]
    dataset, store = setup
    store.upsert(dataset, [{"region": "LV-1", "number": "7", "price": "12.50", "active": "true", "made": "2020-02-29",
                            "seen": "2026-01-01T10:00:00Z",
                            "parts": [{"label": "a", "weight": "0.1"}, {"label": "b", "weight": 2}]}])
    record = store.get(dataset, {"region": "LV-1", "number": 7})
    assert record == {"region": "LV-1", "number": 7, "price": Decimal("12.50"), "active": True,
                      "made": dt.date(2020, 2, 29), "seen": dt.datetime(2026, 1, 1, 10, tzinfo=dt.timezone.utc),
                      "parts": [{"label": "a", "weight": Decimal("0.1")}, {"label": "b", "weight": Decimal("2")}]}
    assert store.get(dataset, {"region": "LV-1", "number": "7"}) == record  # text key finds the same record
    assert store.get(dataset, {"region": "LV-2", "number": 7}) is None


def test_bad_values_are_refused_before_writing(setup) -> None:  # type: ignore[no-untyped-def]
    dataset, store = setup
    with pytest.raises(ValueProblem):
        store.upsert(dataset, [{"region": "A", "number": 1}, {"region": "B", "number": "x"}])
    assert store.count(dataset) == 0
    with pytest.raises(ValueProblem):
        store.upsert(dataset, [{"region": "A", "number": 1, "colour": "red"}])


def test_change_feed_pages_and_reports_deletions(setup) -> None:  # type: ignore[no-untyped-def]
    dataset, store = setup
    store.upsert(dataset, [{"region": "R", "number": n} for n in range(5)])
    first = store.changes(dataset, 0, 3)
    assert [c.key for c in first] == ["R\x1f0", "R\x1f1", "R\x1f2"]
    rest = store.changes(dataset, first[-1].seq, 10)
    assert [c.key for c in rest] == ["R\x1f3", "R\x1f4"]
    store.upsert(dataset, [{"region": "R", "number": 1, "price": "3"}])
    store.delete(dataset, {"region": "R", "number": 2})
    latest = store.changes(dataset, rest[-1].seq, 10)
    assert [(c.key, c.record is None) for c in latest] == [("R\x1f1", False), ("R\x1f2", True)]
    assert store.count(dataset) == 4


def test_unreachable_database_is_reported_as_unavailable(tmp_path: Path) -> None:
    dataset = parse_manifest(MANIFEST, "things.yaml")
    store = DatasetStore(make_engine("postgresql://nobody@127.0.0.1:1/none"))
    with pytest.raises(StoreUnavailable):
        store.get(dataset, {"region": "R", "number": 1})


NESTED = """\
dataset: vehicles
title: {lv: "Transportlīdzekļi", en: "Vehicles"}
owner: LV/GOV/90000000001/T
key: [plate]
fields:
  - {name: plate, type: string}
  - name: technical
    type: object
    fields:
      - {name: mass, type: decimal}
      - {name: fuel, type: string, enum: [petrol, diesel]}
      - {name: power_kw, type: integer, nillable: true}
      - name: axles
        type: list
        fields:
          - {name: load, type: decimal}
          - {name: tyres, type: list, items: string}
  - name: owners
    type: list
    fields:
      - {name: person_code, type: string}
      - {name: from, type: date}
      - name: contacts
        type: list
        fields:
          - {name: kind, type: string, enum: [phone, email]}
          - {name: seen, type: datetime}
  - {name: previous_plates, type: list, items: string}
  - {name: checks, type: list, items: date}
"""


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_nested_values_round_trip_at_every_depth(backend: str, tmp_path: Path, request) -> None:  # type: ignore[no-untyped-def]
    """Objects in records, lists in objects, lists in lists, lists of values: one JSON row, typed back."""
    url = request.getfixturevalue("pg_database") if backend == "postgresql" else f"sqlite:///{tmp_path / 's.sqlite'}"
    dataset = parse_manifest(NESTED, "vehicles.yaml")
    engine = make_engine(url)
    store = DatasetStore(engine)
    store.create_schema()
    written = {
        "plate": "KA1234",
        "technical": {"mass": "1385.50", "fuel": "diesel", "power_kw": None,
                      "axles": [{"load": "900", "tyres": ["205/55 R16", "205/55 R16"]}, {"load": "850", "tyres": []}]},
        "owners": [{"person_code": "010190-10005", "from": "2020-01-01",
                    "contacts": [{"kind": "email", "seen": "2025-05-01T10:00:00Z"}]},
                   {"person_code": "020290-10006", "from": dt.date(2021, 2, 2), "contacts": []}],
        "previous_plates": ["AB1000", "CD2000"],
        "checks": ["2024-03-01", "2025-03-01"],
    }
    try:
        store.upsert(dataset, [written])
        got = store.get(dataset, {"plate": "KA1234"})
        assert got == {
            "plate": "KA1234",
            "technical": {"mass": Decimal("1385.50"), "fuel": "diesel", "power_kw": None,
                          "axles": [{"load": Decimal("900"), "tyres": ["205/55 R16", "205/55 R16"]},
                                    {"load": Decimal("850"), "tyres": []}]},
            "owners": [{"person_code": "010190-10005", "from": dt.date(2020, 1, 1),
                        "contacts": [{"kind": "email", "seen": dt.datetime(2025, 5, 1, 10, tzinfo=dt.timezone.utc)}]},
                       {"person_code": "020290-10006", "from": dt.date(2021, 2, 2), "contacts": []}],
            "previous_plates": ["AB1000", "CD2000"],
            "checks": [dt.date(2024, 3, 1), dt.date(2025, 3, 1)],
        }
        assert store.changes(dataset, 0, 10)[0].record == got
        # a value of the wrong type deep inside is refused before anything is written, naming its path
        bad = dict(written, plate="KA9999", owners=[{"person_code": "x", "from": "not a date"}])
        with pytest.raises(ValueProblem, match=r"owners\[0\]\.from"):
            store.upsert(dataset, [bad])
        with pytest.raises(ValueProblem, match=r"technical\.axles\[0\]\.tyres\[1\]"):
            store.upsert(dataset, [dict(written, technical={"axles": [{"tyres": ["a", None]}]})])
        assert store.count(dataset) == 1
    finally:
        engine.dispose()
