"""Small helpers for tests that speak raw SOAP (faults, header echo) over HTTP."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import requests
from lxml import etree

from viss_bridge.catalog.manifest import Dataset
from viss_bridge.facade.xroad import lookup_request

NS_SOAP11 = "http://schemas.xmlsoap.org/soap/envelope/"
NS_XROAD = "http://x-road.eu/xsd/xroad.xsd"
NS_ID = "http://x-road.eu/xsd/identifiers"
XROAD_TNS = "http://vissbridge.gov.lv/xroad/datasets"


@dataclass
class SoapFault:
    status: int
    code: str
    string: str
    detail: str


def post(url: str, body: bytes, content_type: str = "text/xml; charset=utf-8") -> requests.Response:
    return requests.post(url, data=body, headers={"Content-Type": content_type}, timeout=30)


def parse_fault(response: requests.Response) -> SoapFault:
    root = etree.fromstring(response.content)
    fault = root.find(f"{{{NS_SOAP11}}}Body/{{{NS_SOAP11}}}Fault")
    assert fault is not None, response.text
    return SoapFault(response.status_code, fault.findtext("faultcode"), fault.findtext("faultstring"),
                     fault.findtext("detail/faultDetail"))


def xroad_lookup(dataset: Dataset, client: str, key: dict[str, Any], message_id: str | None = None,
                 user_id: str | None = "LV01019012345") -> bytes:
    return lookup_request(dataset, client, {k: str(v) for k, v in key.items()}, message_id or str(uuid.uuid4()),
                          user_id=user_id)


def xroad_headers(client: str, dataset: Dataset, message_id: str = "test-1") -> dict[str, Any]:
    """zeep ``_soapheaders`` for a dataset call."""
    instance, member_class, member_code, *sub = client.split("/")
    client_header: dict[str, Any] = {"objectType": "SUBSYSTEM" if sub else "MEMBER", "xRoadInstance": instance,
                                     "memberClass": member_class, "memberCode": member_code}
    if sub:
        client_header["subsystemCode"] = sub[0]
    owner = dataset.owner_parts
    service: dict[str, Any] = {"objectType": "SERVICE", "xRoadInstance": owner[0], "memberClass": owner[1],
                               "memberCode": owner[2], "serviceCode": dataset.dataset, "serviceVersion": dataset.version}
    if len(owner) > 3:
        service["subsystemCode"] = owner[3]
    return {"client": client_header, "service": service, "id": message_id, "userId": "LV01019012345",
            "protocolVersion": "4.0"}


def normalise(value: Any) -> Any:
    """Make zeep answers and generator records comparable (zeep objects, decimals, tz-aware datetimes)."""
    from zeep.helpers import serialize_object

    value = serialize_object(value)
    if isinstance(value, dict):
        return {k: normalise(v) for k, v in value.items() if v is not None and v != []}
    if isinstance(value, list):
        return [normalise(v) for v in value]
    if isinstance(value, Decimal):
        return value.normalize()
    if hasattr(value, "isoformat") and hasattr(value, "tzinfo") and getattr(value, "tzinfo", None) is not None:
        return value.astimezone(__import__("datetime").timezone.utc).replace(tzinfo=None)
    return value
