"""Archives and retention: old, sealed records move to files that continue the chain.

``viss-bridge log archive`` writes, per node, the records of whole seals whose
records are all older than ``archive_after_days`` to one gzip'd JSON Lines
file, ``<archive_dir>/<node>/<node>-<first>-<last>.vbarc.jsonl.gz``::

    {"format": "viss-bridge-archive-v1", "node": ..., "first_seq": ..., "last_seq": ...,
     "previous_chain_hash": hex, "previous_archive": "<file name or null>", "created": ...}
    {"type": "record", "fields": {...the record's columns...}, "body": base64, "chain_hash": hex}   one per record
    {"type": "seal", "first_seq": ..., "last_seq": ..., "seal_xml": base64, "tsr": base64 or null}  one per seal
    {"type": "end", "records": n, "last_chain_hash": hex}

``previous_chain_hash`` is the last digest of the previous archive (32 zero
bytes for the first), so archives chain to each other and to the live log;
each one verifies on its own (``viss-bridge log verify-archive``): records,
chain, seals (signature, Merkle root, chain heads) and time-stamps.

``viss-bridge log purge`` (retention) deletes from the database only records
that are in an archive whose file is present and unchanged (its SHA-256 is
recorded), and only those older than ``retention_days``; the live log then
verifies from the archive's last digest onwards.
"""

from __future__ import annotations

import base64
import datetime as dt
import gzip
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

from viss_bridge.msglog import merkle
from viss_bridge.msglog.records import GENESIS, META_COLUMNS, chain_next, record_hash, utc_text
from viss_bridge.msglog.seals import SealInvalid, read_seal, verify_seal
from viss_bridge.msglog.store import LogStore
from viss_bridge.msglog.tsp import TimestampError, verify_timestamp
from viss_bridge.security.pki import TrustStore

FORMAT = "viss-bridge-archive-v1"


class ArchiveError(Exception):
    pass


def _cutoff(days: float) -> str:
    return utc_text(dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=days))


def archive_node(store: LogStore, node: str, folder: str | Path, older_than_days: float,
                 progress: Callable[[int, int | None], None] | None = None) -> Path | None:
    """Archive the whole seals of ``node`` older than the cut-off; return the file written (or None).

    ``progress(records written, records to archive)`` follows the (long) copy into the archive file."""
    last = store.query("SELECT last_seq, last_chain_hash, file FROM msglog_archive WHERE node_id = ? "
                       "ORDER BY last_seq DESC LIMIT 1", (node,))
    archived, previous_hash, previous_file = (int(last[0][0]), bytes(last[0][1]), last[0][2]) if last else (0, GENESIS, None)
    cutoff = _cutoff(older_than_days)
    seals = store.query("SELECT s.first_seq, s.last_seq, s.seal_xml, s.tsr FROM msglog_seal s JOIN msglog_record r ON "
                        "r.node_id = s.node_id AND r.seq = s.last_seq WHERE s.node_id = ? AND s.first_seq > ? AND "
                        "r.recorded_at < ? ORDER BY s.first_seq", (node, archived, cutoff))
    chosen = []
    expected = archived + 1
    for first, last_seq, xml, tsr in seals:
        if int(first) != expected:
            break
        chosen.append((int(first), int(last_seq), bytes(xml), bytes(tsr) if tsr is not None else None))
        expected = int(last_seq) + 1
    if not chosen:
        return None
    first_seq, last_seq = chosen[0][0], chosen[-1][1]
    target = Path(folder) / node / f"{node}-{first_seq:09d}-{last_seq:09d}.vbarc.jsonl.gz"
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".partial")
    chain = previous_hash
    count = 0
    with gzip.open(partial, "wt", encoding="utf-8") as out:
        out.write(json.dumps({"format": FORMAT, "node": node, "first_seq": first_seq, "last_seq": last_seq,
                              "previous_chain_hash": previous_hash.hex(), "previous_archive": previous_file,
                              "created": utc_text(dt.datetime.now(dt.timezone.utc))}) + "\n")
        columns = ", ".join(META_COLUMNS)
        for row in store.stream(f"SELECT {columns}, body, chain_hash FROM msglog_record WHERE node_id = ? AND seq BETWEEN ? "
                                "AND ? ORDER BY seq", (node, first_seq, last_seq)):
            fields = dict(zip(META_COLUMNS, row[:len(META_COLUMNS)]))
            body, stored = bytes(row[-2]), bytes(row[-1])
            if int(fields["seq"]) != first_seq + count:
                raise ArchiveError(f"record {node}/{first_seq + count} is missing: run 'viss-bridge log verify'")
            chain = chain_next(chain, record_hash(fields, body)[1])
            if chain != stored:
                raise ArchiveError(f"record {node}/{fields['seq']} breaks the chain: run 'viss-bridge log verify'")
            out.write(json.dumps({"type": "record", "fields": fields, "body": base64.b64encode(body).decode(),
                                  "chain_hash": stored.hex()}) + "\n")
            count += 1
            if progress is not None and count % 1000 == 0:
                progress(count, last_seq - first_seq + 1)
        if progress is not None:
            progress(count, last_seq - first_seq + 1)
        for first, last_s, xml, tsr in chosen:
            out.write(json.dumps({"type": "seal", "first_seq": first, "last_seq": last_s,
                                  "seal_xml": base64.b64encode(xml).decode(),
                                  "tsr": base64.b64encode(tsr).decode() if tsr else None}) + "\n")
        out.write(json.dumps({"type": "end", "records": count, "last_chain_hash": chain.hex()}) + "\n")
    if count != last_seq - first_seq + 1:
        partial.unlink()
        raise ArchiveError(f"records {node}/{first_seq}..{last_seq} are incomplete")
    partial.rename(target)
    digest = hashlib.sha256(target.read_bytes()).hexdigest()
    with store.transaction() as cur:
        cur.execute(store.sql("INSERT INTO msglog_archive (node_id, first_seq, last_seq, last_chain_hash, file, file_sha256, "
                              "created_at, purged) VALUES (?, ?, ?, ?, ?, ?, ?, 0)"),
                    (node, first_seq, last_seq, chain, str(target), digest, utc_text(dt.datetime.now(dt.timezone.utc))))
    return target


def purge_node(store: LogStore, node: str, retention_days: float) -> int:
    """Delete archived records older than the retention period whose archive file is intact; return how many."""
    cutoff = _cutoff(retention_days)
    deleted = 0
    for first, last, file, digest in store.query("SELECT first_seq, last_seq, file, file_sha256 FROM msglog_archive "
                                                 "WHERE node_id = ? AND purged = 0 ORDER BY first_seq", (node,)):
        path = Path(file)
        if not path.exists() or hashlib.sha256(path.read_bytes()).hexdigest() != digest:
            raise ArchiveError(f"archive {file} is missing or altered: nothing deleted")
        newest = store.query("SELECT recorded_at FROM msglog_record WHERE node_id = ? AND seq = ?", (node, last))
        if newest and newest[0][0] >= cutoff:
            break  # not old enough yet; later archives are younger still
        with store.transaction() as cur:
            cur.execute(store.sql("DELETE FROM msglog_record WHERE node_id = ? AND seq BETWEEN ? AND ?"), (node, first, last))
            deleted += cur.rowcount
            cur.execute(store.sql("UPDATE msglog_archive SET purged = 1 WHERE node_id = ? AND first_seq = ?"), (node, first))
    return deleted


@dataclass
class ArchiveReport:
    file: str
    node: str = "?"
    first_seq: int = 0
    last_seq: int = 0
    records: int = 0
    seals: int = 0
    timestamps: int = 0
    previous_chain_hash: str = ""
    last_chain_hash: str = ""
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def text(self) -> str:
        lines = [f"archive {self.file}: node {self.node}, records {self.first_seq}..{self.last_seq} ({self.records}), "
                 f"{self.seals} seal(s), {self.timestamps} time-stamped",
                 f"  continues chain digest {self.previous_chain_hash[:16]}..., ends at {self.last_chain_hash[:16]}..."]
        lines += [f"  - {p}" for p in self.problems[:20]]
        lines.append("ARCHIVE VALID" if self.ok else f"ARCHIVE INVALID ({len(self.problems)} problem(s))")
        return "\n".join(lines)


def _lines(path: Path) -> Iterator[dict[str, Any]]:
    with gzip.open(path, "rt", encoding="utf-8") as source:
        for line in source:
            yield json.loads(line)


def verify_archive(path: str | Path, trust: TrustStore, previous: str | Path | None = None) -> ArchiveReport:
    """Verify one archive file on its own (and, given the previous archive, that they join)."""
    report = ArchiveReport(str(path))
    try:
        lines = _lines(Path(path))
        header = next(lines)
        if header.get("format") != FORMAT:
            raise ArchiveError("not a viss-bridge archive")
        report.node, report.first_seq, report.last_seq = header["node"], header["first_seq"], header["last_seq"]
        report.previous_chain_hash = header["previous_chain_hash"]
        chain = bytes.fromhex(header["previous_chain_hash"])
        leaves: dict[int, bytes] = {}
        chains: dict[int, bytes] = {report.first_seq - 1: chain}
        expected = report.first_seq
        end = None
        seals = []
        for item in lines:
            kind = item.get("type")
            if kind == "record":
                fields, body = item["fields"], base64.b64decode(item["body"])
                seq = int(fields["seq"])
                if seq != expected or fields["node_id"] != report.node:
                    report.problems.append(f"record {report.node}/{expected}: missing or out of order")
                    expected = seq
                leaf = record_hash(fields, body)[1]
                chain = chain_next(chain, leaf)
                if chain.hex() != item["chain_hash"]:
                    report.problems.append(f"record {report.node}/{seq}: chain link broken (altered?)")
                    chain = bytes.fromhex(item["chain_hash"])
                leaves[seq], chains[seq] = leaf, chain
                report.records += 1
                expected = seq + 1
            elif kind == "seal":
                seals.append(item)
            elif kind == "end":
                end = item
        if end is None:
            report.problems.append("the archive is truncated (no end line)")
        elif end["last_chain_hash"] != chain.hex() or end["records"] != report.records:
            report.problems.append("the end line does not match the records")
        if expected != report.last_seq + 1:
            report.problems.append(f"records end at {expected - 1}, the header says {report.last_seq}")
        report.last_chain_hash = chain.hex()
        next_start = report.first_seq
        for item in seals:
            first, last = int(item["first_seq"]), int(item["last_seq"])
            if first != next_start:
                report.problems.append(f"record {report.node}/{next_start}: no seal covers it")
            next_start = last + 1
            seal_xml = base64.b64decode(item["seal_xml"])
            stamp = None
            if item.get("tsr"):
                try:
                    stamp = verify_timestamp(base64.b64decode(item["tsr"]), read_seal(seal_xml).signature_value, trust)
                    report.timestamps += 1
                except (TimestampError, SealInvalid) as exc:
                    report.problems.append(f"seal {first}..{last}: time-stamp invalid: {exc}")
            try:  # the certificate must have been valid when the seal was time-stamped (or now, without a token)
                info, _ = verify_seal(seal_xml, trust, at=stamp.gen_time if stamp else None)
            except SealInvalid as exc:
                report.problems.append(f"seal {first}..{last}: {exc}")
                continue
            span = range(first, last + 1)
            range_leaves = [known for s in span if (known := leaves.get(s)) is not None]
            if (info.node, info.first_seq, info.last_seq) != (report.node, first, last) \
                    or len(range_leaves) != len(span) or merkle.root(range_leaves) != info.merkle_root:
                report.problems.append(f"seal {first}..{last}: does not match the records (Merkle root)")
            elif chains.get(first - 1) != info.previous_chain_head or chains.get(last) != info.chain_head:
                report.problems.append(f"seal {first}..{last}: chain heads do not match the records")
            report.seals += 1
        if next_start != report.last_seq + 1:
            report.problems.append(f"records {next_start}..{report.last_seq} have no seal")
        if previous is not None:
            *_, prev_end = _lines(Path(previous))
            if prev_end.get("last_chain_hash") != report.previous_chain_hash:
                report.problems.append(f"does not continue {previous}: its last digest differs")
    except (OSError, EOFError, ValueError, KeyError, ArchiveError, StopIteration) as exc:
        report.problems.append(f"unreadable: {exc}")
    return report
