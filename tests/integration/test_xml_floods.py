"""Attribute and element floods are refused at once on every endpoint (issue 9.7).

Both fit well inside max_message_bytes; before the structure caps they took tens
of seconds or killed the worker. The node must answer normally afterwards.
"""

from __future__ import annotations

import pytest
import requests

from tests.soap_helpers import post

ENDPOINTS = ["/xroad", "/catalog", "/viss", "/legacy/fpr", "/access"]
SOAP11 = "http://schemas.xmlsoap.org/soap/envelope/"
SOAP12 = "http://www.w3.org/2003/05/soap-envelope"


def _envelope(path: str, body: bytes) -> tuple[bytes, str]:
    ns, ctype = (SOAP12, "application/soap+xml; charset=utf-8") if path == "/viss" else (SOAP11, "text/xml; charset=utf-8")
    return (f"<e:Envelope xmlns:e='{ns}'><e:Body>".encode() + body + b"</e:Body></e:Envelope>", ctype)


FLOODS = {
    "attributes": b"<op " + b" ".join(b'a%d=""' % i for i in range(100_000)) + b"/>",
    "elements": b"<op>" + b"<x/>" * 300_000 + b"</op>",
}


@pytest.mark.parametrize("flood", sorted(FLOODS))
@pytest.mark.parametrize("path", ENDPOINTS)
def test_flood_is_invalid_soap_and_node_still_answers(bridge, path, flood):  # type: ignore[no-untyped-def]
    body, ctype = _envelope(path, FLOODS[flood])
    assert len(body) < 4 * 1024 * 1024
    response = post(f"{bridge.url}{path}", body, ctype)
    assert response.status_code in (400, 500), response.text[:300]  # SOAP 1.2 Sender faults are 400
    assert b"Client.InvalidSoap" in response.content, response.text[:300]
    assert b"limit" in response.content, response.text[:300]
    after = requests.get(f"{bridge.url}{path}?wsdl", timeout=30)
    assert after.status_code == 200 and b"definitions" in after.content
