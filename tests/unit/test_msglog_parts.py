"""Merkle proofs (RFC 9162), the RFC 3161 time-stamp round trip (also through openssl ts), records."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import threading

import pytest

from viss_bridge.msglog import merkle
from viss_bridge.msglog.records import RecordInput, record_hash
from viss_bridge.msglog.tsp import DevTsa, TimestampError, make_server, request_timestamp, verify_timestamp
from viss_bridge.security.pki import TrustStore, init_dev_pki, load_certificate, load_private_key


def rfc_root(leaves: list[bytes]) -> bytes:
    if len(leaves) == 1:
        return merkle.leaf_hash(leaves[0])
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return merkle.node_hash(rfc_root(leaves[:k]), rfc_root(leaves[k:]))


def test_merkle_root_and_every_inclusion_proof() -> None:
    for n in list(range(1, 34)) + [100, 257]:
        leaves = [os.urandom(32) for _ in range(n)]
        root = merkle.root(leaves)
        assert root == rfc_root(leaves)
        for i in range(n):
            path = merkle.inclusion_proof(leaves, i)
            assert merkle.verify_inclusion(leaves[i], i, n, path, root)
            assert not merkle.verify_inclusion(leaves[i], (i + 1) % n, n, path, root) or n == 1
            assert not merkle.verify_inclusion(os.urandom(32), i, n, path, root)


def test_record_hash_covers_every_byte_and_field() -> None:
    row = {"node_id": "n", "seq": 1, "recorded_at": "2026-01-01T00:00:00.000000Z", "exchange_id": "e", "leg": "consumer",
           "direction": "request", "client": "c", "subjects": "[]"}
    meta, leaf = record_hash(row, b"<a/>")
    assert hashlib.sha256(meta).digest() == leaf and b'"body_sha256":"' in meta
    assert record_hash(row, b"<a />")[1] != leaf
    assert record_hash({**row, "client": "d"}, b"<a/>")[1] != leaf
    with pytest.raises(ValueError):
        RecordInput(b"", "elsewhere", "request", "e")


@pytest.fixture(scope="module")
def tsa(dev_pki):  # type: ignore[no-untyped-def]
    server = make_server(DevTsa(load_certificate(dev_pki.tsa.cert), load_private_key(dev_pki.tsa.key)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl")
@pytest.mark.network
@pytest.mark.tool
def test_time_stamp_verifies_here_and_with_openssl(tsa, dev_pki, tmp_path) -> None:  # type: ignore[no-untyped-def]
    data = os.urandom(256)
    tsr = request_timestamp(tsa, data)
    stamp = verify_timestamp(tsr, data, TrustStore.from_files(dev_pki.ca_cert))
    assert stamp.tsa.subject == load_certificate(dev_pki.tsa.cert).subject
    (tmp_path / "t.tsr").write_bytes(tsr)
    (tmp_path / "d.bin").write_bytes(data)
    base = ["openssl", "ts", "-verify", "-in", str(tmp_path / "t.tsr"), "-CAfile", str(dev_pki.ca_cert),
            "-untrusted", str(dev_pki.tsa.cert)]
    for extra in (["-data", str(tmp_path / "d.bin")], ["-digest", hashlib.sha256(data).hexdigest()]):
        result = subprocess.run(base + extra, capture_output=True, text=True)
        assert result.returncode == 0 and "Verification: OK" in result.stdout, result.stderr
    (tmp_path / "d.bin").write_bytes(data + b"x")
    assert subprocess.run(base + ["-data", str(tmp_path / "d.bin")], capture_output=True).returncode != 0
    with pytest.raises(TimestampError, match="imprint"):
        verify_timestamp(tsr, data + b"x", TrustStore.from_files(dev_pki.ca_cert))
    other = init_dev_pki(tmp_path / "other")
    with pytest.raises(TimestampError, match="not trusted"):
        verify_timestamp(tsr, data, TrustStore.from_files(other.ca_cert))
    forged = bytearray(tsr)
    forged[-5] ^= 1  # inside the signature
    with pytest.raises(TimestampError):
        verify_timestamp(bytes(forged), data, TrustStore.from_files(dev_pki.ca_cert))


@pytest.mark.network
def test_tsa_client_reports_an_unreachable_tsa() -> None:
    with pytest.raises(TimestampError, match="unreachable"):
        request_timestamp("http://127.0.0.1:9/", b"x", timeout=1)


@pytest.mark.network
def test_seals_stay_verifiable_after_the_node_certificate_expires_thanks_to_the_time_stamp(tsa, dev_pki, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Long-term evidence: the seal's certificate is checked at the trusted time, not at verification time."""
    import datetime as dt
    import sqlite3
    import time

    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    from viss_bridge.msglog import MessageLog, RecordInput
    from viss_bridge.msglog.evidence import export_exchange, find_exchange_records, verify_container
    from viss_bridge.msglog.store import LogStore
    from viss_bridge.msglog.verify import verify_log
    from viss_bridge.security.keys import SigningKey
    from viss_bridge.security.pki import issue_certificate

    ca_key = serialization.load_pem_private_key(dev_pki.ca_key.read_bytes(), None)
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.timezone.utc)
    short = issue_certificate(load_certificate(dev_pki.ca_cert), ca_key, "short-lived node", key, days=1,
                              usages=("digital_signature", "content_commitment"),
                              not_before=now - dt.timedelta(days=1) + dt.timedelta(seconds=3))
    url = f"sqlite:///{tmp_path / 'log.sqlite'}"
    msglog = MessageLog(url, "node-1", signing_key=SigningKey(short, key), tsa_url=tsa)
    msglog.open()
    msglog.record(RecordInput(b"<a/>", "consumer", "request", "ex-1"), RecordInput(b"<b/>", "provider", "request", "ex-1"),
                  RecordInput(b"<c/>", "provider", "response", "ex-1"), RecordInput(b"<d/>", "consumer", "response", "ex-1"))
    assert msglog.seal_pending(force=True) == 4
    container = export_exchange(msglog.store, find_exchange_records(msglog.store, exchange_id="ex-1"), SigningKey(short, key), tsa)
    time.sleep(max(0.0, (short.not_valid_after_utc - dt.datetime.now(dt.timezone.utc)).total_seconds()) + 0.5)
    trust = TrustStore.from_files(dev_pki.ca_cert)
    assert verify_log(LogStore(url), trust, require_timestamps=True).ok
    report = verify_container(container, trust)
    assert report.ok and report.text().count("\nrecord ") == 4, report.text()  # both legs in one container
    conn = sqlite3.connect(tmp_path / "log.sqlite")
    conn.execute("UPDATE msglog_seal SET tsr = NULL")
    conn.commit()
    conn.close()
    unstamped = verify_log(LogStore(url), trust)
    assert not unstamped.ok and "is not valid at" in unstamped.text()


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl")
@pytest.mark.parametrize("ess_alg", ["sha1", "sha256"])
def test_our_verifier_accepts_tokens_made_by_openssl_and_rejects_tampered_ones(dev_pki, tmp_path, ess_alg) -> None:  # type: ignore[no-untyped-def]
    """Interop the other way: a token from OpenSSL's TSA (ESS signing-certificate v1 or v2) verifies here."""
    data = os.urandom(64)
    (tmp_path / "data.bin").write_bytes(data)
    (tmp_path / "serial").write_text("01\n")
    (tmp_path / "tsa.cnf").write_text(f"""[ tsa ]
default_tsa = tsa_config
[ tsa_config ]
serial = {tmp_path / 'serial'}
signer_cert = {dev_pki.tsa.cert}
signer_key = {dev_pki.tsa.key}
signer_digest = sha256
default_policy = 1.2.3.4.1
digests = sha256
ess_cert_id_alg = {ess_alg}
accuracy = secs:1
""")
    run = lambda *a: subprocess.run(list(a), capture_output=True, cwd=tmp_path)  # noqa: E731
    assert run("openssl", "ts", "-query", "-data", "data.bin", "-sha256", "-cert", "-out", "q.tsq").returncode == 0
    reply = run("openssl", "ts", "-reply", "-config", "tsa.cnf", "-queryfile", "q.tsq", "-out", "r.tsr")
    assert reply.returncode == 0, reply.stderr
    tsr = (tmp_path / "r.tsr").read_bytes()
    stamp = verify_timestamp(tsr, data, TrustStore.from_files(dev_pki.ca_cert))
    assert stamp.policy == "1.2.3.4.1"
    with pytest.raises(TimestampError):
        verify_timestamp(tsr, data[::-1], TrustStore.from_files(dev_pki.ca_cert))


@pytest.mark.parametrize("overrides", [
    {},
    {"client": 'LV/"quoted"\\back\\slash', "service": "tab\there, newline\n, nul\x00, del\x7f"},
    {"user_id": "ārzemnieks Ω 😀", "remote_addr": "\u2028line\u2029sep", "message_id": "</script>"},
    {"subjects": '["010190-10009", "020202-20202"]'}, {"subjects": '["a","b"]'}, {"subjects": "[]"},
    {"subjects": ""}, {"subjects": None}, {"subjects": '["x\\"y", "ā\\u0000"]'}, {"subjects": '[1, null]'},
    {"subjects": '["a" , "b"]'}, {"subjects": "null"},
    {"status": 200, "duration_us": 0, "fault_code": None}, {"status": -1, "duration_us": 10 ** 15},
    {"status": True}, {"status": 2.5}, {"duration_us": float("nan")}, {"seq": "7"},
])
def test_row_record_hash_is_the_record_hash(overrides) -> None:  # type: ignore[no-untyped-def]
    """The verifier's direct writing of the canonical metadata gives exactly record_hash's bytes, odd values too."""
    from viss_bridge.msglog.records import META_COLUMNS, record_hash, row_record_hash

    values = {"node_id": "node-1", "seq": 7, "recorded_at": "2026-11-28T06:00:00.123456Z", "exchange_id": "ex-1",
              "leg": "consumer", "direction": "response", "endpoint": "xroad", "dialect": "xroad",
              "client": "LV/GOV/1/C", "service": "LV/GOV/2/S/s/v1", "message_id": "m-1", "user_id": None,
              "subjects": '["010190-10009"]', "status": 200, "fault_code": None, "fault_id": None,
              "duration_us": 2500, "remote_addr": "127.0.0.1"} | overrides
    body = "<resp>ā</resp>".encode()
    row = tuple(values[c] for c in META_COLUMNS) + (body,)
    assert row_record_hash(row, body) == record_hash(values, body)[1]
