"""The access package on its own: migration, exact counting, narrowing rules, audit sinks, identities."""

from __future__ import annotations

import datetime as dt
import threading
import urllib.parse
from pathlib import Path

import pytest
from sqlalchemy import insert, select

from viss_bridge.access import audit
from viss_bridge.access.identity import (Authenticator, CertificateInfo, IdentityProblem, PEER_CERT_ENV,
                                         certificate_from_header)
from viss_bridge.access.registry import AccessRegistry, PermissionProblem, UsageRow, UseRefused
from viss_bridge.access.requests import AccessRequests, NotAllowed
from viss_bridge.access.tables import client_permissions, clients, usage_entries
from viss_bridge.access.tracker import DataTracker, person_key
from viss_bridge.catalog.manifest import parse_manifest
from viss_bridge.db import make_engine

DATASET = parse_manifest("dataset: people\ntitle: {lv: a, en: b}\nowner: LV/GOV/90000000001/OWNER\nkey: [code]\n"
                         "subject: code\nfields:\n  - {name: code, type: string}\n  - {name: name, type: string}\n"
                         "  - {name: income, type: integer}\n", "people.yaml")
CLIENT = "LV/GOV/90000000002/USER"


@pytest.fixture()
def registry(tmp_path: Path) -> AccessRegistry:
    registry = AccessRegistry(make_engine(f"sqlite:///{tmp_path / 'access.sqlite'}"))
    registry.create_schema()
    registry.add_client(CLIENT, "user")
    return registry


def test_simple_permissions_of_the_first_version_are_migrated(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'old.sqlite'}")
    from viss_bridge.access.tables import metadata

    metadata.create_all(engine)
    now = dt.datetime.now(dt.timezone.utc)
    with engine.begin() as conn:
        conn.execute(insert(clients).values(client_id=CLIENT, name="old", created_at=now))
        conn.execute(insert(client_permissions).values(client_id=CLIENT, dataset="people", granted_at=now))
    for _ in range(2):  # several workers start: migration is idempotent
        AccessRegistry(engine).create_schema()
    registry = AccessRegistry(engine)
    (permission,) = registry.permissions(client_id=CLIENT)
    assert permission.fields is None and permission.valid_to is None and permission.quota is None
    assert permission.legal_basis == "given" and permission.usable()
    with engine.connect() as conn:
        assert conn.execute(select(client_permissions)).all() == []
    assert [e.action for e in registry.audit.events(permission.number)] == [audit.PERMISSION_MIGRATED]


def test_plain_grant_is_idempotent_and_revoke_by_dataset(registry: AccessRegistry) -> None:
    first = registry.grant(CLIENT, "people", legal_basis="demo", purpose="demo")
    assert registry.grant(CLIENT, "people", legal_basis="demo", purpose="demo").number == first.number
    assert registry.allowed_datasets(CLIENT) == {"people"}
    assert registry.revoke(CLIENT, "people") == [first.number]
    assert registry.allowed_datasets(CLIENT) == set()
    with pytest.raises(PermissionProblem):
        registry.grant("LV/GOV/1/NOBODY", "people")


def test_use_count_is_exact_with_many_threads(registry: AccessRegistry) -> None:
    permission = registry.grant(CLIENT, "people", purpose="p", legal_basis="l", quota=25)
    outcomes: list[bool] = []
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(10):
            try:
                registry.use(permission.number, [UsageRow("010190-10009", CLIENT, "people", "p", permission.number,
                                                          None, None)])
                ok = True
            except UseRefused as exc:
                assert exc.reason == "exhausted"
                ok = False
            with lock:
                outcomes.append(ok)

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert outcomes.count(True) == 25 and len(outcomes) == 60
    assert registry.permission(permission.number).used == 25
    with registry.engine.connect() as conn:
        assert len(conn.execute(select(usage_entries)).all()) == 25  # no entry without a counted use


def test_approval_may_only_narrow(registry: AccessRegistry) -> None:
    requests = AccessRequests(registry, {"people": DATASET}.get)
    with pytest.raises(PermissionProblem, match="no field"):
        requests.submit(CLIENT, "people", purpose="p", legal_basis="l", fields=["salary"])
    request = requests.submit(CLIENT, "people", purpose="p", legal_basis="l", fields=["name", "income"], quota=10,
                              valid_to=dt.datetime(2099, 1, 1, tzinfo=dt.timezone.utc))
    owner = "LV/GOV/90000000001/OWNER"
    with pytest.raises(NotAllowed):
        requests.approve(request.request_id, CLIENT)
    with pytest.raises(PermissionProblem, match="only lower"):
        requests.approve(request.request_id, owner, quota=11)
    with pytest.raises(PermissionProblem, match="only shorten"):
        requests.approve(request.request_id, owner, valid_to=dt.datetime(2100, 1, 1, tzinfo=dt.timezone.utc))
    # the member an owner subsystem belongs to may decide too
    decided, permission = requests.approve(request.request_id, "LV/GOV/90000000001", fields=["name"])
    assert decided.status == "approved" and decided.permission_number == permission.number
    assert permission.fields == ("name",) and permission.quota == 10 and permission.request_id == request.request_id
    assert permission.legal_basis == "l" and permission.purpose == "p"


class _FailingSink:
    def record(self, event: audit.AuditEvent, connection: object) -> None:
        raise OSError("message log is down")


class _ListSink:
    def __init__(self) -> None:
        self.events: list[audit.AuditEvent] = []

    def record(self, event: audit.AuditEvent, connection: object) -> None:
        assert connection is not None  # the change's own transaction
        self.events.append(event)


def test_audit_sinks_see_every_step_and_a_failing_sink_rolls_the_step_back(registry: AccessRegistry) -> None:
    seen = _ListSink()
    registry.audit.sinks.append(seen)
    permission = registry.grant(CLIENT, "people", purpose="p", legal_basis="l", fields=["name"])
    assert [(e.action, e.object_id) for e in seen.events] == [(audit.PERMISSION_GRANTED, permission.number)]
    registry.audit.sinks.append(_FailingSink())
    with pytest.raises(audit.AuditFailed):
        registry.revoke_permission(permission.number, "cli:test", "x")
    assert registry.permission(permission.number).status == "active"
    tracker = DataTracker(registry.engine, registry.audit)
    with pytest.raises(audit.AuditFailed):
        tracker.restrict("010190-10009", "people")
    assert tracker.restrictions() == []


def test_person_codes_are_normalised() -> None:
    assert person_key("LV010190-10009") == person_key("010190-10009") == person_key(" 01019010009 ") == "01019010009"
    assert person_key("lv32123412345") == "32123412345"


def _cert(tmp_path: Path, label: str = "c") -> CertificateInfo:
    from tests.pki_helpers import TestCa

    ca = TestCa.create(tmp_path / "ca")
    cert, _ = ca.issue(label)
    return CertificateInfo.from_pem(cert.read_bytes())


def test_forwarded_certificate_formats(tmp_path: Path) -> None:
    info = _cert(tmp_path)
    pem = info.pem
    assert certificate_from_header(urllib.parse.quote(pem)).fingerprint == info.fingerprint  # nginx
    assert certificate_from_header(pem.replace("\n", " ")).fingerprint == info.fingerprint  # Apache
    body = "".join(pem.strip().splitlines()[1:-1])
    assert certificate_from_header(body).fingerprint == info.fingerprint  # base64 DER
    with pytest.raises(ValueError):
        certificate_from_header("not a certificate")


def test_authenticator_rules(tmp_path: Path) -> None:
    info = _cert(tmp_path)
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    der = x509.load_pem_x509_certificate(info.pem.encode()).public_bytes(serialization.Encoding.DER)
    known = {info.fingerprint: CLIENT}
    auth = Authenticator(known.get, proxy_cert_header="X-Client-Cert", trusted_proxies="10.0.0.0/8, 127.0.0.1")
    identity = auth.identify({PEER_CERT_ENV: der})
    assert identity.method == "tls" and auth.caller(identity, CLIENT).client_id == CLIENT
    with pytest.raises(IdentityProblem) as problem:
        auth.caller(identity, "LV/GOV/1/OTHER")
    assert problem.value.kind == "inconsistent"
    forwarded = {"HTTP_X_CLIENT_CERT": urllib.parse.quote(info.pem), "REMOTE_ADDR": "10.1.2.3"}
    assert auth.identify(forwarded).method == "proxy"
    assert auth.identify({**forwarded, "REMOTE_ADDR": "192.0.2.1"}) is None  # not a trusted proxy
    unknown = Authenticator({}.get).identify({PEER_CERT_ENV: der})
    with pytest.raises(IdentityProblem) as problem:
        Authenticator({}.get).caller(unknown, CLIENT)
    assert problem.value.kind == "denied"
    # without proof: anonymous, unless development mode believes the header
    assert auth.caller(None, CLIENT).anonymous
    assert Authenticator({}.get, trust_client_header=True).caller(None, CLIENT).authenticated_by == "header"


def test_settings_trust_no_header_by_default_and_check_tls_pairs() -> None:
    from viss_bridge.config import ConfigError, load_settings

    settings = load_settings(environ={})
    assert settings.trust_client_header is False and settings.base_url.startswith("http://")
    assert load_settings(environ={"VISS_BRIDGE_TRUST_CLIENT_HEADER": "true"}).trust_client_header is True
    tls = load_settings(environ={"VISS_BRIDGE_TLS_CERTFILE": "s.crt", "VISS_BRIDGE_TLS_KEYFILE": "s.key"})
    assert tls.base_url.startswith("https://")
    with pytest.raises(ConfigError, match="tls_keyfile"):
        load_settings(environ={"VISS_BRIDGE_TLS_CERTFILE": "s.crt"})
    with pytest.raises(ConfigError, match="trusted_proxies"):
        load_settings(environ={"VISS_BRIDGE_PROXY_CERT_HEADER": "X-SSL-Client-Cert"})


@pytest.mark.postgres
def test_a_request_is_decided_once_even_by_concurrent_owners_postgresql(pg_database: str) -> None:
    registry = AccessRegistry(make_engine(pg_database))
    registry.create_schema()
    registry.add_client(CLIENT, "user")
    requests = AccessRequests(registry, {"people": DATASET}.get)
    request = requests.submit(CLIENT, "people", purpose="p", legal_basis="l")
    barrier = threading.Barrier(6)
    results: list[str] = []

    def decide(index: int) -> None:
        barrier.wait()
        try:
            if index % 2:
                requests.approve(request.request_id, "LV/GOV/90000000001/OWNER")
                results.append("approved")
            else:
                requests.reject(request.request_id, "LV/GOV/90000000001/OWNER", "no")
                results.append("rejected")
        except PermissionProblem:
            results.append("refused")

    threads = [threading.Thread(target=decide, args=(i,)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results.count("refused") == 5
    final = requests.get(request.request_id)
    granted = [p for p in registry.permissions(client_id=CLIENT) if p.request_id == request.request_id]
    assert len(granted) == (1 if final.status == "approved" else 0)
    registry.engine.dispose()


def test_a_named_permission_is_the_one_decided_and_ambiguity_can_be_refused(registry: AccessRegistry) -> None:
    """The REST face's X-DAGR-Permission: the caller names the permission its use is counted against."""
    from viss_bridge.access.policy import AMBIGUOUS, NOT_HELD, RegistryPolicy

    policy = RegistryPolicy(registry, ttl=0)
    first = registry.grant(CLIENT, "people", purpose="tax", legal_basis="law", fields=["name"])
    # one permission: chosen by the rule, and by its number; ambiguity does not arise
    assert policy.decide(CLIENT, DATASET).permission.number == first.number
    assert policy.decide(CLIENT, DATASET, require_choice=True).permission.number == first.number
    second = registry.grant(CLIENT, "people", purpose="audit", legal_basis="law", quota=1)
    # two: the rule picks the oldest, a face requiring a choice refuses, a number decides
    assert policy.decide(CLIENT, DATASET).permission.number == first.number
    ambiguous = policy.decide(CLIENT, DATASET, require_choice=True)
    assert not ambiguous.allowed and ambiguous.refusal == AMBIGUOUS
    assert first.number in ambiguous.message and second.number in ambiguous.message
    chosen = policy.decide(CLIENT, DATASET, second.number, require_choice=True)
    assert chosen.allowed and chosen.permission.number == second.number and chosen.fields is None
    # someone else's number, or a number for another dataset, is refused
    registry.add_client("LV/GOV/90000000003/OTHER", "other")
    foreign = registry.grant("LV/GOV/90000000003/OTHER", "people", purpose="x", legal_basis="law")
    refused = policy.decide(CLIENT, DATASET, foreign.number)
    assert not refused.allowed and refused.refusal == NOT_HELD and refused.permission is None
    # a named permission that cannot be used now is refused with its reason, not replaced by another
    registry.reserve(second.number)
    exhausted = policy.decide(CLIENT, DATASET, second.number)
    assert not exhausted.allowed and exhausted.refusal == "exhausted"
    assert policy.decide(CLIENT, DATASET, require_choice=True).permission.number == first.number
