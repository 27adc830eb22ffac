"""Shadow between two SOAP 1.2 endpoints written here as fixtures: headers, formats, and the pace seen by the provider."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterator
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import pytest

from tests.conftest import cli

NS = "urn:lv:test:vehicles"
REQUEST = ('<env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope"><env:Body>'
           f'<v:VehicleRequest xmlns:v="{NS}"><v:RegistrationNumber>{{plate}}</v:RegistrationNumber></v:VehicleRequest>'
           '</env:Body></env:Envelope>')


class Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass


class Endpoint:
    """A tiny SOAP 1.2 service answering from a function; remembers when and how it was called."""

    def __init__(self, answer: Callable[[str], str]) -> None:
        self.answer = answer
        self.calls: list[tuple[float, str]] = []
        self.server: WSGIServer = make_server("127.0.0.1", 0, self.app, handler_class=Quiet)
        self.url = f"http://127.0.0.1:{self.server.server_port}/soap"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def app(self, environ: dict[str, Any], start_response: Any) -> list[bytes]:
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0)).decode()
        self.calls.append((time.monotonic(), environ.get("CONTENT_TYPE", "")))
        plate = body.split("RegistrationNumber>")[1].split("<")[0]
        start_response("200 OK", [("Content-Type", "application/soap+xml; charset=utf-8")])
        return [self.answer(plate).encode()]

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def legacy_answer(plate: str) -> str:
    return ('<soap:Envelope xmlns:soap="http://www.w3.org/2003/05/soap-envelope"><soap:Body>'
            f'<ns1:VehicleResponse xmlns:ns1="{NS}"><ns1:Vehicle><ns1:RegistrationNumber>{plate}</ns1:RegistrationNumber>'
            '<ns1:EngineVolume>1600</ns1:EngineVolume><ns1:Mass>1250.0</ns1:Mass>'
            '<ns1:FirstRegistered>2015-03-01T00:00:00Z</ns1:FirstRegistered>'
            '<ns1:Owner><ns1:Code>A</ns1:Code></ns1:Owner><ns1:Owner><ns1:Code>B</ns1:Code></ns1:Owner>'
            '</ns1:Vehicle></ns1:VehicleResponse></soap:Body></soap:Envelope>')


def bridge_answer(plate: str) -> str:
    mass = "1250.00" if plate != "AB-1003" else "1350"
    return ('<?xml version="1.0"?>\n<e:Envelope xmlns:e="http://www.w3.org/2003/05/soap-envelope">\n <e:Body>\n'
            f'  <VehicleResponse xmlns="{NS}">\n   <Vehicle>\n    <RegistrationNumber>{plate}</RegistrationNumber>\n'
            f'    <EngineVolume>1600</EngineVolume>\n    <Mass>{mass}</Mass>\n'
            '    <FirstRegistered>2015-03-01T02:00:00+02:00</FirstRegistered>\n'
            '    <Owner><Code>B</Code></Owner>\n    <Owner><Code>A</Code></Owner>\n'
            '   </Vehicle>\n  </VehicleResponse>\n </e:Body>\n</e:Envelope>\n')


@pytest.fixture()
def endpoints() -> Iterator[tuple[Endpoint, Endpoint]]:
    legacy, bridge = Endpoint(legacy_answer), Endpoint(bridge_answer)
    yield legacy, bridge
    legacy.stop()
    bridge.stop()


def test_soap12_shadow_paced_and_compared(endpoints: tuple[Endpoint, Endpoint], tmp_path: Path) -> None:
    legacy, bridge = endpoints
    folder = tmp_path / "requests"
    folder.mkdir()
    for index in range(6):
        (folder / f"r{index}.xml").write_text(REQUEST.format(plate=f"AB-100{index}"))
    result = cli("migrate", "shadow", "--service", "CSDD/Vehicles/v1-0", "--legacy-url", legacy.url,
                 "--bridge-url", bridge.url, "--requests", str(folder), "--unordered", "Vehicle/Owner",
                 "--rate", "8", "--format", "json")
    report = json.loads(result.stdout)
    assert (report["requests"], report["equal"], report["different"]) == (6, 5, 1)
    [different] = [o for o in report["outcomes"] if o["status"] == "different"]
    assert different["request"] == "r3.xml"
    assert different["differences"] == [{"path": "VehicleResponse/Vehicle/Mass", "kind": "changed",
                                         "legacy": "1250", "bridge": "1350"}]
    # SOAP 1.2 requests are sent as application/soap+xml
    assert all(ct.startswith("application/soap+xml") for _, ct in legacy.calls)
    # Paced at 8/s with a burst of 1: six calls are sent over at least 5/8 s. Arrival times at the
    # provider carry loopback jitter (a delayed first call shortens the span), so allow one interval
    # of slack; the bucket's exact schedule is unit-tested with a fake clock (test_migration_compare).
    times = [t for t, _ in legacy.calls]
    assert len(times) == 6 and times[-1] - times[0] >= 4 * 0.125, times
