"""/catalog over real HTTP through zeep: discovery, typed records, the change feed, faults."""

from __future__ import annotations

import pytest
import zeep
from zeep.exceptions import Fault

from tests.conftest import BANK_CONSUMER, DEMO_CONSUMER
from tests.soap_helpers import normalise


@pytest.fixture(scope="module")
def catalog_client(bridge):  # type: ignore[no-untyped-def]
    return zeep.Client(f"{bridge.catalog}?wsdl")


def caller(client: str) -> dict[str, object]:
    return {"caller": {"client": client, "userId": "LV01019012345"}}


def test_list_datasets_with_titles_and_counts(catalog_client, demo_world):  # type: ignore[no-untyped-def]
    listed = {d.name: d for d in catalog_client.service.listDatasets()}
    assert set(listed) == set(demo_world)
    person = listed["fpr_person"]
    assert person.title.lv.startswith("Fizisko personu") and person.title.en
    assert person.records == len(demo_world["fpr_person"])
    assert listed["vzd_address"].access == "open"


def test_describe_dataset(catalog_client, demo_catalog):  # type: ignore[no-untyped-def]
    description = catalog_client.service.describeDataset(dataset="fpr_person")
    manifest = demo_catalog.get("fpr_person")
    assert description.key == list(manifest.key)
    assert description.owner == manifest.owner and description.access == "restricted"
    assert description.subject == "person_code"
    fields = {f.name: f for f in description.field}
    assert [f.name for f in description.field] == [f.name for f in manifest.fields]
    assert fields["birth_date"].type == "date"
    addresses = fields["addresses"]
    assert addresses.type == "list" and {f.name for f in addresses.field} >= {"address_code"}
    assert description.title.lv and description.title.en


def test_get_record_is_typed(catalog_client, demo_world):  # type: ignore[no-untyped-def]
    expected = demo_world["ur_company"][1]
    answer = catalog_client.service.getRecord(dataset="ur_company", key=[expected["reg_number"]],
                                              _soapheaders=caller(BANK_CONSUMER))
    assert answer.ur_company is not None and answer.fpr_person is None
    assert normalise(answer.ur_company) == normalise(expected)


def test_change_feed_pages_through_every_record_once(catalog_client, demo_world):  # type: ignore[no-untyped-def]
    seen: list[str] = []
    since, pages = 0, 0
    while True:
        page = catalog_client.service.getChanges(dataset="vzd_address", since=since, limit=50,
                                                 _soapheaders=caller(DEMO_CONSUMER))
        pages += 1
        for change in page.change:
            assert not change.deleted and change.record.vzd_address.address_code == change.key[0]
            seen.append(change.key[0])
        since = page.nextSince
        if not page.hasMore:
            break
        assert pages < 100
    assert sorted(seen) == sorted(r["address_code"] for r in demo_world["vzd_address"])
    assert pages == -(-len(seen) // 50)


def test_catalog_faults(catalog_client, demo_world):  # type: ignore[no-untyped-def]
    with pytest.raises(Fault) as caught:
        catalog_client.service.describeDataset(dataset="nope")
    assert caught.value.code == "Server.ServerProxy.UnknownService"
    person = demo_world["fpr_person"][0]["person_code"]
    with pytest.raises(Fault) as caught:
        catalog_client.service.getRecord(dataset="fpr_person", key=[person], _soapheaders=caller(BANK_CONSUMER))
    assert caught.value.code == "Server.ServerProxy.AccessDenied"
    with pytest.raises(Fault) as caught:
        catalog_client.service.getRecord(dataset="fpr_person", key=[person])
    assert caught.value.code == "Server.ServerProxy.AccessDenied" and "anonymous" in caught.value.message
    with pytest.raises(Fault) as caught:
        catalog_client.service.getChanges(dataset="vzd_address", since=0, limit=100000)
    assert caught.value.code == "Client.InvalidRequest"
    with pytest.raises(Fault) as caught:
        catalog_client.service.getRecord(dataset="fpr_person", key=[person, "extra"], _soapheaders=caller(DEMO_CONSUMER))
    assert caught.value.code == "Client.InvalidRequest"
