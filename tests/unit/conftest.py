"""Unit tests run in-process: no sockets unless a test says why it needs one.

As in python-zeep's test suite, a unit test that opens a socket by accident (a forgotten real HTTP
call, a database URL from the environment) fails at once instead of quietly becoming an integration
test. A test that needs one is marked ``postgres`` (the PostgreSQL server of VISS_BRIDGE_TEST_PG) or
``network`` (a server it starts itself on loopback). Tests that run an external program are marked
``tool``.
"""

from __future__ import annotations

import pytest
from pytest_socket import disable_socket, enable_socket

SOCKET_MARKERS = ("postgres", "network")


@pytest.fixture(autouse=True)
def _no_sockets(request: pytest.FixtureRequest):  # type: ignore[no-untyped-def]
    if any(request.node.get_closest_marker(name) for name in SOCKET_MARKERS):
        yield
        return
    disable_socket(allow_unix_socket=True)
    try:
        yield
    finally:
        enable_socket()
