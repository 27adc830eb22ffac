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
