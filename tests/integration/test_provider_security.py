"""WS-Security on the provider leg over real HTTP: the bridge signs its requests (X.509, SHA-256,
Timestamp) and accepts only responses its own verifier approves (tampered, unsigned and
wrongly-signed answers are refused), with a demo provider that requires and makes signatures."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest
import yaml
from lxml import etree

from viss_bridge.catalog.catalog import load_catalog
from viss_bridge.demo.legacy_catalog import legacy_manifest
from viss_bridge.demo.legacy_providers import ProviderServer, start_provider
from viss_bridge.upstream.errors import UpstreamError
from viss_bridge.upstream.pool import ProviderPool

FPR = "LV/GOV/90000100015/FPR"
VAR = "LV/GOV/90000300036/VAR"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    from viss_bridge.security.pki import init_dev_pki

    return init_dev_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def signed_provider(pki) -> Iterator[ProviderServer]:  # type: ignore[no-untyped-def]
    from viss_bridge.security.keys import SigningKey
    from viss_bridge.security.pki import TrustStore

    server = start_provider("persons", size=50)
    server.secure(SigningKey.from_identity(pki.providers[FPR]), TrustStore.from_files(pki.ca_cert))
    yield server
    server.stop()


def _dataset(tmp_path: Path, provider: ProviderServer, pki, *, sign: bool = True, pinned: str = FPR):  # type: ignore[no-untyped-def]
    security = {"trusted": [str(pki.ca_cert)], "pinned": [str(pki.providers[pinned].cert)],
                "require_signed_response": True}
    if sign:
        security["sign"] = {"cert": str(pki.node.cert), "key": str(pki.node.key)}
    manifest = legacy_manifest("persons", provider.url, "live", security=security,
                               retries={"attempts": 1, "backoff": 0})
    (tmp_path / "fpr_person_live.yaml").write_text(yaml.safe_dump(manifest, allow_unicode=True))
    return load_catalog(tmp_path).get("fpr_person_live")


class Wire:
    def __init__(self) -> None:
        self.calls: list = []  # type: ignore[type-arg]

    def record(self, call) -> None:  # type: ignore[no-untyped-def]
        self.calls.append(call)


def test_signed_request_and_verified_response(tmp_path, signed_provider, pki):  # type: ignore[no-untyped-def]
    signed_provider.reset()
    wire = Wire()
    dataset = _dataset(tmp_path, signed_provider, pki)
    code = sorted(signed_provider.state.records)[0]
    record = ProviderPool(wire).lookup(dataset, {"person_code": code})
    assert record is not None and record["person_code"] == code
    [call] = wire.calls
    sent = etree.fromstring(call.request)
    ns = {"wsse": "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd",
          "wsu": "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd",
          "ds": "http://www.w3.org/2000/09/xmldsig#"}
    assert sent.find(".//wsse:Security/wsu:Timestamp", ns) is not None
    method = sent.find(".//ds:SignatureMethod", ns).get("Algorithm")
    assert method.endswith(("rsa-sha256", "ecdsa-sha256"))
    assert {d.get("Algorithm") for d in sent.findall(".//ds:DigestMethod", ns)} == {"http://www.w3.org/2001/04/xmlenc#sha256"}
    # the captured response is what came over the wire: signed
    assert etree.fromstring(call.response).find(".//ds:Signature", ns) is not None


@pytest.mark.parametrize("mode, pinned, reason", [
    ("tamper", FPR, "not acceptable"),       # body changed after signing
    ("unsigned", FPR, "unsigned response"),  # signature stripped
    ("normal", VAR, "not pinned"),           # valid signature, but by another register's certificate
])
def test_unacceptable_responses_are_refused(tmp_path, signed_provider, pki, mode, pinned, reason):  # type: ignore[no-untyped-def]
    signed_provider.reset()
    signed_provider.set_mode(mode)
    dataset = _dataset(tmp_path, signed_provider, pki, pinned=pinned)
    with pytest.raises(UpstreamError) as caught:
        ProviderPool().lookup(dataset, {"person_code": sorted(signed_provider.state.records)[0]})
    assert caught.value.cause == "ProviderSecurityError"
    assert reason in caught.value.message
    signed_provider.reset()


def test_unsigned_request_gets_the_providers_security_fault(tmp_path, signed_provider, pki):  # type: ignore[no-untyped-def]
    signed_provider.reset()
    dataset = _dataset(tmp_path, signed_provider, pki, sign=False)
    with pytest.raises(UpstreamError) as caught:
        ProviderPool().lookup(dataset, {"person_code": sorted(signed_provider.state.records)[0]})
    assert caught.value.cause == "ProviderFault"
    assert "InvalidSecurity" in (caught.value.provider_fault_code or "")
