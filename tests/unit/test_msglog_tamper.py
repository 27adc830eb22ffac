"""The log verifier against each kind of tampering: detected, and the right record named.

A real log (SQLite file, real seals signed with the development node key,
real RFC 3161 tokens from the development TSA) is built once; each case
tampers with a copy of the database file with plain SQL, as an insider with
database access would, then runs the verifier (and once the CLI).
"""

from __future__ import annotations

import shutil
import sqlite3
import threading
from pathlib import Path

import pytest

from tests.conftest import cli
from viss_bridge.msglog import MessageLog, RecordInput
from viss_bridge.msglog.records import chain_next, record_hash
from viss_bridge.msglog.store import LogStore
from viss_bridge.msglog.tsp import DevTsa, make_server
from viss_bridge.msglog.verify import verify_log
from viss_bridge.security.keys import SigningKey
from viss_bridge.security.pki import TrustStore, init_dev_pki, load_certificate, load_private_key

RECORDS = 60  # 30 exchanges; seals of 10 records -> 6 seals


@pytest.fixture(scope="module")
def tsa_url(dev_pki):  # type: ignore[no-untyped-def]
    server = make_server(DevTsa(load_certificate(dev_pki.tsa.cert), load_private_key(dev_pki.tsa.key)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()


@pytest.fixture(scope="module")
def pristine(tmp_path_factory, dev_pki, tsa_url) -> Path:  # type: ignore[no-untyped-def]
    path = tmp_path_factory.mktemp("log") / "log.sqlite"
    msglog = MessageLog(f"sqlite:///{path}", "node-1", signing_key=SigningKey.from_identity(dev_pki.node),
                        tsa_url=tsa_url, seal_every=10, seal_interval_ms=60_000)
    msglog.open()
    for i in range(RECORDS // 2):
        msglog.record(RecordInput(f"<req n='{i}'/>".encode(), "consumer", "request", f"ex-{i}", message_id=f"m-{i}",
                                  client="LV/GOV/90000069281/VID-EDS", service="LV/GOV/1/FPR/fpr_person/v1"),
                      RecordInput(f"<resp n='{i}'>010190-10009</resp>".encode(), "consumer", "response", f"ex-{i}",
                                  message_id=f"m-{i}", status=200, subjects=["010190-10009"]))
        if (i + 1) % 5 == 0:
            msglog.seal_pending(force=True)
    msglog.store.close()
    return path


@pytest.fixture(scope="module")
def trust(dev_pki) -> TrustStore:  # type: ignore[no-untyped-def]
    return TrustStore.from_files(dev_pki.ca_cert)


def tampered(pristine: Path, tmp_path: Path, *statements: tuple[str, tuple]) -> Path:  # type: ignore[type-arg]
    copy = tmp_path / "log.sqlite"
    shutil.copy(pristine, copy)
    with sqlite3.connect(copy) as conn:
        for sql, params in statements:
            conn.execute(sql, params)
    return copy


def verdict(path: Path, trust: TrustStore, **kwargs):  # type: ignore[no-untyped-def]
    store = LogStore(f"sqlite:///{path}")
    report = verify_log(store, trust, **kwargs)
    return report, report.nodes[0]


def test_pristine_log_verifies_with_every_seal_time_stamped(pristine, trust) -> None:  # type: ignore[no-untyped-def]
    report, node = verdict(pristine, trust, require_timestamps=True)
    assert report.ok, report.text()
    assert (node.records, node.seals, node.timestamps, node.unsealed) == (RECORDS, 6, 6, 0)


def row(path: Path, seq: int) -> tuple:  # type: ignore[type-arg]
    with sqlite3.connect(path) as conn:
        return conn.execute("SELECT * FROM msglog_record WHERE seq = ?", (seq,)).fetchone()


CASES = [
    ("one changed byte in a message",
     [("UPDATE msglog_record SET body = CAST(replace(CAST(body AS TEXT), '10009', '10008') AS BLOB) WHERE seq = 24", ())],
     24),
    ("changed metadata (client)", [("UPDATE msglog_record SET client = 'LV/GOV/1/EVIL' WHERE seq = 33", ())], 33),
    ("deleted record", [("DELETE FROM msglog_record WHERE seq = 17", ())], 17),
    ("deleted records at the end", [("DELETE FROM msglog_record WHERE seq >= 58", ())], 58),
    ("reordered records (bodies swapped)",
     [("UPDATE msglog_record SET body = (SELECT body FROM msglog_record WHERE seq = 41) WHERE seq = 40", ()),
      ("UPDATE msglog_record SET body = CAST('<req n=''19''/>' AS BLOB) WHERE seq = 41", ())], 40),
    ("reordered records (sequence numbers swapped)",
     [("UPDATE msglog_record SET seq = -1 WHERE seq = 12", ()), ("UPDATE msglog_record SET seq = 12 WHERE seq = 13", ()),
      ("UPDATE msglog_record SET seq = 13 WHERE seq = -1", ())], 12),
    ("forged seal (Merkle root edited)",
     [("UPDATE msglog_seal SET seal_xml = CAST(replace(CAST(seal_xml AS TEXT), '<vb:MerkleRoot algorithm=\"rfc9162-sha256\">', "
       "'<vb:MerkleRoot algorithm=\"rfc9162-sha256\">00') AS BLOB) WHERE first_seq = 21", ())], 21),
    ("missing seal", [("DELETE FROM msglog_seal WHERE first_seq = 31", ())], 31),
    ("time-stamp token replaced by another seal's",
     [("UPDATE msglog_seal SET tsr = (SELECT tsr FROM msglog_seal WHERE first_seq = 1) WHERE first_seq = 11", ())], 11),
    # Values SQLite's json_object cannot write (the verifier's fast path) or that are not what the canonical
    # form writes: the exact recomputation still names the record.
    ("metadata stored as a BLOB (client)", [("UPDATE msglog_record SET client = CAST(client AS BLOB) WHERE seq = 27", ())],
     27),
    ("subjects that are not JSON", [("UPDATE msglog_record SET subjects = 'not json' WHERE seq = 36", ())], 36),
    ("subjects changed, written with escapes",
     [("UPDATE msglog_record SET subjects = '[\"\\u0030\\u0031\\u0030190-10008\"]' WHERE seq = 38", ())], 38),
    ("a real number where an integer was (status)",
     [("UPDATE msglog_record SET status = 200.5 WHERE seq = 50", ())], 50),
    ("rewritten hashes after an altered record", "rewrite-45", 41),
    ("inserted record", "insert-30", 30),
]
# The parallel verifier: ranges of two seals (20 records) checked by two worker processes, even for this small log.
PARALLEL = {"workers": 2, "range_records": 20, "parallel_from": 0}


@pytest.mark.parametrize("case,statements,first_bad", CASES)
@pytest.mark.parametrize("path_kind", ["one process", "ranges in worker processes"])
def test_tampering_is_detected_and_the_first_bad_record_named(pristine, trust, tmp_path, case, statements,
                                                              first_bad, path_kind) -> None:  # type: ignore[no-untyped-def]
    if statements == "rewrite-45":
        path = rewritten_from_45(pristine, tmp_path)
    elif statements == "insert-30":
        path = inserted_at_30(pristine, tmp_path)
    else:
        path = tampered(pristine, tmp_path, *statements)
    report, node = verdict(path, trust, **(PARALLEL if path_kind != "one process" else {}))
    assert not report.ok, case
    assert node.first_bad == first_bad, f"{case}:\n{report.text()}"
    assert node.records == len(set(r[0] for r in sqlite_rows(path, "SELECT seq FROM msglog_record"))), report.text()


def test_parallel_verification_agrees_with_one_process_and_reports_progress(pristine, trust) -> None:  # type: ignore[no-untyped-def]
    ticks: list[tuple[int, int]] = []
    report, node = verdict(pristine, trust, require_timestamps=True, progress=lambda done, total: ticks.append((done, total)),
                           **PARALLEL)
    assert report.ok, report.text()
    assert (node.records, node.seals, node.timestamps, node.unsealed) == (RECORDS, 6, 6, 0)
    assert sum(done for done, _ in ticks) == RECORDS and {total for _, total in ticks} == {RECORDS} and len(ticks) == 3
    single, _ = verdict(pristine, trust, require_timestamps=True)
    assert report.json().replace(f'"seconds": {round(report.seconds, 3)}', "") == \
        single.json().replace(f'"seconds": {round(single.seconds, 3)}', "")


def sqlite_rows(path: Path, sql: str) -> list[tuple]:  # type: ignore[type-arg]
    with sqlite3.connect(path) as conn:
        return conn.execute(sql).fetchall()


def rewritten_from_45(pristine: Path, tmp_path: Path) -> Path:
    """Record 45 altered and every stored hash after it recomputed, as a smarter insider would."""
    path = tmp_path / "log.sqlite"
    shutil.copy(pristine, path)
    columns = ("node_id", "seq", "recorded_at", "exchange_id", "leg", "direction", "endpoint", "dialect", "client",
               "service", "message_id", "user_id", "subjects", "status", "fault_code", "fault_id", "duration_us",
               "remote_addr")
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE msglog_record SET body = CAST('<resp>nothing here</resp>' AS BLOB) WHERE seq = 45")
        previous = conn.execute("SELECT chain_hash FROM msglog_record WHERE seq = 44").fetchone()[0]
        for values in conn.execute(f"SELECT {', '.join(columns)}, body FROM msglog_record WHERE seq >= 45 ORDER BY seq").fetchall():
            _, leaf = record_hash(dict(zip(columns, values[:-1])), values[-1])
            previous = chain_next(previous, leaf)
            conn.execute("UPDATE msglog_record SET record_hash = ?, chain_hash = ? WHERE seq = ?", (leaf, previous, values[1]))
        conn.execute("UPDATE msglog_head SET chain_hash = ?", (previous,))
    return path


def inserted_at_30(pristine: Path, tmp_path: Path) -> Path:
    """Records 30.. shifted up by one and a forged record inserted at 30, with a plausible (copied) hash."""
    return tampered(pristine, tmp_path,
                    ("UPDATE msglog_record SET seq = -seq WHERE seq >= 30", ()),
                    ("UPDATE msglog_record SET seq = 1 - seq WHERE seq < 0", ()),
                    ("INSERT INTO msglog_record SELECT node_id, 30, recorded_at, exchange_id, leg, direction, endpoint, "
                     "dialect, client, service, 'forged', user_id, subjects, status, fault_code, fault_id, duration_us, "
                     "remote_addr, body, record_hash, chain_hash FROM msglog_record WHERE seq = 29", ()),
                    ("UPDATE msglog_head SET seq = seq + 1", ()))


def test_inserted_record_is_named(pristine, trust, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Shift records 30.. up by one and insert a forged record at 30, with a plausible (copied) hash."""
    path = tampered(pristine, tmp_path,
                    ("UPDATE msglog_record SET seq = -seq WHERE seq >= 30", ()),
                    ("UPDATE msglog_record SET seq = 1 - seq WHERE seq < 0", ()),
                    ("INSERT INTO msglog_record SELECT node_id, 30, recorded_at, exchange_id, leg, direction, endpoint, "
                     "dialect, client, service, 'forged', user_id, subjects, status, fault_code, fault_id, duration_us, "
                     "remote_addr, body, record_hash, chain_hash FROM msglog_record WHERE seq = 29", ()),
                    ("UPDATE msglog_head SET seq = seq + 1", ()))
    report, node = verdict(path, trust)
    assert not report.ok and node.first_bad == 30, report.text()


def test_rewritten_hashes_are_caught_by_the_seals(pristine, trust, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A smarter insider alters record 45 and recomputes every stored hash after it: the seal over 41..50 names it."""
    path = tmp_path / "log.sqlite"
    shutil.copy(pristine, path)
    columns = ("node_id", "seq", "recorded_at", "exchange_id", "leg", "direction", "endpoint", "dialect", "client",
               "service", "message_id", "user_id", "subjects", "status", "fault_code", "fault_id", "duration_us",
               "remote_addr")
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE msglog_record SET body = CAST('<resp>nothing here</resp>' AS BLOB) WHERE seq = 45")
        previous = conn.execute("SELECT chain_hash FROM msglog_record WHERE seq = 44").fetchone()[0]
        for values in conn.execute(f"SELECT {', '.join(columns)}, body FROM msglog_record WHERE seq >= 45 ORDER BY seq").fetchall():
            _, leaf = record_hash(dict(zip(columns, values[:-1])), values[-1])
            previous = chain_next(previous, leaf)
            conn.execute("UPDATE msglog_record SET record_hash = ?, chain_hash = ? WHERE seq = ?", (leaf, previous, values[1]))
        conn.execute("UPDATE msglog_head SET chain_hash = ?", (previous,))
    report, node = verdict(path, trust)
    assert not report.ok
    assert node.first_bad == 41 and "Merkle root does not match" in report.text(), report.text()


def test_seal_signed_by_an_untrusted_key_is_forged(pristine, tmp_path, dev_pki) -> None:  # type: ignore[no-untyped-def]
    other = init_dev_pki(tmp_path / "other-pki")
    report, node = verdict(pristine, TrustStore.from_files(other.ca_cert))
    assert not report.ok and node.first_bad == 1 and "not chain to a trusted CA" in report.text()


def test_unsealed_records_past_the_grace_period_count_as_a_missing_seal(pristine, trust, tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tampered(pristine, tmp_path, ("DELETE FROM msglog_seal WHERE first_seq = 51", ()))
    report, _ = verdict(path, trust, unsealed_grace=None)
    assert report.ok and report.nodes[0].unsealed == 10  # young unsealed records are fine
    report, node = verdict(path, trust, unsealed_grace=0)
    assert not report.ok and node.first_bad == 51


def test_cli_exit_status_and_report(pristine, tmp_path, dev_pki) -> None:  # type: ignore[no-untyped-def]
    ok = cli("log", "verify", "--database-url", f"sqlite:///{pristine}", "--trust", str(dev_pki.ca_cert),
             "--require-timestamps")
    assert "LOG VALID" in ok.stdout and "6 time-stamped" in ok.stdout
    path = tampered(pristine, tmp_path, ("DELETE FROM msglog_record WHERE seq = 7", ()))
    bad = cli("log", "verify", "--database-url", f"sqlite:///{path}", "--trust", str(dev_pki.ca_cert), check=False)
    assert bad.returncode == 1, bad.stdout + bad.stderr
    assert "first bad record node-1/7" in bad.stdout and "LOG INVALID" in bad.stdout
    import json

    as_json = json.loads(cli("log", "verify", "--database-url", f"sqlite:///{path}", "--trust", str(dev_pki.ca_cert),
                             "--json", check=False).stdout)
    assert as_json["valid"] is False and as_json["nodes"][0]["first_bad"] == 7


def test_tail_truncation_with_its_seals_is_caught_by_seals_kept_elsewhere(pristine, tmp_path, dev_pki) -> None:  # type: ignore[no-untyped-def]
    kept = tmp_path / "kept-seals"
    assert "6 seal(s)" in cli("log", "export-seals", "--database-url", f"sqlite:///{pristine}", "-o", str(kept)).stdout
    path = tampered(pristine, tmp_path, ("DELETE FROM msglog_record WHERE seq > 50", ()),
                    ("DELETE FROM msglog_seal WHERE first_seq > 50", ()),
                    ("UPDATE msglog_head SET seq = 50, chain_hash = (SELECT chain_hash FROM msglog_record WHERE seq = 50)", ()),
                    ("UPDATE msglog_sealer SET sealed_seq = 50", ()))
    args = ("log", "verify", "--database-url", f"sqlite:///{path}", "--trust", str(dev_pki.ca_cert))
    assert cli(*args).returncode == 0  # consistent in itself
    bad = cli(*args, "--known-seals", str(kept), check=False)
    assert bad.returncode == 1 and "first bad record node-1/51" in bad.stdout and "log truncated" in bad.stdout


def test_an_equivalent_spelling_of_the_same_values_is_not_an_alteration(pristine, trust, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The same subjects written with JSON escapes are the same record: the verifier's SQLite fast path does
    not match it, and the exact recomputation it falls back on accepts it (no false alarm)."""
    path = tampered(pristine, tmp_path, ("UPDATE msglog_record SET subjects = "
                                         "'[\"\\u0030\\u0031\\u0030190-10009\"]' WHERE seq = 38", ()))
    assert sqlite_rows(path, "SELECT subjects FROM msglog_record WHERE seq = 38")[0][0].startswith('["\\u0030')
    for kwargs in ({}, PARALLEL):
        report, _ = verdict(path, trust, **kwargs)
        assert report.ok, report.text()
