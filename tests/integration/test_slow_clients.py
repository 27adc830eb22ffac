"""Slow or lying clients (issue 9 item 8): they get a 408 and never starve other callers.

Before the threaded worker, two connections that declared a longer Content-Length than they sent
held both sync workers of a node until gunicorn killed them, and every other request waited.
"""

from __future__ import annotations

import http.client
import json
import socket
import time
from typing import Iterator

import pytest
import requests
from lxml import etree

from tests.conftest import DEMO_CONSUMER, RunningBridge, cli, start_bridge
from tests.soap_helpers import post, xroad_lookup

SOAP11 = "http://schemas.xmlsoap.org/soap/envelope/"


def _open_lying_upload(url: str, declared: int = 4000, sent: bytes = b"<soapenv:Envelope") -> socket.socket:
    """A connection that announces ``declared`` body bytes and sends only the first few."""
    host, port = url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=30)
    sock.sendall(f"POST /xroad HTTP/1.1\r\nHost: {host}\r\nContent-Type: text/xml; charset=utf-8\r\n"
                 f"Content-Length: {declared}\r\n\r\n".encode() + sent)
    return sock


def _open_slow_headers(url: str) -> socket.socket:
    host, port = url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=30)
    sock.sendall(b"POST /xroad HTTP/1.1\r\nHost: x\r\n")  # and never the end of the headers
    return sock


def _still_open(sock: socket.socket) -> bool:
    """True while the server has neither answered nor closed the connection."""
    sock.setblocking(False)
    try:
        sock.recv(1, socket.MSG_PEEK)  # an answer or the end of the stream: the server is done with it
        return False
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        sock.setblocking(True)


def _lookup(bridge: RunningBridge) -> requests.Response:
    from viss_bridge.catalog.catalog import load_catalog

    dataset = load_catalog(bridge.catalog_dir).get("fpr_person")
    return post(bridge.xroad, xroad_lookup(dataset, DEMO_CONSUMER, {"person_code": _first_person(bridge)}))


def _first_person(bridge: RunningBridge) -> str:
    import sqlite3

    path = bridge.database_url.removeprefix("sqlite:///")
    with sqlite3.connect(path) as db:
        data = db.execute("SELECT data FROM dataset_records WHERE dataset = 'fpr_person' ORDER BY seq LIMIT 1").fetchone()[0]
    return str(json.loads(data)["person_code"])


def _read_answer(sock: socket.socket) -> bytes:
    sock.settimeout(30)
    chunks = []
    while True:
        try:
            chunk = sock.recv(65536)
        except OSError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks)


@pytest.fixture(scope="module")
def patient_bridge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningBridge]:
    """Two workers that give a request a whole minute to arrive: long enough to see who waits on whom."""
    running = start_bridge(tmp_path_factory.mktemp("patient"), workers=2, size=50,
                           extra_env={"VISS_BRIDGE_REQUEST_READ_TIMEOUT": "60"})
    yield running
    running.stop()


@pytest.fixture(scope="module")
def strict_bridge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningBridge]:
    running = start_bridge(tmp_path_factory.mktemp("strict"), workers=1, size=50,
                           extra_env={"VISS_BRIDGE_REQUEST_READ_TIMEOUT": "1"})
    yield running
    running.stop()


def test_lying_clients_do_not_starve_a_normal_request(patient_bridge: RunningBridge) -> None:
    # More hanging uploads than the node has worker processes (2), headers-only ones too.
    hanging = [_open_lying_upload(patient_bridge.url) for _ in range(4)]
    hanging += [_open_slow_headers(patient_bridge.url) for _ in range(2)]
    try:
        time.sleep(0.5)  # let every hanging request reach a worker
        answer = _lookup(patient_bridge)
        assert answer.status_code == 200, answer.text[:300]
        # The answer came while every lying client is still waiting for its own (nothing was killed or
        # timed out to make room).
        assert all(_still_open(sock) for sock in hanging)
        assert requests.get(f"{patient_bridge.url}/health", timeout=30).status_code == 200
    finally:
        for sock in hanging:
            sock.close()


def test_a_body_that_never_arrives_gets_a_408_fault_and_is_logged(strict_bridge: RunningBridge) -> None:
    sock = _open_lying_upload(strict_bridge.url)
    try:
        raw = _read_answer(sock)
    finally:
        sock.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408"), raw[:300]
    fault = etree.fromstring(body).find(f"{{{SOAP11}}}Body/{{{SOAP11}}}Fault")
    assert fault is not None, body[:300]
    assert fault.findtext("faultcode").endswith("Client.InvalidSoap.RequestTimeout")
    assert "not received in time" in fault.findtext("faultstring")
    fault_id = fault.findtext("detail/faultDetail")
    assert fault_id
    # The refusal is in the message log like any other fault, findable by its id.
    found = json.loads(cli("log", "find", "--exchange", fault_id, "--json", env=strict_bridge.env()).stdout)

    assert [r["fault_code"] for r in found if r["direction"] == "response"] == ["Client.InvalidSoap.RequestTimeout"]
    # The worker is free again: a normal request is served.
    assert _lookup(strict_bridge).status_code == 200


def test_headers_that_never_end_get_408_and_the_connection_closes(strict_bridge: RunningBridge) -> None:
    sock = _open_slow_headers(strict_bridge.url)
    try:
        raw = _read_answer(sock)  # returns only once the server closed the connection
    finally:
        sock.close()
    assert raw.startswith(b"HTTP/1.1 408"), raw[:200]
    assert "request headers not received in time" in strict_bridge.log_text()


def test_keep_alive_serves_several_requests_on_one_connection(strict_bridge: RunningBridge) -> None:
    host, port = strict_bridge.url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=30)
    connection.auto_open = 0  # a second request on a closed connection raises instead of reconnecting
    connection.connect()
    try:
        for _ in range(3):
            connection.request("GET", "/health")
            answer = connection.getresponse()
            answer.read()
            assert answer.status == 200
            assert (answer.getheader("Connection") or "").lower() != "close"
    finally:
        connection.close()


@pytest.fixture(scope="module")
def lingering_bridge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningBridge]:
    """One worker with one thread that waits up to 100 ms (the most the settings allow) on a kept-alive
    connection for its next request."""
    running = start_bridge(tmp_path_factory.mktemp("linger"), workers=1, size=50,
                           extra_env={"VISS_BRIDGE_REQUEST_READ_TIMEOUT": "1", "VISS_BRIDGE_WORKER_THREADS": "1",
                                      "VISS_BRIDGE_KEEPALIVE_LINGER_MS": "100"})
    yield running
    running.stop()


def _keep_alive(bridge: RunningBridge) -> http.client.HTTPConnection:
    host, port = bridge.url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=30)
    connection.auto_open = 0  # a request on a connection the server closed raises instead of reconnecting
    connection.connect()
    return connection


def _health(connection: http.client.HTTPConnection) -> None:
    connection.request("GET", "/health")
    answer = connection.getresponse()
    answer.read()
    assert answer.status == 200 and (answer.getheader("Connection") or "").lower() != "close"


def test_a_consumer_calling_again_at_once_or_after_the_linger_is_served_on_the_same_connection(
        lingering_bridge: RunningBridge) -> None:
    connection = _keep_alive(lingering_bridge)
    try:
        _health(connection)
        _health(connection)  # at once: the same thread serves it
        time.sleep(0.6)  # past the linger: the connection went back to the poller
        _health(connection)
    finally:
        connection.close()


def test_an_idle_lingering_connection_does_not_keep_the_only_thread_from_others(lingering_bridge: RunningBridge) -> None:
    idle = _keep_alive(lingering_bridge)
    try:
        _health(idle)  # and then nothing: the only thread may be waiting on this connection
        other = _keep_alive(lingering_bridge)
        try:
            _health(other)
            _health(idle)  # both connections still served, in turn
            _health(other)
        finally:
            other.close()
    finally:
        idle.close()


def test_a_next_request_that_stalls_while_the_thread_lingers_gets_408(lingering_bridge: RunningBridge) -> None:
    host, port = lingering_bridge.url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=30)
    try:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        first = b""
        while b"\r\n\r\n" not in first:
            first += sock.recv(65536)
        head, _, rest = first.partition(b"\r\n\r\n")
        length = int(next(line.split(b":", 1)[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")))
        while len(rest) < length:
            rest += sock.recv(65536)
        sock.sendall(b"POST /xroad HTTP/1.1\r\nHost: x\r\n")  # at once, and never the end of its headers
        answer = _read_answer(sock)  # the read deadline holds for a request picked up while lingering too
        assert answer.startswith(b"HTTP/1.1 408")
    finally:
        sock.close()
    assert _lookup(lingering_bridge).status_code == 200  # and the only thread serves others afterwards
