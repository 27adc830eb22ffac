"""Persons in control: findUsage shows exactly a person's accesses; a restriction hides the record from
non-obligated consumers but not from obligated ones; both are audited and can be lifted."""

from __future__ import annotations

import pytest
import zeep
from zeep.exceptions import Fault

from tests.access_helpers import (Consumer, answer_body, fault_of, lookup, new_consumer, record_of, registry_for,
                                  tracker_request, usages_of)
from tests.conftest import cli

PORTAL = "LV/GOV/90000010008/LATVIJA-LV"  # the demo's person portal, granted the data tracker


@pytest.fixture(scope="module")
def portal(tls_bridge, pki) -> Consumer:  # type: ignore[no-untyped-def]
    return new_consumer(tls_bridge, pki, "portal", client_id=PORTAL)


@pytest.fixture(scope="module")
def readers(tls_bridge, pki):  # type: ignore[no-untyped-def]
    """A consumer whose permission rests on consent, and one whose rests on a legal obligation."""
    registry = registry_for(tls_bridge)
    plain = new_consumer(tls_bridge, pki, "bank")
    registry.grant(plain.client_id, "fpr_person", purpose="customer due diligence", legal_basis="customer consent")
    obliged = new_consumer(tls_bridge, pki, "tax")
    registry.grant(obliged.client_id, "fpr_person", purpose="tax administration", legal_basis="Law on Taxes, s. 15",
                   legal_obligation=True)
    return plain, obliged


def find_usage(bridge, portal: Consumer, person: str, offset: int = 0, limit: int = 50):  # type: ignore[no-untyped-def]
    return usages_of(portal.post(bridge.xroad, tracker_request(portal.client_id, "findUsage", person,
                                                               offset=offset, limit=limit)))


def read(bridge, consumer: Consumer, dataset, person: str, official: str):  # type: ignore[no-untyped-def]
    return consumer.post(bridge.xroad, lookup(dataset, consumer.client_id, {"person_code": person}, user_id=official))


def test_find_usage_returns_exactly_that_persons_accesses_newest_first(tls_bridge, portal, readers, demo_catalog,
                                                                       demo_world):  # type: ignore[no-untyped-def]
    plain, obliged = readers
    dataset = demo_catalog.get("fpr_person")
    first, second, untouched = (p["person_code"] for p in demo_world["fpr_person"][150:153])
    read(tls_bridge, plain, dataset, first, "LV11111111111")
    read(tls_bridge, obliged, dataset, second, "LV22222222222")
    read(tls_bridge, obliged, dataset, first, "LV33333333333")
    # a record that is not found carries nobody's data
    read(tls_bridge, plain, dataset, "010101-00000", "LV11111111111")

    entries, total = find_usage(tls_bridge, portal, "LV" + first)
    assert total == 2
    assert [(e["receiver"], e["userId"], e["dataset"]) for e in entries] == [
        (obliged.client_id, "LV33333333333", "fpr_person"), (plain.client_id, "LV11111111111", "fpr_person")]
    assert entries[0]["purpose"] == "tax administration" and entries[1]["purpose"] == "customer due diligence"
    assert entries[0]["logTime"] >= entries[1]["logTime"] and all(e["permission"] for e in entries)
    # the same person written without the country prefix or the hyphen
    assert find_usage(tls_bridge, portal, first.replace("-", ""))[1] == 2
    entries, total = find_usage(tls_bridge, portal, second)
    assert total == 1 and entries[0]["receiver"] == obliged.client_id
    assert find_usage(tls_bridge, portal, untouched) == ([], 0)
    # paging
    page, total = find_usage(tls_bridge, portal, first, offset=1, limit=1)
    assert total == 2 and [e["receiver"] for e in page] == [plain.client_id]

    # the CLI shows the same for support staff
    out = cli("tracker", first, "--json", env=tls_bridge.env()).stdout
    import json

    shown = json.loads(out)
    assert shown["total"] == 2 and [u["client"] for u in shown["usage"]] == [obliged.client_id, plain.client_id]


def test_data_tracker_needs_its_permission_and_a_person(tls_bridge, pki, portal, demo_world):  # type: ignore[no-untyped-def]
    person = demo_world["fpr_person"][150]["person_code"]
    stranger = new_consumer(tls_bridge, pki, "nosy")
    code, text = fault_of(stranger.post(tls_bridge.xroad, tracker_request(stranger.client_id, "findUsage", person)))
    assert code == "Server.ServerProxy.AccessDenied" and "datatracker" in text
    code, _ = fault_of(portal.post(tls_bridge.xroad, tracker_request(portal.client_id, "findUsage", "")))
    assert code == "Client.MissingHeaderField"


def test_restriction_hides_the_record_from_non_obligated_consumers_only(tls_bridge, portal, readers, demo_catalog,
                                                                        demo_world):  # type: ignore[no-untyped-def]
    plain, obliged = readers
    dataset = demo_catalog.get("fpr_person")
    person = demo_world["fpr_person"][160]
    code = person["person_code"]
    assert record_of(read(tls_bridge, plain, dataset, code, "LV1"))["last_name"] == person["last_name"]

    restricted = portal.post(tls_bridge.xroad, tracker_request(portal.client_id, "restrictDistribution", "LV" + code,
                                                               dataset="fpr_person", reason="I object"))
    body = answer_body(restricted)
    assert body.findtext("{http://vissbridge.gov.lv/xroad/datatracker}restriction/"
                         "{http://vissbridge.gov.lv/xroad/datatracker}active") == "true"

    hidden = read(tls_bridge, plain, dataset, code, "LV2")
    fault, text = fault_of(hidden)
    assert fault == "Server.ServerProxy.AccessDenied.SubjectRestriction" and "restricted" in text
    assert person["last_name"] not in hidden.text
    shown = read(tls_bridge, obliged, dataset, code, "LV3")
    assert record_of(shown)["last_name"] == person["last_name"]

    # the generic catalog face says so with its own fault code
    native = zeep.Client(f"{tls_bridge.catalog}?wsdl", transport=zeep.Transport(session=plain.session()))
    with pytest.raises(Fault) as refused:
        native.service.getRecord(dataset="fpr_person", key=[code], _soapheaders={"caller": {"client": plain.client_id}})
    assert refused.value.code == "Server.ServerProxy.AccessDenied.SubjectRestriction"

    # the withheld answer was not recorded as a distribution of the person's data; the obliged read was
    entries, _ = find_usage(tls_bridge, portal, code)
    assert [(e["receiver"], e["userId"]) for e in entries] == [(obliged.client_id, "LV3"), (plain.client_id, "LV1")]

    listed = answer_body(portal.post(tls_bridge.xroad, tracker_request(portal.client_id, "listRestrictions", code)))
    assert [d.text for d in listed.iter("{http://vissbridge.gov.lv/xroad/datatracker}dataset")] == ["fpr_person"]

    portal.post(tls_bridge.xroad, tracker_request(portal.client_id, "liftRestriction", code, dataset="fpr_person"))
    assert record_of(read(tls_bridge, plain, dataset, code, "LV4"))["last_name"] == person["last_name"]

    history = [(e.action, e.actor) for e in registry_for(tls_bridge).audit.events(f"{code.replace('-', '')}/fpr_person")]
    assert [a for a, _ in history] == ["restriction.added", "restriction.lifted"]
    assert all(PORTAL in actor and code.replace("-", "") in actor for _, actor in history)


def test_restriction_through_the_cli_and_the_change_feed(tls_bridge, readers, demo_catalog, demo_world):  # type: ignore[no-untyped-def]
    plain, _ = readers
    person = demo_world["fpr_person"][0]["person_code"]  # the first record of the change feed
    env = tls_bridge.env()
    out = cli("access", "restrict", person, "fpr_person", "--reason", "phoned the helpdesk", env=env).stdout
    assert "restricts fpr_person" in out
    assert "-" in person  # written with its dash, as a person gives it
    history = cli("access", "history", f"{person}/fpr_person", env=env).stdout
    assert "restriction.added" in history and "phoned the helpdesk" in history
    try:
        native = zeep.Client(f"{tls_bridge.catalog}?wsdl", transport=zeep.Transport(session=plain.session()))
        page = native.service.getChanges(dataset="fpr_person", since=0, limit=3,
                                         _soapheaders={"caller": {"client": plain.client_id}})
        first = page.change[0]
        assert first.withheld is True and first.record is None and not first.deleted
        assert all(c.record is not None and not c.withheld for c in page.change[1:])
    finally:
        cli("access", "lift", person, "fpr_person", env=env)
    refused = cli("access", "restrict", person, "ur_company", env=env, check=False)
    assert refused.returncode != 0 and "not a dataset with personal data" in refused.stderr
