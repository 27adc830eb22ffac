"""Harmless XML is served, out-of-range integers are refused by name (issue 9.10)."""

from __future__ import annotations

import pytest
from lxml import etree

from tests.soap_helpers import parse_fault, post

NS = "http://vissbridge.gov.lv/catalog"
XSI = "http://www.w3.org/2001/XMLSchema-instance"


def _changes(since: str = "0", limit: str = "5", before_op: str = "", inside_op: str = "", op_attrs: str = "") -> bytes:
    return (f"<e:Envelope xmlns:e='http://schemas.xmlsoap.org/soap/envelope/' xmlns:c='{NS}' xmlns:xsi='{XSI}'>"
            f"<e:Body>{before_op}<c:getChanges{op_attrs}>{inside_op}<c:dataset>vzd_address</c:dataset>"
            f"<c:since>{since}</c:since><c:limit>{limit}</c:limit></c:getChanges></e:Body></e:Envelope>").encode()


def _records(response) -> int:  # type: ignore[no-untyped-def]
    assert response.status_code == 200, response.text[:400]
    return len(etree.fromstring(response.content).findall(f".//{{{NS}}}change"))


@pytest.mark.parametrize("where", ["before_op", "inside_op"])
@pytest.mark.parametrize("node", ["<!-- a comment -->", "<?note a processing instruction?>"])
def test_comments_and_pis_are_served_as_without_them(bridge, demo_world, where, node):  # type: ignore[no-untyped-def]
    plain = post(bridge.catalog, _changes())
    decorated = post(bridge.catalog, _changes(**{where: node}))
    assert decorated.status_code == plain.status_code == 200, decorated.text[:400]
    assert _records(decorated) == _records(plain) == 5


@pytest.mark.parametrize("element", ["since", "limit"])
def test_integers_beyond_64_bits_name_the_element(bridge, demo_world, element):  # type: ignore[no-untyped-def]
    fault = parse_fault(post(bridge.catalog, _changes(**{element: str(2**63)})))
    assert fault.code == "Client.InvalidRequest" and element in fault.string, fault


def test_limit_zero_is_refused_not_silently_100(bridge, demo_world):  # type: ignore[no-untyped-def]
    fault = parse_fault(post(bridge.catalog, _changes(limit="0")))
    assert fault.code == "Client.InvalidRequest" and "limit" in fault.string, fault


def test_xsi_nil_on_the_operation_is_invalid_request(bridge, demo_world):  # type: ignore[no-untyped-def]
    fault = parse_fault(post(bridge.catalog, _changes(op_attrs=" xsi:nil='true'")))
    assert fault.code == "Client.InvalidRequest" and "getChanges" in fault.string, fault


@pytest.mark.parametrize("element, value", [("offset", 2**63), ("limit", 2**63), ("limit", 0)])
def test_data_tracker_integers_are_bounded_by_name(tls_bridge, pki, demo_world, element, value):  # type: ignore[no-untyped-def]
    from tests.access_helpers import fault_of, new_consumer, tracker_request

    portal = new_consumer(tls_bridge, pki, f"portal-{element}-{value % 7}", client_id="LV/GOV/90000010008/LATVIJA-LV")
    person = demo_world["fpr_person"][3]["person_code"]
    code, text = fault_of(portal.post(tls_bridge.xroad, tracker_request(portal.client_id, "findUsage", person,
                                                                        **{element: value})))
    assert code == "Client.InvalidRequest" and element in text, text
