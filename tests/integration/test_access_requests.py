"""Access requests instead of agreements: request -> approve -> call -> revoke -> refused, over SOAP and the CLI."""

from __future__ import annotations

import json

import pytest
import zeep
from zeep.exceptions import Fault

from tests.access_helpers import Consumer, fault_of, lookup, new_consumer, record_of, registry_for
from tests.conftest import cli

SAIS = "LV/GOV/90000500057/SAIS"  # owner of vsaa_social_insurance
ASKED = ["insured", "insurance_status", "contribution_months"]


def access_client(bridge, consumer: Consumer) -> zeep.Client:  # type: ignore[no-untyped-def]
    return zeep.Client(f"{bridge.url}/access?wsdl", transport=zeep.Transport(session=consumer.session()))


def as_(consumer: Consumer) -> dict[str, object]:
    return {"_soapheaders": {"caller": {"client": consumer.client_id}}}


@pytest.fixture(scope="module")
def owner(tls_bridge, pki) -> Consumer:  # type: ignore[no-untyped-def]
    return new_consumer(tls_bridge, pki, "sais", client_id=SAIS)


def test_request_approve_call_revoke_refused_over_soap(tls_bridge, pki, owner, demo_catalog, demo_world):  # type: ignore[no-untyped-def]
    consumer = new_consumer(tls_bridge, pki, "applicant")
    outsider = new_consumer(tls_bridge, pki, "outsider")
    dataset = demo_catalog.get("vsaa_social_insurance")
    person = demo_world["vsaa_social_insurance"][7]
    call = lambda: consumer.post(tls_bridge.xroad, lookup(dataset, consumer.client_id,  # noqa: E731
                                                          {"person_code": person["person_code"]}))
    code, text = fault_of(call())
    assert code == "Server.ServerProxy.AccessDenied" and "no permission" in text

    mine = access_client(tls_bridge, consumer)
    request = mine.service.requestAccess(dataset="vsaa_social_insurance", field=ASKED,
                                         purpose="benefit eligibility", legalBasis="Law on State Social Insurance, s. 5",
                                         legalObligation=False, quota=100, **as_(consumer))
    assert request.status == "pending" and request.client == consumer.client_id and request.field == sorted(ASKED)

    # somebody who is not the data owner can neither see nor decide it
    others = access_client(tls_bridge, outsider)
    assert request.requestId not in [r.requestId for r in others.service.listRequests(**as_(outsider))]
    with pytest.raises(Fault) as refused:
        others.service.approveRequest(requestId=request.requestId, **as_(outsider))
    assert refused.value.code == "Server.ServerProxy.AccessDenied"

    # the owner lists pending requests and approves, narrowing the fields and the quota
    sais = access_client(tls_bridge, owner)
    pending = [r.requestId for r in sais.service.listRequests(status="pending", **as_(owner))]
    assert request.requestId in pending
    with pytest.raises(Fault) as widened:
        sais.service.approveRequest(requestId=request.requestId, field=ASKED + ["periods"], **as_(owner))
    assert widened.value.code == "Client.InvalidRequest" and "periods" in widened.value.message
    permission = sais.service.approveRequest(requestId=request.requestId, field=["insured", "insurance_status"],
                                             quota=50, note="contribution history not needed", **as_(owner))
    assert permission.status == "active" and permission.field == ["insurance_status", "insured"]
    assert permission.quota == 50 and permission.requestId == request.requestId

    record = record_of(call())
    assert record == {"person_code": person["person_code"], "insured": str(person["insured"]).lower(),
                      "insurance_status": person["insurance_status"]}
    held = {p.number: p for p in mine.service.listPermissions(**as_(consumer))}
    assert held[permission.number].used == 1

    sais.service.revokePermission(number=permission.number, reason="purpose fulfilled", **as_(owner))
    code, text = fault_of(call())
    assert code == "Server.ServerProxy.AccessDenied" and "revoked" in text and "purpose fulfilled" in text

    # the history of the permission can be shown step by step
    registry = registry_for(tls_bridge)
    steps = [(e.action, e.actor) for e in registry.audit.events(request.requestId)]
    assert steps == [("request.created", consumer.client_id), ("request.approved", SAIS)]
    steps = [(e.action, e.actor) for e in registry.audit.events(permission.number)]
    assert steps == [("permission.granted", SAIS), ("permission.revoked", SAIS)]


def test_rejection_carries_a_reason_to_the_consumer(tls_bridge, pki, owner):  # type: ignore[no-untyped-def]
    consumer = new_consumer(tls_bridge, pki, "rejected")
    mine = access_client(tls_bridge, consumer)
    request = mine.service.requestAccess(dataset="vsaa_social_insurance", purpose="marketing",
                                         legalBasis="consent", **as_(consumer))
    sais = access_client(tls_bridge, owner)
    with pytest.raises(Fault) as empty:
        sais.service.rejectRequest(requestId=request.requestId, reason=" ", **as_(owner))
    assert empty.value.code == "Client.InvalidRequest"
    sais.service.rejectRequest(requestId=request.requestId, reason="marketing is not a lawful purpose", **as_(owner))
    (seen,) = [r for r in mine.service.listRequests(**as_(consumer)) if r.requestId == request.requestId]
    assert seen.status == "rejected" and seen.reason == "marketing is not a lawful purpose"
    with pytest.raises(Fault) as again:
        sais.service.approveRequest(requestId=request.requestId, **as_(owner))
    assert "already rejected" in again.value.message


def test_access_service_needs_an_authenticated_caller(tls_bridge, pki):  # type: ignore[no-untyped-def]
    import requests

    session = requests.Session()
    session.trust_env = False
    session.verify = str(pki.ca.cert_path)
    client = zeep.Client(f"{tls_bridge.url}/access?wsdl", transport=zeep.Transport(session=session))
    with pytest.raises(Fault) as refused:
        client.service.requestAccess(dataset="fpr_person", purpose="x", legalBasis="y",
                                     _soapheaders={"caller": {"client": SAIS}})
    assert refused.value.code == "Server.ServerProxy.AccessDenied"


def test_the_documented_cli_cycle(tls_bridge, pki, demo_catalog, demo_world):  # type: ignore[no-untyped-def]
    """The commands of docs/access.md, run as written, against the same database the node serves from."""
    consumer = new_consumer(tls_bridge, pki, "clicycle")
    env = tls_bridge.env()
    out = cli("access", "request", consumer.client_id, "fpr_person", "--purpose", "address verification",
              "--legal-basis", "Law on the Population Register, s. 9", "--fields", "last_name,declared_address_code",
              env=env).stdout
    request_id = out.split()[2]
    assert request_id.startswith("R-") and "pending" in out
    listed = json.loads(cli("access", "requests", "--status", "pending", "--dataset", "fpr_person", "--json",
                            env=env).stdout)
    assert request_id in [r["request_id"] for r in listed]
    out = cli("access", "approve", request_id, "--fields", "declared_address_code", "--valid-to", "2099-12-31",
              env=env).stdout
    number = out.split("permission ")[1].split()[0]
    person = demo_world["fpr_person"][30]
    dataset = demo_catalog.get("fpr_person")
    record = record_of(consumer.post(tls_bridge.xroad, lookup(dataset, consumer.client_id,
                                                              {"person_code": person["person_code"]})))
    assert record == {"person_code": person["person_code"],
                      "declared_address_code": person["declared_address_code"]}
    shown = json.loads(cli("access", "permissions", "--client", consumer.client_id, "--json", env=env).stdout)
    assert [(p["number"], p["used"], p["fields"]) for p in shown] == [(number, 1, ["declared_address_code"])]
    cli("access", "revoke", number, "--reason", "test over", env=env)
    code, text = fault_of(consumer.post(tls_bridge.xroad, lookup(dataset, consumer.client_id,
                                                                 {"person_code": person["person_code"]})))
    assert code == "Server.ServerProxy.AccessDenied" and number in text
    history = cli("access", "history", number, env=env).stdout
    assert "permission.granted" in history and "permission.revoked" in history
    rejected = cli("access", "approve", "R-0000-NOPE", env=env, check=False)
    assert rejected.returncode != 0 and "no access request" in rejected.stderr


def test_a_cli_looking_name_gets_no_operator_rights(tls_bridge, pki, bridge):  # type: ignore[no-untyped-def]
    """Issue 9.4: operator rights come from the local CLI only, never from a caller id spelled ``cli:...``,
    neither from a connection registered under such a name nor from a header claiming one."""
    import datetime as dt
    import uuid

    from sqlalchemy import insert

    from viss_bridge.access.identity import CertificateInfo
    from viss_bridge.access.tables import clients

    applicant = new_consumer(tls_bridge, pki, "applicant2")
    request = access_client(tls_bridge, applicant).service.requestAccess(
        dataset="vsaa_social_insurance", purpose="benefit eligibility", legalBasis="consent", **as_(applicant))
    # a connection whose id looks like the CLI's actor (written straight into the table: such an id
    # cannot be registered through the CLI any more, but an old database may hold one)
    name = f"cli:root{uuid.uuid4().hex[:4]}"
    cert, key = pki.ca.issue(f"cli-{uuid.uuid4().hex[:6]}", common_name="cli-root")
    registry = registry_for(tls_bridge)
    with registry.engine.begin() as conn:
        conn.execute(insert(clients).values(client_id=name, name="impostor", created_at=dt.datetime.now(dt.timezone.utc)))
    registry.add_certificate(name, CertificateInfo.from_pem(cert.read_bytes()), actor="test")
    registry.engine.dispose()
    impostor = Consumer(name, (str(cert), str(key)), str(pki.ca.cert_path))
    service = access_client(tls_bridge, impostor).service
    # no caller header: the connection is the one its certificate is registered to
    assert request.requestId not in [r.requestId for r in service.listRequests()]
    with pytest.raises(Fault) as refused:
        service.approveRequest(requestId=request.requestId)
    assert refused.value.code == "Server.ServerProxy.AccessDenied" and "not the owner" in refused.value.message

    # a development node believes the caller header, but a claimed "cli:" name is no operator either
    env = bridge.env()
    demo_client = "LV/GOV/90000069281/VID-EDS"
    out = cli("access", "request", demo_client, "vsaa_social_insurance", "--purpose", "benefit eligibility",
              "--legal-basis", "consent", env=env).stdout
    request_id = out.split()[2]
    plain = zeep.Client(f"{bridge.url}/access?wsdl").service
    with pytest.raises(Fault) as claimed:
        plain.approveRequest(requestId=request_id, _soapheaders={"caller": {"client": "cli:operator"}})
    assert claimed.value.code.startswith(("Server.ServerProxy.AccessDenied", "Client.InvalidClientIdentifier"))
    listed = json.loads(cli("access", "requests", "--status", "pending", "--json", env=env).stdout)
    assert request_id in [r["request_id"] for r in listed]  # still pending: nobody decided it


def test_a_configured_operator_connection_decides_for_every_owner(tmp_path_factory, pki):  # type: ignore[no-untyped-def]
    """The other way to operator rights (issue 9.4): the operator_clients setting names the connection."""
    from tests.access_helpers import start_tls_bridge

    operator_id = "LV/GOV/90000000000/OPERATOR"
    node = start_tls_bridge(tmp_path_factory.mktemp("operator-bridge"), pki, workers=1,
                            extra_env={"VISS_BRIDGE_OPERATOR_CLIENTS": operator_id})
    try:
        applicant = new_consumer(node, pki, "applicant3")
        operator = new_consumer(node, pki, "operator", client_id=operator_id)
        plain = new_consumer(node, pki, "notoperator")
        request = access_client(node, applicant).service.requestAccess(
            dataset="vsaa_social_insurance", purpose="benefit eligibility", legalBasis="consent", **as_(applicant))
        with pytest.raises(Fault) as refused:
            access_client(node, plain).service.approveRequest(requestId=request.requestId, **as_(plain))
        assert refused.value.code == "Server.ServerProxy.AccessDenied"
        service = access_client(node, operator).service
        assert request.requestId in [r.requestId for r in service.listRequests(status="pending", **as_(operator))]
        permission = service.approveRequest(requestId=request.requestId, **as_(operator))
        assert permission.client == applicant.client_id and permission.status == "active"
    finally:
        node.stop()
