"""Helpers for the access tests: a TLS bridge, consumers with real certificates, raw X-Road calls."""

from __future__ import annotations

import itertools
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
from lxml import etree

from tests.conftest import RunningBridge, start_bridge
from tests.pki_helpers import TestCa
from tests.soap_helpers import NS_SOAP11, XROAD_TNS, xroad_lookup

PROVIDER = "LV/GOV/90000000000/VISSBRIDGE"  # the bridge's own id (default setting): data tracker services
TRACKER_TNS = "http://vissbridge.gov.lv/xroad/datatracker"
PROXY_HEADER = "X-SSL-Client-Cert"
_codes = itertools.count(1)


@dataclass
class Pki:
    ca: TestCa
    rogue: TestCa
    server: tuple[Path, Path]


def make_pki(folder: Path) -> Pki:
    ca = TestCa.create(folder / "ca", "test-ca")
    rogue = TestCa.create(folder / "rogue", "rogue-ca")
    return Pki(ca, rogue, ca.issue("bridge-server", server=True, common_name="127.0.0.1"))


def start_tls_bridge(folder: Path, pki: Pki, database_url: str | None = None, workers: int = 2,
                     extra_env: dict[str, str] | None = None) -> RunningBridge:
    """A production-like node: TLS with optional client certificates, no header trust, and a trusted proxy."""
    env = {"VISS_BRIDGE_TLS_CERTFILE": str(pki.server[0]), "VISS_BRIDGE_TLS_KEYFILE": str(pki.server[1]),
           "VISS_BRIDGE_TLS_CLIENT_CA": str(pki.ca.cert_path), "VISS_BRIDGE_TRUST_CLIENT_HEADER": "false",
           "VISS_BRIDGE_PROXY_CERT_HEADER": PROXY_HEADER, "VISS_BRIDGE_TRUSTED_PROXIES": "127.0.0.1/32",
           "VISS_BRIDGE_WSS_TRUST_CA": str(pki.ca.cert_path), **(extra_env or {})}
    return start_bridge(folder, database_url=database_url, workers=workers, extra_env=env,
                        server_ca=str(pki.ca.cert_path))


@dataclass
class Consumer:
    client_id: str
    cert: tuple[str, str]
    verify: str

    def post(self, url: str, body: bytes, cert: Any = "own", **kwargs: Any) -> requests.Response:
        return requests.post(url, data=body, headers={"Content-Type": "text/xml; charset=utf-8"},
                             cert=self.cert if cert == "own" else cert, verify=self.verify, timeout=30, **kwargs)

    def session(self) -> requests.Session:
        session = requests.Session()
        session.trust_env = False  # REQUESTS_CA_BUNDLE would otherwise override session.verify
        session.cert = self.cert
        session.verify = self.verify
        return session


def registry_for(bridge: RunningBridge):  # type: ignore[no-untyped-def]
    from viss_bridge.access.registry import AccessRegistry
    from viss_bridge.db import make_engine

    registry = AccessRegistry(make_engine(bridge.database_url))
    registry.create_schema()
    return registry


def new_consumer(bridge: RunningBridge, pki: Pki, label: str, client_id: str | None = None) -> Consumer:
    """Register a connection with a fresh certificate from the trusted CA."""
    from viss_bridge.access.identity import CertificateInfo

    client_id = client_id or f"LV/GOV/9{next(_codes):010d}/{label.upper()}"
    cert, key = pki.ca.issue(f"{label}-{uuid.uuid4().hex[:6]}", common_name=client_id)
    registry = registry_for(bridge)
    registry.add_client(client_id, label)
    registry.add_certificate(client_id, CertificateInfo.from_pem(cert.read_bytes()), actor="test")
    registry.engine.dispose()
    return Consumer(client_id, (str(cert), str(key)), str(pki.ca.cert_path))


def answer_body(response: requests.Response) -> etree._Element:
    assert response.status_code == 200, response.text
    return etree.fromstring(response.content).find(f"{{{NS_SOAP11}}}Body")[0]


def record_of(response: requests.Response) -> dict[str, str] | None:
    """The looked-up record's top-level fields (text), or None."""
    record = answer_body(response).find(f"{{{XROAD_TNS}}}record")
    if record is None:
        return None
    return {etree.QName(child).localname: (child.text or "") for child in record}


def fault_of(response: requests.Response) -> tuple[str, str]:
    root = etree.fromstring(response.content)
    fault = root.find(f"{{{NS_SOAP11}}}Body/{{{NS_SOAP11}}}Fault")
    assert fault is not None, response.text
    return fault.findtext("faultcode"), fault.findtext("faultstring")


def lookup(dataset: Any, client: str, key: dict[str, Any], user_id: str = "LV00000000001") -> bytes:
    return xroad_lookup(dataset, client, key, user_id=user_id)


def tracker_request(client: str, operation: str, person: str, **params: Any) -> bytes:
    from viss_bridge.facade.xroad_headers import XRoadId, request_envelope

    parts = PROVIDER.split("/")
    service = XRoadId("SERVICE", parts[0], parts[1], parts[2], parts[3], operation, None)
    body = etree.Element(f"{{{TRACKER_TNS}}}{operation}", nsmap={"dt": TRACKER_TNS})
    for name, value in params.items():
        etree.SubElement(body, f"{{{TRACKER_TNS}}}{name}").text = str(value)
    return request_envelope(client, service, body, str(uuid.uuid4()), user_id=person)


def usages_of(response: requests.Response) -> tuple[list[dict[str, str]], int]:
    body = answer_body(response)
    page = body.find(f"{{{TRACKER_TNS}}}usages")
    entries = [{etree.QName(c).localname: (c.text or "") for c in usage}
               for usage in page.findall(f"{{{TRACKER_TNS}}}usage")]
    return entries, int(page.findtext(f"{{{TRACKER_TNS}}}total"))



XROAD_SIGNED = tuple(f"{{http://x-road.eu/xsd/xroad.xsd}}{n}" for n in ("client", "service", "id", "userId", "issue"))


def signed(body: bytes, cert: tuple[str, str] | tuple[Path, Path], headers: tuple[str, ...] = XROAD_SIGNED) -> etree._Element:
    """The request signed with WS-Security (Body, Timestamp and the X-Road headers) by this certificate's key."""
    from viss_bridge.security.keys import SigningKey
    from viss_bridge.security.wssecurity import sign_envelope

    envelope = etree.fromstring(body)
    return sign_envelope(envelope, SigningKey.from_files(cert[0], cert[1]), sign_headers=headers)


def post_plain(url: str, body: bytes, verify: str) -> requests.Response:
    """POST over TLS without a client certificate."""
    return requests.post(url, data=body, headers={"Content-Type": "text/xml; charset=utf-8"}, verify=verify,
                         timeout=30)
