"""WS-Security and XML-DSig with real xmlsec signatures: what passes, and every attack that must not."""

from __future__ import annotations

import copy
import datetime as dt
import shutil
import subprocess

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from lxml import etree

from viss_bridge.security.keys import SigningKey
from viss_bridge.security.pki import DEMO_CONSUMERS, TrustStore, init_dev_pki, issue_certificate, load_certificate, \
    load_private_key, subject_cn
from viss_bridge.security.wssecurity import (NS_WSSE, NS_WSU, CertificateUntrusted, SignatureInvalid,
                                             SignatureMissing, TimestampInvalid, sign_envelope, verify_envelope)
from viss_bridge.security.xmldsig import NS_DS, sign_enveloped, verify_enveloped

S = "http://schemas.xmlsoap.org/soap/envelope/"
ENVELOPE = f"""<s:Envelope xmlns:s="{S}"><s:Header><h:id xmlns:h="urn:h">m-1</h:id></s:Header>
<s:Body><p:getPerson xmlns:p="urn:p"><p:code>010190-12345</p:code></p:getPerson></s:Body></s:Envelope>"""


@pytest.fixture(scope="module")
def trust(dev_pki):  # type: ignore[no-untyped-def]
    return TrustStore.from_files(dev_pki.ca_cert)


@pytest.fixture(scope="module", params=[DEMO_CONSUMERS[0], DEMO_CONSUMERS[1]], ids=["rsa", "ecdsa"])
def key(request, dev_pki):  # type: ignore[no-untyped-def]
    return SigningKey.from_identity(dev_pki.consumers[request.param])


def signed(key: SigningKey, **kwargs) -> etree._Element:  # type: ignore[no-untyped-def]
    return sign_envelope(etree.fromstring(ENVELOPE), key, **kwargs)


def reparse(element: etree._Element) -> etree._Element:
    return etree.fromstring(etree.tostring(element))


def test_round_trip_names_the_signer_and_returns_the_signed_body(key, trust) -> None:  # type: ignore[no-untyped-def]
    envelope = reparse(signed(key))
    verified = verify_envelope(envelope, trust)
    assert subject_cn(verified.certificate) == subject_cn(key.certificate)
    assert verified.body is envelope.find(f"{{{S}}}Body")
    text = etree.tostring(envelope).decode()
    assert "sha256" in text and "sha1" not in text.lower().replace("sha1\"", "")


def test_tampered_body_is_invalid(key, trust) -> None:  # type: ignore[no-untyped-def]
    envelope = reparse(signed(key))
    envelope.find(".//{urn:p}code").text = "999999-99999"
    with pytest.raises(SignatureInvalid):
        verify_envelope(envelope, trust)


def test_signature_wrapping_is_detected(key, trust) -> None:  # type: ignore[no-untyped-def]
    envelope = reparse(signed(key))
    body = envelope.find(f"{{{S}}}Body")
    # Classic XSW: move the signed Body into the header, put an evil Body where the processor looks.
    wrapper = etree.SubElement(envelope.find(f"{{{S}}}Header"), "{urn:evil}Wrapper")
    wrapper.append(copy.deepcopy(body))
    body.find(".//{urn:p}code").text = "evil"
    del body.attrib[f"{{{NS_WSU}}}Id"]
    with pytest.raises(SignatureInvalid):
        verify_envelope(envelope, trust)
    # Same Id on both the evil and the original Body.
    envelope = reparse(signed(key))
    body = envelope.find(f"{{{S}}}Body")
    wrapper = etree.SubElement(envelope.find(f"{{{S}}}Header"), "{urn:evil}Wrapper")
    wrapper.append(copy.deepcopy(body))
    body.find(".//{urn:p}code").text = "evil"
    with pytest.raises(SignatureInvalid, match="more than once|does not match"):
        verify_envelope(envelope, trust)


def test_unsigned_message_is_missing_signature(trust) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(SignatureMissing):
        verify_envelope(etree.fromstring(ENVELOPE), trust)


def test_certificate_from_another_ca_is_untrusted(key, trust, tmp_path) -> None:  # type: ignore[no-untyped-def]
    other = init_dev_pki(tmp_path / "other")
    foreign = SigningKey.from_identity(other.consumers[DEMO_CONSUMERS[0]])
    with pytest.raises(CertificateUntrusted):
        verify_envelope(reparse(signed(foreign)), trust)


def test_expired_certificate_is_untrusted(dev_pki, trust) -> None:  # type: ignore[no-untyped-def]
    ca, ca_key = load_certificate(dev_pki.ca_cert), load_private_key(dev_pki.ca_key)
    private = rsa.generate_private_key(65537, 2048)
    old = issue_certificate(ca, ca_key, DEMO_CONSUMERS[0], private, days=1,
                            not_before=dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=3))
    with pytest.raises(CertificateUntrusted, match="not valid"):
        verify_envelope(reparse(signed(SigningKey(old, private))), trust)


def test_expired_and_future_timestamps(key, trust) -> None:  # type: ignore[no-untyped-def]
    past = dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=1)
    with pytest.raises(TimestampInvalid, match="expired"):
        verify_envelope(reparse(signed(key, now=past, ttl_seconds=60)), trust)
    future = dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=1)
    with pytest.raises(TimestampInvalid, match="future"):
        verify_envelope(reparse(signed(key, now=future)), trust)


def test_sha1_is_refused(key, trust) -> None:  # type: ignore[no-untyped-def]
    envelope = reparse(signed(key))
    method = envelope.find(f".//{{{NS_DS}}}SignatureMethod")
    method.set("Algorithm", "http://www.w3.org/2000/09/xmldsig#rsa-sha1")
    with pytest.raises(SignatureInvalid, match="not allowed"):
        verify_envelope(envelope, trust)
    envelope = reparse(signed(key))
    envelope.find(f".//{{{NS_DS}}}DigestMethod").set("Algorithm", "http://www.w3.org/2000/09/xmldsig#sha1")
    with pytest.raises(SignatureInvalid, match="not allowed"):
        verify_envelope(envelope, trust)


def test_swapped_certificate_token_fails(dev_pki, key, trust) -> None:  # type: ignore[no-untyped-def]
    envelope = reparse(signed(key))
    other = SigningKey.from_identity(dev_pki.consumers[DEMO_CONSUMERS[2]])
    token = envelope.find(f".//{{{NS_WSSE}}}BinarySecurityToken")
    import base64

    token.text = base64.b64encode(other.certificate_der).decode()
    with pytest.raises(SignatureInvalid):
        verify_envelope(envelope, trust)


def test_enveloped_document_signature_verifies_here_and_with_xmlsec1(dev_pki, trust, tmp_path) -> None:  # type: ignore[no-untyped-def]
    key = SigningKey.from_identity(dev_pki.node)
    document = etree.fromstring(b"<seal xmlns='urn:viss-bridge:seal'><root>abc</root></seal>")
    sign_enveloped(document, key)
    assert subject_cn(verify_enveloped(reparse(document), trust)) == subject_cn(key.certificate)
    tampered = reparse(document)
    tampered.find("{urn:viss-bridge:seal}root").text = "abd"
    with pytest.raises(SignatureInvalid):
        verify_enveloped(tampered, trust)
    if shutil.which("xmlsec1") is None:
        pytest.skip("xmlsec1 (Debian package xmlsec1) is not installed")
    path = tmp_path / "seal.xml"
    path.write_bytes(etree.tostring(document, xml_declaration=True, encoding="UTF-8"))
    ok = subprocess.run(["xmlsec1", "--verify", "--trusted-pem", str(dev_pki.ca_cert), str(path)],
                        capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    path.write_bytes(etree.tostring(tampered, xml_declaration=True, encoding="UTF-8"))
    bad = subprocess.run(["xmlsec1", "--verify", "--trusted-pem", str(dev_pki.ca_cert), str(path)],
                         capture_output=True, text=True)
    assert bad.returncode != 0
