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
from viss_bridge.security.wssecurity import (NS_WSSE, NS_WSU, CertificateUntrusted, Freshness, SignatureInvalid,
                                             SignatureMissing, TimestampInvalid, TimestampMissing, sign_envelope,
                                             verify_envelope)
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


def test_old_created_with_a_far_expires_is_refused(key, trust) -> None:  # type: ignore[no-untyped-def]
    """A sender's far Expires must not stretch acceptance: the age counts from Created."""
    old = dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=1)
    with pytest.raises(TimestampInvalid, match="Expires beyond the allowed maximum"):
        verify_envelope(reparse(signed(key, now=old, ttl_seconds=3 * 3600)), trust)
    # even a fresh message may not claim an Expires past Created + max age (+ skew)
    with pytest.raises(TimestampInvalid, match="Expires beyond the allowed maximum"):
        verify_envelope(reparse(signed(key, ttl_seconds=3600)), trust)
    assert verify_envelope(reparse(signed(key, ttl_seconds=3600)), trust, freshness=Freshness(max_age=3600)).created


def test_a_message_without_a_timestamp_is_refused_when_one_is_required(key, trust) -> None:  # type: ignore[no-untyped-def]
    envelope = reparse(signed(key, with_timestamp=False))
    assert envelope.find(f".//{{{NS_WSU}}}Timestamp") is None
    with pytest.raises(TimestampMissing):
        verify_envelope(envelope, trust)
    assert verify_envelope(envelope, trust, require_timestamp=False).created is None


NOW = dt.datetime(2026, 12, 2, 12, 0, tzinfo=dt.timezone.utc)


def _ago(seconds: float) -> dt.datetime:
    return NOW - dt.timedelta(seconds=seconds)


@pytest.mark.parametrize("created, expires, problem", [
    (_ago(299), None, None),
    (_ago(299), _ago(299 - 300), None),
    (_ago(301), None, "more than 300 s ago"),
    (_ago(301), _ago(-3600), "Expires beyond the allowed maximum"),  # old Created, far Expires
    (_ago(400), _ago(400 - 360), "more than 300 s ago"),  # Expires at the limit still cannot extend the age
    (_ago(10), _ago(10 - 360), None),  # Expires = Created + max age + skew: allowed
    (_ago(10), _ago(10 - 361), "Expires beyond the allowed maximum"),
    (_ago(100), _ago(100 - 30), "expired"),
    (_ago(100), _ago(100 - 40), None),  # expired 60 s ago: within the clock skew
    (_ago(-59), None, None),  # a sender's clock slightly ahead
    (_ago(-61), None, "future"),
    (_ago(10), _ago(20), "before it was created"),
    (None, None, "no Created"),
])
def test_the_freshness_rule(created, expires, problem) -> None:  # type: ignore[no-untyped-def]
    rule = Freshness(max_age=300, clock_skew=60)
    if problem is None:
        rule.check(created, expires, NOW)
    else:
        with pytest.raises(TimestampInvalid, match=problem):
            rule.check(created, expires, NOW)


def test_an_id_is_remembered_for_as_long_as_its_message_is_acceptable() -> None:
    """Whatever the Timestamp, every moment a message passes the rule is before remember_until(Created)."""
    rule = Freshness(max_age=300, clock_skew=60)
    for created_offset in range(-400, 120, 7):
        created = _ago(created_offset)
        for expires in (None, created + dt.timedelta(seconds=60), created + dt.timedelta(seconds=360),
                        created + dt.timedelta(days=1)):
            for later in range(-120, 900, 11):
                moment = NOW + dt.timedelta(seconds=later)
                try:
                    rule.check(created, expires, moment)
                except TimestampInvalid:
                    continue
                assert moment <= rule.remember_until(created)


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


@pytest.mark.tool
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
