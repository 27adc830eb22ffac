"""Archives continue the chain, verify on their own and against each other; retention deletes only archived records."""

from __future__ import annotations

import gzip
import hashlib
import sqlite3

from tests.conftest import cli
from viss_bridge.msglog import MessageLog, RecordInput
from viss_bridge.msglog.archive import verify_archive
from viss_bridge.msglog.store import LogStore
from viss_bridge.msglog.verify import verify_log
from viss_bridge.security.keys import SigningKey
from viss_bridge.security.pki import TrustStore


def fill(msglog: MessageLog, start: int, count: int) -> None:
    for i in range(start, start + count):
        msglog.record(RecordInput(f"<m n='{i}'/>".encode(), "provider" if i % 3 == 0 else "consumer", "request", f"e{i}"))
        if (i + 1) % 10 == 0:
            msglog.seal_pending(force=True)


def test_archive_purge_and_verify(tmp_path, dev_pki) -> None:  # type: ignore[no-untyped-def]
    url = f"sqlite:///{tmp_path / 'log.sqlite'}"
    msglog = MessageLog(url, "node-1", signing_key=SigningKey.from_identity(dev_pki.node), seal_every=10)
    msglog.open()
    fill(msglog, 0, 30)
    env = {"VISS_BRIDGE_LOG_DATABASE_URL": url, "VISS_BRIDGE_TRUST_ANCHORS": str(dev_pki.ca_cert),
           "VISS_BRIDGE_ARCHIVE_DIR": str(tmp_path / "archive")}
    assert "archived to" in cli("log", "archive", "--older-than-days", "0", env=env).stdout
    fill(msglog, 30, 25)  # 50 sealed, 5 not yet
    second = cli("log", "archive", "--older-than-days", "0", env=env).stdout
    files = sorted((tmp_path / "archive" / "node-1").glob("*.gz"))
    assert len(files) == 2 and "000000031-000000050" in second
    trust = TrustStore.from_files(dev_pki.ca_cert)
    first_report = verify_archive(files[0], trust)
    assert first_report.ok and first_report.records == 30 and first_report.seals == 3, first_report.text()
    assert first_report.previous_chain_hash == "00" * 32
    assert verify_archive(files[1], trust, previous=files[0]).ok
    out = cli("log", "verify-archive", *map(str, files), env=env).stdout
    assert out.count("ARCHIVE VALID") == 2

    # Retention: only archived records go; the live log verifies from the archive's last digest on.
    assert "deleted 50 archived record(s)" in cli("log", "purge", "--retention-days", "0", env=env).stdout
    store = LogStore(url)
    remaining = store.query("SELECT MIN(seq), COUNT(*) FROM msglog_record")[0]
    assert remaining == (51, 5)
    fill(msglog, 55, 5)
    report = verify_log(store, trust)
    assert report.ok and report.nodes[0].first_seq == 51, report.text()

    # An altered archive fails on its own, and purge refuses to trust it.
    with gzip.open(files[1], "rt") as source:
        lines = source.read().splitlines()
    lines[3] = lines[3].replace('"provider"', '"consumer"') if '"provider"' in lines[3] else lines[3].replace(
        '"consumer"', '"provider"')
    altered = tmp_path / "altered.gz"
    with gzip.open(altered, "wt") as target:
        target.write("\n".join(lines) + "\n")
    bad = verify_archive(altered, trust)
    assert not bad.ok and "record node-1/33" in bad.text()
    assert not verify_archive(files[0], trust, previous=files[1]).ok  # wrong order does not join
    conn = sqlite3.connect(tmp_path / "log.sqlite")
    conn.execute("UPDATE msglog_archive SET file_sha256 = ?", (hashlib.sha256(b"x").hexdigest(),))
    conn.execute("UPDATE msglog_archive SET purged = 0")
    conn.commit()
    conn.close()
    refused = cli("log", "purge", "--retention-days", "0", env=env, check=False)
    assert refused.returncode != 0 and "missing or altered" in refused.stderr
