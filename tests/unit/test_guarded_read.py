"""The one guarded read, in-process: each access rule, once, for every face."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from viss_bridge.catalog.manifest import Dataset
from viss_bridge.catalog.store import Change, StoreUnavailable
from viss_bridge.catalog.values import ValueProblem
from viss_bridge.facade import faults
from viss_bridge.facade.exchange import CallInfo
from viss_bridge.facade.faults import BridgeFault
from viss_bridge.facade.guarded_read import GuardedRead, narrowed
from tests.permission_fakes import FakePermissions

DATASET = Dataset.model_validate({
    "dataset": "persons", "version": "v1", "title": {"lv": "Personas", "en": "Persons"},
    "owner": "LV/GOV/90000000001/FPR", "key": ["person_code"], "subject": "person_code", "access": "restricted",
    "fields": [{"name": "person_code", "type": "string"}, {"name": "name", "type": "string"},
               {"name": "income", "type": "integer"}],
    "source": {"kind": "store"}})
RECORDS = {p: {"person_code": p, "name": f"Name {p}", "income": 1000} for p in ("A", "B", "C")}


class FakeStore:
    def __init__(self, failure: Exception | None = None) -> None:
        self.failure = failure

    def get(self, dataset: Dataset, key: dict[str, Any]) -> dict[str, Any] | None:
        if self.failure:
            raise self.failure
        return RECORDS.get(key["person_code"])

    def changes(self, n: int) -> list[Change]:
        at = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
        return [Change(seq=i + 1, key=p, changed_at=at, record=r) for i, (p, r) in enumerate(RECORDS.items())][:n]


def _code(error: pytest.ExceptionInfo[BridgeFault]) -> str:
    return error.value.code


def test_a_lookup_counts_tracks_and_narrows() -> None:
    permissions = FakePermissions(fields=("name",))
    info = CallInfo()
    record = GuardedRead(FakeStore(), permissions).lookup(GuardedRead(FakeStore(), permissions).decide("c", DATASET),
                                                          DATASET, {"person_code": "A"}, info)
    assert record == {"person_code": "A", "name": "Name A"}  # the key stays, income is not readable
    assert permissions.reserved == [["A"]] and info.subjects == ["A"] and info.permission == "P-1"
    assert info.uses == [("pending", ("A",))]


def test_denied_caller_gets_access_denied_and_nothing_is_read() -> None:
    reader = GuardedRead(FakeStore(failure=AssertionError("must not read")), FakePermissions(allowed=False))
    with pytest.raises(BridgeFault) as error:
        reader.decide("c", DATASET)
    assert _code(error) == faults.ACCESS_DENIED and "no permission for you" in error.value.message


def test_a_restricted_person_is_refused_and_not_counted() -> None:
    permissions = FakePermissions(restricted={"B"})
    reader = GuardedRead(FakeStore(), permissions)
    info = CallInfo()
    with pytest.raises(BridgeFault) as error:
        reader.lookup(reader.decide("c", DATASET), DATASET, {"person_code": "B"}, info)
    assert _code(error) == faults.ACCESS_DENIED_RESTRICTED
    assert permissions.reserved == [] and info.subjects == [] and info.uses == []


def test_a_spent_quota_is_access_denied() -> None:
    reader = GuardedRead(FakeStore(), FakePermissions(refuse_use=True))
    with pytest.raises(BridgeFault) as error:
        reader.lookup(reader.decide("c", DATASET), DATASET, {"person_code": "A"}, CallInfo())
    assert _code(error) == faults.ACCESS_DENIED and "quota" in error.value.message


@pytest.mark.parametrize("failure, code", [(StoreUnavailable("down"), "Server.ServerProxy.ServiceFailed.DatabaseError"),
                                           (ValueProblem("not a date"), faults.INVALID_REQUEST)])
def test_store_problems_become_the_projects_faults(failure: Exception, code: str) -> None:
    reader = GuardedRead(FakeStore(failure=failure), FakePermissions())
    with pytest.raises(BridgeFault) as error:
        reader.lookup(reader.decide("c", DATASET), DATASET, {"person_code": "A"}, CallInfo())
    assert _code(error) == code


def test_restriction_register_down_serves_nothing() -> None:
    reader = GuardedRead(FakeStore(), FakePermissions(registry_down=True))
    with pytest.raises(BridgeFault) as error:
        reader.lookup(reader.decide("c", DATASET), DATASET, {"person_code": "A"}, CallInfo())
    assert _code(error) == "Server.ServerProxy.ServiceFailed.DatabaseError"


def test_an_empty_key_finds_nothing_only_where_the_old_contract_said_so() -> None:
    store = FakeStore(failure=ValueProblem("empty key"))
    reader = GuardedRead(store, FakePermissions())
    decision = reader.decide("c", DATASET)
    assert reader.lookup(decision, DATASET, {"person_code": " "}, CallInfo(), empty_key_finds_nothing=True) is None
    with pytest.raises(BridgeFault):
        reader.lookup(decision, DATASET, {"person_code": " "}, CallInfo())


def test_a_feed_leaves_out_withheld_persons_and_counts_only_the_served() -> None:
    permissions = FakePermissions(restricted={"B"}, fields=())
    reader = GuardedRead(FakeStore(), permissions)
    info = CallInfo()
    items, more = reader.feed(reader.decide("c", DATASET), DATASET, FakeStore().changes, 2, info)
    assert more is True  # a third change exists
    assert [(i.change.key, i.record, i.withheld) for i in items] == [("A", {"person_code": "A"}, False),
                                                                      ("B", None, True)]
    assert permissions.reserved == [["A"]] and info.subjects == ["A"]


def test_narrowed_dataset_keeps_the_key() -> None:
    assert [f.name for f in narrowed(DATASET, ("income",)).fields] == ["person_code", "income"]
    assert narrowed(DATASET, None) is DATASET
