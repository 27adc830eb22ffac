"""Who is calling, proven: TLS client certificates, a trusted proxy's header, and the X-Road client check.

One production-like node (TLS, client certificates requested, header trust off,
127.0.0.1 trusted as a reverse proxy) serves the access test modules.
"""

from __future__ import annotations

import datetime as dt
import urllib.parse

import pytest
import requests
from lxml import etree

from tests.access_helpers import (PROXY_HEADER, Consumer, fault_of, lookup, new_consumer, post_plain, record_of,
                                  registry_for, signed)
from tests.conftest import DEMO_CONSUMER
from tests.soap_helpers import XROAD_TNS


def test_registered_certificate_reads_what_its_permission_allows(tls_bridge, pki, demo_catalog, demo_world):  # type: ignore[no-untyped-def]
    consumer = new_consumer(tls_bridge, pki, "reader")
    registry = registry_for(tls_bridge)
    registry.grant(consumer.client_id, "fpr_person")
    person = demo_world["fpr_person"][1]
    response = consumer.post(tls_bridge.xroad, lookup(demo_catalog.get("fpr_person"), consumer.client_id,
                                                      {"person_code": person["person_code"]}))
    record = record_of(response)
    assert record is not None and record["person_code"] == person["person_code"]
    assert record["last_name"] == person["last_name"] and "birth_date" in record
    # no permission for another restricted dataset
    code, text = fault_of(consumer.post(tls_bridge.xroad, lookup(demo_catalog.get("viis_education"), consumer.client_id,
                                                                 {"person_code": person["person_code"]})))
    assert code == "Server.ServerProxy.AccessDenied" and "no permission for viis_education" in text


def test_unregistered_certificate_is_denied_even_from_the_trusted_ca(tls_bridge, pki, demo_catalog, demo_world):  # type: ignore[no-untyped-def]
    cert, key = pki.ca.issue("stranger", common_name="LV/GOV/90000069281/VID-EDS")
    stranger = Consumer(DEMO_CONSUMER, (str(cert), str(key)), str(pki.ca.cert_path))
    person = demo_world["fpr_person"][2]["person_code"]
    code, text = fault_of(stranger.post(tls_bridge.xroad, lookup(demo_catalog.get("fpr_person"), DEMO_CONSUMER,
                                                                 {"person_code": person})))
    assert code == "Server.ServerProxy.AccessDenied"
    assert "not registered to any connection" in text and "SHA-256" in text
    # ...and for open data too: a presented identity must be a known one
    address = demo_world["vzd_address"][0]["address_code"]
    code, _ = fault_of(stranger.post(tls_bridge.xroad, lookup(demo_catalog.get("vzd_address"), DEMO_CONSUMER,
                                                              {"address_code": address})))
    assert code == "Server.ServerProxy.AccessDenied"


def test_certificate_from_another_ca_fails_the_tls_handshake(tls_bridge, pki, demo_catalog, demo_world):  # type: ignore[no-untyped-def]
    cert, key = pki.rogue.issue("rogue-client")
    rogue = Consumer(DEMO_CONSUMER, (str(cert), str(key)), str(pki.ca.cert_path))
    person = demo_world["fpr_person"][2]["person_code"]
    with pytest.raises(requests.exceptions.ConnectionError):  # SSLError is a ConnectionError
        rogue.post(tls_bridge.xroad, lookup(demo_catalog.get("fpr_person"), DEMO_CONSUMER, {"person_code": person}))
    health = requests.get(f"{tls_bridge.url}/health", verify=str(pki.ca.cert_path), timeout=5).json()
    assert health["status"] == "ok" and health["authentication"]["mode"] == "certificates"
    assert health["authentication"]["tls_client_certificates"] and health["authentication"]["ws_security"]


def test_header_naming_another_client_is_inconsistent(tls_bridge, pki, demo_catalog, demo_world):  # type: ignore[no-untyped-def]
    consumer = new_consumer(tls_bridge, pki, "mismatch")
    person = demo_world["fpr_person"][3]["person_code"]
    # its certificate, but the X-Road header claims the State Revenue Service (which holds fpr_person)
    code, text = fault_of(consumer.post(tls_bridge.xroad, lookup(demo_catalog.get("fpr_person"), DEMO_CONSUMER,
                                                                 {"person_code": person})))
    assert code == "Client.InconsistentHeaders"
    assert DEMO_CONSUMER in text and consumer.client_id in text


def test_header_alone_is_not_trusted_in_production_mode(tls_bridge, pki, demo_catalog, demo_world):  # type: ignore[no-untyped-def]
    person = demo_world["fpr_person"][3]["person_code"]
    body = lookup(demo_catalog.get("fpr_person"), DEMO_CONSUMER, {"person_code": person})
    response = requests.post(tls_bridge.xroad, data=body, headers={"Content-Type": "text/xml"},
                             verify=str(pki.ca.cert_path), timeout=30)
    code, text = fault_of(response)
    assert code == "Server.ServerProxy.AccessDenied" and "not authenticated" in text
    # open data needs no identity
    address = demo_world["vzd_address"][1]["address_code"]
    response = requests.post(tls_bridge.xroad, verify=str(pki.ca.cert_path), timeout=30,
                             data=lookup(demo_catalog.get("vzd_address"), DEMO_CONSUMER, {"address_code": address}),
                             headers={"Content-Type": "text/xml"})
    assert record_of(response)["address_code"] == address


def test_expired_and_future_permissions_are_refused_clearly(tls_bridge, pki, demo_catalog, demo_world):  # type: ignore[no-untyped-def]
    now = dt.datetime.now(dt.timezone.utc)
    registry = registry_for(tls_bridge)
    expired = new_consumer(tls_bridge, pki, "expired")
    old = registry.grant(expired.client_id, "fpr_person", purpose="audit 2025", legal_basis="contract 7/2025",
                         valid_from=now - dt.timedelta(days=30), valid_to=now - dt.timedelta(days=1))
    future = new_consumer(tls_bridge, pki, "future")
    later = registry.grant(future.client_id, "fpr_person", purpose="census", legal_basis="law X",
                           valid_from=now + dt.timedelta(days=1))
    person = demo_world["fpr_person"][4]["person_code"]
    dataset = demo_catalog.get("fpr_person")
    code, text = fault_of(expired.post(tls_bridge.xroad, lookup(dataset, expired.client_id, {"person_code": person})))
    assert code == "Server.ServerProxy.AccessDenied" and old.number in text and "expired" in text
    code, text = fault_of(future.post(tls_bridge.xroad, lookup(dataset, future.client_id, {"person_code": person})))
    assert code == "Server.ServerProxy.AccessDenied" and later.number in text and "valid only from" in text


def test_certificate_forwarded_by_a_trusted_proxy(tls_bridge, pki, demo_catalog, demo_world):  # type: ignore[no-untyped-def]
    consumer = new_consumer(tls_bridge, pki, "proxied")
    registry_for(tls_bridge).grant(consumer.client_id, "fpr_person")
    pem = open(consumer.cert[0]).read()
    person = demo_world["fpr_person"][5]["person_code"]
    body = lookup(demo_catalog.get("fpr_person"), consumer.client_id, {"person_code": person})
    # nginx style: $ssl_client_escaped_cert (URL-encoded PEM); no TLS client certificate on this hop
    headers = {"Content-Type": "text/xml", PROXY_HEADER: urllib.parse.quote(pem)}
    response = requests.post(tls_bridge.xroad, data=body, headers=headers, verify=str(pki.ca.cert_path), timeout=30)
    assert record_of(response)["person_code"] == person
    # the same header from an address that is not a trusted proxy is ignored
    from requests_toolbelt.adapters.source import SourceAddressAdapter

    session = requests.Session()
    session.mount("https://", SourceAddressAdapter("127.0.0.2"))
    response = session.post(tls_bridge.xroad, data=body, headers=headers, verify=str(pki.ca.cert_path), timeout=30)
    code, text = fault_of(response)
    assert code == "Server.ServerProxy.AccessDenied" and "not authenticated" in text


def test_ws_security_signature_authenticates_without_a_tls_certificate(tls_bridge, pki, demo_catalog, demo_world):  # type: ignore[no-untyped-def]
    consumer = new_consumer(tls_bridge, pki, "signer")
    registry_for(tls_bridge).grant(consumer.client_id, "fpr_person")
    ca = str(pki.ca.cert_path)
    dataset = demo_catalog.get("fpr_person")
    person = demo_world["fpr_person"][6]["person_code"]
    body = lookup(dataset, consumer.client_id, {"person_code": person})
    response = post_plain(tls_bridge.xroad, etree.tostring(signed(body, consumer.cert)), ca)
    assert record_of(response)["person_code"] == person

    # signed by a registered connection, but naming another client
    other = lookup(dataset, DEMO_CONSUMER, {"person_code": person})
    code, _ = fault_of(post_plain(tls_bridge.xroad, etree.tostring(signed(other, consumer.cert)), ca))
    assert code == "Client.InconsistentHeaders"

    # only the Body signed: the X-Road headers (who asks, for which official) must be signed too
    code, text = fault_of(post_plain(tls_bridge.xroad, etree.tostring(signed(body, consumer.cert, headers=())), ca))
    assert code == "Server.ServerProxy.AccessDenied" and "not covered by the signature" in text

    # the Body changed after signing
    envelope = signed(body, consumer.cert)
    envelope.find(f".//{{{XROAD_TNS}}}person_code").text = demo_world["fpr_person"][7]["person_code"]
    code, text = fault_of(post_plain(tls_bridge.xroad, etree.tostring(envelope), ca))
    assert code == "Server.ServerProxy.AccessDenied" and "InvalidSignature" in text

    # a trusted CA's certificate that no connection holds, and a certificate from an untrusted CA
    stranger = pki.ca.issue("unregistered-signer")
    code, text = fault_of(post_plain(tls_bridge.xroad, etree.tostring(signed(body, stranger)), ca))
    assert code == "Server.ServerProxy.AccessDenied" and "not registered to any connection" in text
    rogue = pki.rogue.issue("rogue-signer")
    code, text = fault_of(post_plain(tls_bridge.xroad, etree.tostring(signed(body, rogue)), ca))
    assert code == "Server.ServerProxy.AccessDenied" and "UntrustedCertificate" in text

    # TLS certificate and signature must name the same connection
    code, _ = fault_of(consumer.post(tls_bridge.xroad, etree.tostring(signed(body, stranger))))
    assert code == "Client.InconsistentHeaders"
