"""Only POST, GET and HEAD are served, checked once in the dispatch (issue 9.9)."""

from __future__ import annotations

import pytest
import requests

PATHS = ["/xroad", "/catalog", "/viss", "/legacy/fpr", "/access", "/"]


@pytest.mark.parametrize("method", ["PUT", "PATCH", "DELETE", "OPTIONS"])
@pytest.mark.parametrize("path", PATHS)
def test_other_methods_get_405_with_allow(bridge, path, method):  # type: ignore[no-untyped-def]
    response = requests.request(method, f"{bridge.url}{path}", data=b"<x/>",
                                headers={"Content-Type": "text/xml"}, timeout=30)
    assert response.status_code == 405, response.text[:200]
    assert response.headers["Allow"] == "GET, HEAD, POST"


@pytest.mark.parametrize("path", ["/xroad?wsdl", "/viss?wsdl", "/legacy/fpr?wsdl", "/"])
def test_head_is_get_without_body(bridge, path):  # type: ignore[no-untyped-def]
    get = requests.get(f"{bridge.url}{path}", timeout=30)
    head = requests.head(f"{bridge.url}{path}", timeout=30)
    assert head.status_code == get.status_code == 200
    assert head.content == b""
    assert head.headers["Content-Type"] == get.headers["Content-Type"]
