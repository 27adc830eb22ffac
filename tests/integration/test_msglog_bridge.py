"""The message log in a running bridge: byte-exact records of both directions, a consumer's signature kept
verbatim, signed responses, seals with real time-stamps, evidence containers checked by our verifier, xmlsec1 and
openssl ts, and a worker killed with SIGKILL under load."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
import zipfile
from pathlib import Path

import pytest
import requests
import zeep
from lxml import etree

from tests.conftest import DEMO_CONSUMER, ROOT, cli, start_bridge
from tests.evidence_helpers import (TOLERATED_DIGIDOC_CAUSES, data_files, digidoc_available, digidoc_validate,
                                    openssl_ts_token, rfc3161_client_verify, unexpected_causes, xmlsec1_xades)
from tests.msglog_helpers import TsaProcess, log_env, sqlite_rows, worker_pids
from tests.soap_helpers import parse_fault, post, xroad_headers, xroad_lookup
from viss_bridge.security.keys import SigningKey
from viss_bridge.security.pki import TrustStore, subject_cn
from viss_bridge.security.wssecurity import sign_envelope, verify_envelope

NEEDS_TOOLS = pytest.mark.skipif(not (shutil.which("xmlsec1") and shutil.which("openssl") and digidoc_available()),
                                 reason="needs xmlsec1 and openssl (Debian packages xmlsec1, openssl) and pydigidoc "
                                        "(the 'test' extra)")


@pytest.fixture(scope="module")
def tsa(dev_pki):  # type: ignore[no-untyped-def]
    process = TsaProcess(dev_pki)
    yield process
    process.stop()


@pytest.fixture(scope="module")
def node(tmp_path_factory, dev_pki, tsa):  # type: ignore[no-untyped-def]
    data = tmp_path_factory.mktemp("logged")
    log_db = data / "msglog.sqlite"
    # WS-Security signed requests are authenticated (issue 5): trust the dev CA for them, and register the
    # consumer's certificate with its connection below.
    env = {**log_env(dev_pki, f"sqlite:///{log_db}", tsa.url, sign_responses="xroad"),
           "VISS_BRIDGE_WSS_TRUST_CA": str(dev_pki.ca_cert)}
    bridge = start_bridge(data, workers=3, extra_env=env)
    cli("clients", "add", DEMO_CONSUMER, "--cert", str(dev_pki.consumers[DEMO_CONSUMER].cert), env=bridge.env())
    bridge.log_db = log_db  # type: ignore[attr-defined]
    bridge.cli_env = {**bridge.env(), **log_env(dev_pki, f"sqlite:///{log_db}", tsa.url)}  # type: ignore[attr-defined]
    yield bridge
    bridge.stop()


@pytest.fixture(scope="module")
def trust(dev_pki) -> TrustStore:  # type: ignore[no-untyped-def]
    return TrustStore.from_files(dev_pki.ca_cert)


@pytest.fixture(scope="module")
def person(demo_world) -> str:  # type: ignore[no-untyped-def]
    return demo_world["fpr_person"][0]["person_code"]


def records_of(node, message_id: str) -> list[tuple]:  # type: ignore[no-untyped-def,type-arg]
    return sqlite_rows(node.log_db, "SELECT direction, body, subjects, client, status, exchange_id, leg FROM msglog_record "
                                    "WHERE message_id = ? ORDER BY seq", (message_id,))


def wait_sealed(node, timeout: float = 20) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        head, sealed = sqlite_rows(node.log_db, "SELECT h.seq, s.sealed_seq FROM msglog_head h JOIN msglog_sealer s "
                                                "ON s.node_id = h.node_id")[0]
        if head == sealed:
            return
        time.sleep(0.1)
    raise AssertionError(f"not sealed within {timeout} s: head {head}, sealed {sealed}")


def test_both_directions_byte_exact_and_the_consumers_signature_kept_verbatim(node, demo_catalog, person, dev_pki,
                                                                              trust) -> None:  # type: ignore[no-untyped-def]
    message_id = str(uuid.uuid4())
    envelope = etree.fromstring(xroad_lookup(demo_catalog.get("fpr_person"), DEMO_CONSUMER, {"person_code": person},
                                             message_id))
    consumer_key = SigningKey.from_identity(dev_pki.consumers[DEMO_CONSUMER])
    signed_headers = tuple(f"{{http://x-road.eu/xsd/xroad.xsd}}{n}" for n in ("client", "service", "id", "userId"))
    sent = etree.tostring(sign_envelope(envelope, consumer_key, sign_headers=signed_headers), xml_declaration=True,
                          encoding="UTF-8")
    response = post(node.xroad, sent)
    assert response.status_code == 200, response.text
    rows = records_of(node, message_id)
    assert [r[0] for r in rows] == ["request", "response"]
    assert rows[0][1] == sent and rows[1][1] == response.content  # exactly as on the wire
    assert rows[0][5] == rows[1][5] and {r[6] for r in rows} == {"consumer"} and rows[0][3] == DEMO_CONSUMER
    assert person in rows[1][2] and rows[1][4] == 200
    # The consumer's proof of origin survives in the log: its signature still verifies there.
    verified = verify_envelope(etree.fromstring(rows[0][1]), trust)
    assert subject_cn(verified.certificate) == DEMO_CONSUMER
    # The bridge signed its answer (sign_responses = xroad) and the log holds the signed bytes.
    answer = verify_envelope(etree.fromstring(response.content), trust)
    assert subject_cn(answer.certificate).startswith("viss-bridge node signing")
    assert person.encode() in etree.tostring(answer.body)


def test_consumers_that_do_not_verify_keep_working(node, demo_catalog, person) -> None:  # type: ignore[no-untyped-def]
    client = zeep.Client(f"{node.xroad}?wsdl")
    dataset = demo_catalog.get("fpr_person")
    answer = client.service.fpr_person(person_code=person, _soapheaders=xroad_headers(DEMO_CONSUMER, dataset, "zeep-1"))
    assert answer.body.record.person_code == person
    assert records_of(node, "zeep-1")


def test_a_fault_is_logged_under_the_uuid_it_carries(node) -> None:  # type: ignore[no-untyped-def]
    fault = parse_fault(post(node.xroad, b"<not-soap/>"))
    assert fault.code == "Client.InvalidSoap"
    rows = sqlite_rows(node.log_db, "SELECT direction, body, fault_code FROM msglog_record WHERE exchange_id IN "
                                    "(SELECT exchange_id FROM msglog_record WHERE fault_id = ?) ORDER BY seq", (fault.detail,))
    assert [(r[0], r[2]) for r in rows] == [("request", None), ("response", "Client.InvalidSoap")]
    assert rows[0][1] == b"<not-soap/>"
    out = cli("log", "find", "--exchange", fault.detail, env=node.cli_env).stdout
    assert "2 record(s)" in out and "Client.InvalidSoap" in out


def test_health_and_metrics_report_the_log(node) -> None:  # type: ignore[no-untyped-def]
    report = requests.get(f"{node.url}/health", timeout=5).json()
    assert report["msglog"]["status"] == "ok" and report["msglog"]["sealing"] == "on"
    assert report["msglog"]["tsa"]["status"] == "ok"
    metrics = requests.get(f"{node.url}/metrics", timeout=5).text
    assert "viss_bridge_msglog_append_seconds_count" in metrics


def test_find_by_message_id_client_person_and_time(node, person) -> None:  # type: ignore[no-untyped-def]
    env = node.cli_env
    out = cli("log", "find", "--message-id", "zeep-1", env=env).stdout
    assert "2 record(s)" in out and "request" in out and "response" in out
    out = cli("log", "find", "--person", person, "--client", DEMO_CONSUMER, "--since", "2000-01-01T00:00:00Z",
              "--json", env=env).stdout
    assert '"direction": "response"' in out and person in out
    assert "0 record(s)" in cli("log", "find", "--until", "2000-01-01T00:00:00Z", env=env).stdout
    # --service is the exact service or a prefix ending at a "/": the subsystem finds its services' records,
    # a prefix cut inside a name finds nothing.
    service = json.loads(cli("log", "find", "--message-id", "zeep-1", "--json", env=env).stdout)[0]["service"]
    subsystem = service.rsplit("/", 2)[0]
    for prefix, expected in ((service, "2 record(s)"), (subsystem, "2 record(s)"), (subsystem[:-1], "0 record(s)")):
        out = cli("log", "find", "--message-id", "zeep-1", "--service", prefix, env=env).stdout
        assert expected in out, (prefix, out)


@NEEDS_TOOLS
def test_evidence_container_verifies_with_our_verifier_xmlsec1_and_openssl(node, dev_pki, tmp_path) -> None:  # type: ignore[no-untyped-def]
    wait_sealed(node)
    container = tmp_path / "exchange.asice"
    cli("log", "export", "--message-id", "zeep-1", "-o", str(container), env=node.cli_env)
    with zipfile.ZipFile(container) as archive:
        first = archive.infolist()[0]
        assert (first.filename, first.compress_type) == ("mimetype", zipfile.ZIP_STORED)
        assert archive.read("mimetype") == b"application/vnd.etsi.asic-e+zip"
        names = archive.namelist()
        archive.extractall(tmp_path / "x")
    assert "META-INF/manifest.xml" in names and any(n.endswith(".tsr") for n in names)
    report = cli("evidence", "verify", str(container), "--trust", str(dev_pki.ca_cert))
    assert "EVIDENCE VALID" in report.stdout and "time-stamp (RFC 3161)" in report.stdout
    x = tmp_path / "x"
    seal = next(x.glob("seals/*.xml"))
    stem = str(seal)[:-4]
    checks = standard_checks(x, seal, stem, dev_pki)
    assert all(result.returncode == 0 for result in checks.values()), {k: v.stderr for k, v in checks.items()}
    # sha256sum level: the record file hashes to the proof's record hash, the message to the record's body_sha256
    proof = json.loads(next(x.glob("proofs/*.json")).read_text())
    record = (x / proof["record"]).read_bytes()
    assert hashlib.sha256(record).hexdigest() == proof["record_hash"]
    assert hashlib.sha256((x / proof["message"]).read_bytes()).hexdigest() == json.loads(record)["body_sha256"]
    # The stdlib-only Merkle check the security officer's guide hands out agrees.
    for proof_file in x.glob("proofs/*.json"):
        script = subprocess.run([sys.executable, str(ROOT / "docs" / "check_merkle_proof.py"),
                                 str(proof_file.relative_to(x))], cwd=x, capture_output=True, text=True)
        assert script.returncode == 0 and "True" in script.stdout, script.stdout + script.stderr
    # The container's XAdES-T signature, by three independent implementations.
    signed = xmlsec1_xades(x, dev_pki.ca_cert)
    every = len(data_files(x)) + 1  # each data file and the SignedProperties
    assert signed.returncode == 0 and f"SignedInfo References (ok/all): {every}/{every}" in signed.stderr, signed.stderr
    token = openssl_ts_token(x, dev_pki.ca_cert, x / "certs/tsa.pem")
    assert token.returncode == 0 and "Verification: OK" in token.stdout, token.stdout + token.stderr
    assert rfc3161_client_verify(next(x.glob("seals/*.tsr")).read_bytes(), next(x.glob("seals/*.sigvalue")).read_bytes(),
                                 dev_pki.ca_cert, x / "certs/tsa.pem") is None
    answer = digidoc_validate(container, tmp_path)
    assert answer["opened"], answer
    assert sorted(name for name, _ in answer["files"]) == data_files(x)
    assert [s["profile"] for s in answer["signatures"]] == ["BES/time-stamp"], answer
    assert unexpected_causes(answer) == [], answer
    assert set(answer["signatures"][0]["causes"]) <= TOLERATED_DIGIDOC_CAUSES
    assert "signature time-stamp (XAdES-T)" in report.stdout and "signature covers every data file" in report.stdout


def standard_checks(x: Path, seal: Path, stem: str, pki) -> dict[str, subprocess.CompletedProcess[str]]:  # type: ignore[no-untyped-def]
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(list(args), capture_output=True, text=True, cwd=x)

    return {
        "xmlsec1": run("xmlsec1", "--verify", "--trusted-pem", str(pki.ca_cert), str(seal)),
        "openssl ts -data": run("openssl", "ts", "-verify", "-in", f"{stem}.tsr", "-data", f"{stem}.sigvalue",
                                "-CAfile", str(pki.ca_cert), "-untrusted", str(x / "certs/tsa.pem")),
    }


def rezip(container: Path, target: Path, change: dict[str, bytes]) -> None:
    with zipfile.ZipFile(container) as source, zipfile.ZipFile(target, "w") as out:
        for info in source.infolist():
            data = change.get(info.filename, source.read(info))
            out.writestr(info, data, compress_type=info.compress_type)


@NEEDS_TOOLS
def test_a_modified_container_fails_every_check(node, dev_pki, tmp_path) -> None:  # type: ignore[no-untyped-def]
    wait_sealed(node)
    container = tmp_path / "good.asice"
    cli("log", "export", "--message-id", "zeep-1", "-o", str(container), env=node.cli_env)
    with zipfile.ZipFile(container) as archive:
        names = archive.namelist()
        message = next(n for n in names if n.startswith("messages/") and n.endswith("response.xml"))
        seal = next(n for n in names if n.startswith("seals/") and n.endswith(".xml"))
        stem = seal[:-4]
        original = {n: archive.read(n) for n in names}
    person_bytes = original[message]
    forged_message = person_bytes.replace(b"<", b" <", 1) if b"<" in person_bytes else person_bytes + b" "
    root = original[seal].decode()
    start = root.index("<vb:MerkleRoot")
    start = root.index(">", start) + 1
    forged_seal = (root[:start] + ("0" if root[start] != "0" else "1") + root[start + 1:]).encode()
    tsr = bytearray(original[f"{stem}.tsr"])
    tsr[-5] ^= 0x01
    record = next(n for n in names if n.startswith("records/"))
    signature_xml = original["META-INF/signatures0.xml"].decode()
    at = signature_xml.index("<ds:SignatureValue")
    at = signature_xml.index(">", at) + 5
    forged_signature = (signature_xml[:at] + ("A" if signature_xml[at] != "A" else "B") + signature_xml[at + 1:]).encode()
    cases = {"message byte": {message: forged_message}, "seal": {seal: forged_seal},
             "time-stamp token": {f"{stem}.tsr": bytes(tsr)},
             "time-stamped bytes": {f"{stem}.sigvalue": original[f"{stem}.sigvalue"][::-1]},
             "record metadata": {record: original[record].replace(b'"v":1', b'"v":2')},
             "container signature": {"META-INF/signatures0.xml": forged_signature}}
    for case, change in cases.items():
        bad = tmp_path / f"bad-{case.replace(' ', '-')}.asice"
        rezip(container, bad, change)
        ours = cli("evidence", "verify", str(bad), "--trust", str(dev_pki.ca_cert), check=False)
        assert ours.returncode == 1 and "EVIDENCE INVALID" in ours.stdout, (case, ours.stdout)
        x = tmp_path / f"x-{case.replace(' ', '-')}"
        with zipfile.ZipFile(bad) as archive:
            archive.extractall(x)
        # The container signature names what changed: the data file, or the signature itself.
        named = next(iter(change))
        if case == "container signature":
            assert "SignatureValue does not match SignedInfo" in ours.stdout, ours.stdout
        else:
            assert f"data file {named} was changed after signing" in ours.stdout, (case, ours.stdout)
        assert xmlsec1_xades(x, dev_pki.ca_cert).returncode != 0, case
        answer = digidoc_validate(bad, tmp_path)
        found = unexpected_causes(answer)
        assert found, (case, answer)
        if case != "container signature":
            assert any(named in cause for cause in found), (case, found)
        token = openssl_ts_token(x, dev_pki.ca_cert, x / "certs/tsa.pem")
        assert (token.returncode != 0) == (case == "container signature"), (case, token.stdout + token.stderr)
        if case in ("time-stamp token", "time-stamped bytes"):
            assert rfc3161_client_verify((x / f"{stem}.tsr").read_bytes(), (x / f"{stem}.sigvalue").read_bytes(),
                                         dev_pki.ca_cert, x / "certs/tsa.pem") is not None, case
        if case == "container signature":
            continue
        checks = standard_checks(x, x / seal, str(x / stem), dev_pki)
        if case == "message byte":
            script = subprocess.run([sys.executable, str(ROOT / "docs" / "check_merkle_proof.py"),
                                     next(str(p.relative_to(x)) for p in x.glob("proofs/*.json")
                                          if json.loads(p.read_text())["message"] == message)],
                                    cwd=x, capture_output=True, text=True)
            assert script.returncode == 1, script.stdout
        if case == "seal":
            assert checks["xmlsec1"].returncode != 0, case
        if case in ("time-stamp token", "time-stamped bytes"):
            assert checks["openssl ts -data"].returncode != 0, case
    # A flipped byte inside the ZIP itself (no re-zipping) is caught as well.
    raw = bytearray(container.read_bytes())
    raw[raw.index(b"messages/") + 200] ^= 0x01
    (tmp_path / "flipped.asice").write_bytes(bytes(raw))
    ours = cli("evidence", "verify", str(tmp_path / "flipped.asice"), "--trust", str(dev_pki.ca_cert), check=False)
    assert ours.returncode != 0


@NEEDS_TOOLS
def test_one_persons_exchanges_in_one_signed_container_and_its_archive_time_stamp(node, dev_pki, person,
                                                                                  tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A data-subject request: every exchange that concerned the person, all its records, one signature over
    all; then `evidence renew` adds an ArchiveTimeStamp (XAdES-A) that every checker still accepts."""
    wait_sealed(node)
    found = json.loads(cli("log", "find", "--person", person, "--json", env=node.cli_env).stdout)
    exchanges = {r["exchange_id"] for r in found}
    assert len(exchanges) >= 2, found  # several calls in this module concerned the person
    container = tmp_path / "person.asice"
    cli("log", "export", "--person", person, "--since", "2000-01-01T00:00:00Z", "-o", str(container), env=node.cli_env)
    with zipfile.ZipFile(container) as archive:
        records = [json.loads(archive.read(n)) for n in archive.namelist() if n.startswith("records/")]
        assert [n for n in archive.namelist() if n.startswith("META-INF/signatures")] == ["META-INF/signatures0.xml"]
        archive.extractall(tmp_path / "x")
    assert {r["exchange"] for r in records} == exchanges
    expected = sqlite_rows(node.log_db, f"SELECT COUNT(*) FROM msglog_record WHERE exchange_id IN "
                                        f"({', '.join('?' * len(exchanges))})", tuple(exchanges))[0][0]
    assert len(records) == expected  # both legs, both directions of each exchange
    report = cli("evidence", "verify", str(container), "--trust", str(dev_pki.ca_cert))
    assert "EVIDENCE VALID" in report.stdout and report.stdout.count("\nrecord ") == expected
    assert xmlsec1_xades(tmp_path / "x", dev_pki.ca_cert).returncode == 0
    assert unexpected_causes(digidoc_validate(container, tmp_path)) == []
    # Renewal: an archive time-stamp over the signature, its time-stamp and every data file.
    renewed = tmp_path / "renewed.asice"
    cli("evidence", "renew", str(container), "-o", str(renewed), env=node.cli_env)
    report = cli("evidence", "verify", str(renewed), "--trust", str(dev_pki.ca_cert))
    assert "EVIDENCE VALID" in report.stdout and "archive time-stamp 1 (XAdES-A)" in report.stdout, report.stdout
    answer = digidoc_validate(renewed, tmp_path)
    assert [s["profile"] for s in answer["signatures"]] == ["BES/time-stamp-archive"] and not unexpected_causes(answer)
    with zipfile.ZipFile(renewed) as archive:
        archive.extractall(tmp_path / "r")
    assert xmlsec1_xades(tmp_path / "r", dev_pki.ca_cert).returncode == 0  # the signature itself is unchanged
    # The archive time-stamp covers the data files: change one and it fails, named.
    with zipfile.ZipFile(renewed) as archive:
        readme = archive.read("README.txt")
    rezip(renewed, tmp_path / "bad.asice", {"README.txt": readme + b" "})
    bad = cli("evidence", "verify", str(tmp_path / "bad.asice"), "--trust", str(dev_pki.ca_cert), check=False)
    assert bad.returncode == 1 and "data file README.txt was changed" in bad.stdout, bad.stdout


def test_sigkill_of_a_worker_under_load_keeps_the_log_consistent(node, demo_catalog, person) -> None:  # type: ignore[no-untyped-def]
    dataset = demo_catalog.get("fpr_person")
    acknowledged: list[str] = []
    errors: list[str] = []
    stop = threading.Event()

    def client() -> None:
        session = requests.Session()
        while not stop.is_set():
            message_id = str(uuid.uuid4())
            try:
                answer = session.post(node.xroad, data=xroad_lookup(dataset, DEMO_CONSUMER, {"person_code": person},
                                                                     message_id),
                                      headers={"Content-Type": "text/xml; charset=utf-8"}, timeout=10)
            except requests.RequestException as exc:  # the killed worker's connection: no answer, no promise
                errors.append(type(exc).__name__)
                session = requests.Session()
                continue
            if answer.status_code == 200 and person.encode() in answer.content:
                acknowledged.append(message_id)

    threads = [threading.Thread(target=client) for _ in range(6)]
    for thread in threads:
        thread.start()
    killed = []
    try:
        for _ in range(2):
            time.sleep(1.0)
            victim = worker_pids(node.process.pid)[0]
            os.kill(victim, signal.SIGKILL)
            killed.append(victim)
        time.sleep(1.0)
    finally:
        stop.set()
        for thread in threads:
            thread.join(30)
    print(f"acknowledged {len(acknowledged)}, connection errors {len(errors)}, killed {killed}")
    assert len(acknowledged) > 20, (len(acknowledged), errors)
    assert node.process.poll() is None
    # Every answer a client received has its response record.
    logged = {row[0] for row in sqlite_rows(node.log_db, "SELECT message_id FROM msglog_record WHERE direction = 'response'")}
    missing = [m for m in acknowledged if m not in logged]
    assert not missing, f"{len(missing)} acknowledged answers have no record"
    wait_sealed(node, timeout=40)  # a killed sealer's lease expires; a surviving worker seals the rest
    result = cli("log", "verify", "--require-timestamps", env=node.cli_env, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "LOG VALID" in result.stdout
