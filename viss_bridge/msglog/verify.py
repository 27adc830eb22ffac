"""``viss-bridge log verify``: check every node's chain, records, seals and time-stamps.

For each node the verifier recomputes every record's hash from its stored
fields and bytes, the hash chain, every seal's Merkle root, previous and
current chain head, checks every seal's XML-DSig signature and certificate
against the trust store and every time-stamp token, and that seals cover
the whole sequence without gaps. It names the first bad record (the lowest
sequence number any problem touches) and returns problems; the CLI exits
non-zero if there is any.

Detection and naming:
- a changed byte or field: the record's recomputed hash differs from the
  stored one (named exactly); if an attacker also rewrote the stored hashes,
  the chain or the seal over its range no longer matches (named: the first
  record whose chain link breaks, or the seal's first record);
- a deleted record: a gap in the sequence (named: the missing number), or a
  head that is ahead of the last record;
- an inserted or reordered record: its metadata carries its sequence number,
  so the hash or chain link of the first displaced record breaks (named);
- a forged seal: the signature or certificate fails; a deleted seal: the
  records it covered have no seal (named: its first record); unsealed records
  older than the grace period are reported too.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, field

from viss_bridge.msglog import merkle
from viss_bridge.msglog.records import GENESIS, META_COLUMNS, chain_next, record_hash
from viss_bridge.msglog.seals import SealInvalid, read_seal, verify_seal
from viss_bridge.msglog.store import LogStore
from viss_bridge.msglog.tsp import TimestampError, verify_timestamp
from viss_bridge.security.pki import TrustStore, subject_cn

SELECT_RECORDS = ("SELECT " + ", ".join(META_COLUMNS) + ", body, record_hash, chain_hash FROM msglog_record "
                  "WHERE node_id = ? ORDER BY seq")


RECORD_KINDS = {"missing", "altered", "chain", "head"}


@dataclass
class Problem:
    node: str
    seq: int | None
    kind: str
    message: str

    def __str__(self) -> str:
        where = f"record {self.node}/{self.seq}" if self.seq is not None else f"node {self.node}"
        return f"{where}: {self.message}"


@dataclass
class NodeReport:
    node: str
    first_seq: int = 1
    records: int = 0
    head_seq: int = 0
    seals: int = 0
    sealed_to: int = 0
    timestamps: int = 0
    unsealed: int = 0
    signers: set[str] = field(default_factory=set)
    tsas: set[str] = field(default_factory=set)
    latest_time: str | None = None
    problems: list[Problem] = field(default_factory=list)

    @property
    def first_bad(self) -> int | None:
        """The first record a problem names; a record-level finding beats the range of a seal it breaks."""
        exact = [p.seq for p in self.problems if p.seq is not None and p.kind in RECORD_KINDS]
        seqs = exact or [p.seq for p in self.problems if p.seq is not None]
        return min(seqs) if seqs else None

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass
class VerifyReport:
    nodes: list[NodeReport]
    seconds: float
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(n.ok for n in self.nodes)

    @property
    def records(self) -> int:
        return sum(n.records for n in self.nodes)

    def json(self) -> str:
        import json

        return json.dumps({"valid": self.ok, "records": self.records, "seconds": round(self.seconds, 3),
                           "nodes": [{"node": n.node, "valid": n.ok, "first_seq": n.first_seq, "head_seq": n.head_seq,
                                      "records": n.records, "seals": n.seals, "sealed_to": n.sealed_to,
                                      "timestamps": n.timestamps, "unsealed": n.unsealed, "first_bad": n.first_bad,
                                      "problems": [{"seq": p.seq, "kind": p.kind, "message": p.message}
                                                   for p in n.problems]} for n in self.nodes]}, indent=2)

    def text(self, limit: int = 20) -> str:
        lines = []
        for n in self.nodes:
            lines.append(f"node {n.node}: records {n.first_seq}..{n.head_seq} ({n.records} checked), "
                         f"{n.seals} seal(s) covering 1..{n.sealed_to}, {n.timestamps} time-stamped, "
                         f"{n.unsealed} not sealed yet")
            if n.signers:
                lines.append(f"  seals signed by: {', '.join(sorted(n.signers))}")
            if n.tsas:
                lines.append(f"  time-stamps by: {', '.join(sorted(n.tsas))}; newest record {n.latest_time}")
            if n.ok:
                lines.append("  OK: chain continuous, every record matches its hash, every seal and time-stamp valid")
            else:
                lines.append(f"  FAILED: first bad record {n.node}/{n.first_bad}" if n.first_bad is not None
                             else "  FAILED")
                for problem in n.problems[:limit]:
                    lines.append(f"   - {problem}")
                if len(n.problems) > limit:
                    lines.append(f"   ... and {len(n.problems) - limit} more problem(s)")
        for warning in self.warnings:
            lines.append(f"warning: {warning}")
        rate = self.records / self.seconds if self.seconds else 0
        lines.append(f"{'LOG VALID' if self.ok else 'LOG INVALID'}: {len(self.nodes)} node(s), {self.records} record(s) "
                     f"in {self.seconds:.2f} s ({rate:,.0f} records/s)")
        return "\n".join(lines)


def verify_log(store: LogStore, trust: TrustStore, *, nodes: list[str] | None = None,
               unsealed_grace: float | None = 300.0, require_timestamps: bool = False,
               known_seals: list[bytes] = ()) -> VerifyReport:  # type: ignore[assignment]
    """Verify every node; ``known_seals`` are seal documents kept outside the database (they must all be in it)."""
    started = time.perf_counter()
    reports = [verify_node(store, node, trust, unsealed_grace=unsealed_grace, require_timestamps=require_timestamps)
               for node in (nodes or store.nodes())]
    by_node = {r.node: r for r in reports}
    for data in known_seals:
        try:
            info = read_seal(data)
        except SealInvalid as exc:
            reports[0].problems.append(Problem(reports[0].node if reports else "?", None, "known-seal",
                                               f"a kept seal cannot be read: {exc}"))
            continue
        report = by_node.get(info.node)
        if report is None:
            if nodes and info.node not in nodes:
                continue
            report = NodeReport(info.node)
            reports.append(report)
            by_node[info.node] = report
        stored = store.query("SELECT seal_xml FROM msglog_seal WHERE node_id = ? AND first_seq = ?",
                             (info.node, info.first_seq))
        if not stored or bytes(stored[0][0]) != data:
            report.problems.append(Problem(info.node, info.first_seq, "missing",
                                           f"seal {info.first_seq}..{info.last_seq} kept outside the log is "
                                           + ("missing from it (log truncated?)" if not stored else "different in it")))
    return VerifyReport(reports, time.perf_counter() - started)


def export_seals(store: LogStore, folder: str, since_seq: int = 0, node: str | None = None) -> int:
    """Write seal documents (and tokens) to ``folder`` for safe keeping outside the database; return how many."""
    from pathlib import Path

    target = Path(folder)
    target.mkdir(parents=True, exist_ok=True)
    count = 0
    for node_id, first, last, xml, tsr in store.query(
            "SELECT node_id, first_seq, last_seq, seal_xml, tsr FROM msglog_seal WHERE last_seq > ?"
            + (" AND node_id = ?" if node else "") + " ORDER BY node_id, first_seq",
            (since_seq, node) if node else (since_seq,)):
        stem = target / f"{node_id}-{int(first):09d}-{int(last):09d}"
        stem.with_suffix(".xml").write_bytes(bytes(xml))
        if tsr is not None:
            stem.with_suffix(".tsr").write_bytes(bytes(tsr))
        count += 1
    return count


def verify_node(store: LogStore, node: str, trust: TrustStore, *, unsealed_grace: float | None = 300.0,
                require_timestamps: bool = False) -> NodeReport:
    report = NodeReport(node)
    problems = report.problems

    def problem(seq: int | None, kind: str, message: str) -> None:
        problems.append(Problem(node, seq, kind, message))

    head = store.query("SELECT seq, chain_hash FROM msglog_head WHERE node_id = ?", (node,))
    if not head:
        problem(None, "head", "has no chain head")
        return report
    head_seq, head_chain = int(head[0][0]), bytes(head[0][1])
    report.head_seq = head_seq
    # Archived and purged records: the chain continues from the last purged archive's digest.
    start, start_chain = 1, GENESIS
    purged = store.query("SELECT last_seq, last_chain_hash FROM msglog_archive WHERE node_id = ? AND purged = 1 "
                         "ORDER BY last_seq DESC LIMIT 1", (node,))
    if purged:
        start, start_chain = int(purged[0][0]) + 1, bytes(purged[0][1])
    report.first_seq = start
    seals = [(int(r[0]), int(r[1]), bytes(r[2]), r[3]) for r in store.query(
        "SELECT first_seq, last_seq, seal_xml, tsr FROM msglog_seal WHERE node_id = ? AND last_seq >= ? ORDER BY first_seq",
        (node, start))]
    max_rows = store.query("SELECT MAX(seq) FROM msglog_record WHERE node_id = ?", (node,))
    max_seq = int(max_rows[0][0] or 0)
    # Size the work arrays by the records that exist: a head or seal claiming more is reported, not allocated.
    top = max_seq
    size = max(0, top - start + 1)
    leaves = bytearray(32 * size)
    pure = bytearray(32 * size)  # the chain recomputed from record contents alone
    present = bytearray(size)

    expected = start
    prev_stored, prev_pure = start_chain, start_chain
    for row in store.stream(SELECT_RECORDS, (node,)):
        values = dict(zip(META_COLUMNS, row[:len(META_COLUMNS)]))
        seq = int(values["seq"])
        body, stored_leaf, stored_chain = bytes(row[-3]), bytes(row[-2]), bytes(row[-1])
        if seq < start:
            continue  # archived (and kept until retention deletes it)
        report.records += 1
        if seq != expected:
            if seq > expected:
                problem(expected, "missing", f"is missing (records {expected}..{seq - 1} deleted)"
                        if seq - 1 > expected else "is missing (deleted)")
            prev_pure = None  # type: ignore[assignment]
            expected = seq
        _, leaf = record_hash(values, body)
        pos = seq - start
        leaves[pos * 32:pos * 32 + 32] = leaf
        present[pos] = 1
        if leaf != stored_leaf:
            problem(seq, "altered", "content does not match its record hash (message bytes or metadata altered)")
        elif chain_next(prev_stored, leaf) != stored_chain:
            problem(seq, "chain", "chain link broken (record inserted, reordered, or its hashes rewritten)")
        if prev_pure is not None:
            prev_pure = chain_next(prev_pure, leaf)
            pure[pos * 32:pos * 32 + 32] = prev_pure
        prev_stored = stored_chain
        report.latest_time = values["recorded_at"]
        expected = seq + 1
    if expected <= head_seq:
        problem(expected, "missing", f"is missing (records {expected}..{head_seq} deleted from the end of the log)")
    elif head_seq < expected - 1:
        problem(head_seq + 1, "head", f"lies beyond the chain head {head_seq} (head rewound or records inserted)")
    elif expected - 1 >= start and head_chain != prev_stored:
        problem(head_seq, "head", "the node's head digest does not match the last record")

    def pure_at(seq: int) -> bytes | None:
        if seq == start - 1:
            return start_chain
        pos = seq - start
        if pos < 0 or pos >= size or not present[pos]:
            return None
        value = bytes(pure[pos * 32:pos * 32 + 32])
        return None if value == bytes(32) else value

    # Seals: contiguous cover, signature, content against the records, time-stamp.
    next_start = start
    for first, last, xml, tsr in seals:
        if first > next_start:
            problem(next_start, "seal-missing", f"records {next_start}..{first - 1} have no seal (seal deleted?)")
        elif first < next_start:
            problem(first, "seal-overlap", f"seal {first}..{last} overlaps an earlier seal")
        next_start = max(next_start, last + 1)
        stamp, stamp_error = None, None
        if tsr is not None:  # a valid time-stamp fixes the moment the seal's certificate must have been valid
            try:
                stamp = verify_timestamp(bytes(tsr), read_seal(xml).signature_value, trust)
            except (TimestampError, SealInvalid) as exc:
                stamp_error = str(exc)
        try:
            info, signer = verify_seal(xml, trust, at=stamp.gen_time if stamp else None)
        except SealInvalid as exc:
            problem(first, "seal-forged", f"seal {first}..{last}: {exc}")
            continue
        report.seals += 1
        report.sealed_to = max(report.sealed_to, last)
        report.signers.add(subject_cn(signer) or signer.subject.rfc4514_string())
        if (info.node, info.first_seq, info.last_seq) != (node, first, last):
            problem(first, "seal-forged", f"seal {first}..{last}: signed content says {info.node} "
                                          f"{info.first_seq}..{info.last_seq}")
            continue
        lo, hi = first - start, last - start
        if lo < 0 or hi >= size or not all(present[lo:hi + 1]):
            problem(first, "seal-records", f"seal {first}..{last}: records it covers are missing")
            continue
        root = merkle.root([bytes(leaves[i * 32:i * 32 + 32]) for i in range(lo, hi + 1)])
        if root != info.merkle_root:
            problem(first, "seal-merkle", f"seal {first}..{last}: Merkle root does not match the records "
                                          "(a record in this range was altered)")
        if pure_at(first - 1) not in (None, info.previous_chain_head):
            problem(first, "seal-chain", f"seal {first}..{last}: previous chain head does not match the records")
        if pure_at(last) not in (None, info.chain_head):
            problem(first, "seal-chain", f"seal {first}..{last}: chain head does not match the records")
        if tsr is None:
            if require_timestamps:
                problem(first, "timestamp-missing", f"seal {first}..{last} has no time-stamp")
            continue
        if stamp is None:
            problem(first, "timestamp", f"seal {first}..{last}: time-stamp invalid: {stamp_error}")
            continue
        report.timestamps += 1
        report.tsas.add(subject_cn(stamp.tsa) or "?")
        if stamp.gen_time < _parse(info.created) - dt.timedelta(seconds=5):
            problem(first, "timestamp", f"seal {first}..{last}: time-stamp {stamp.gen_time} predates the seal")
    top_record = max(expected - 1, head_seq)
    report.unsealed = max(0, top_record - max(next_start - 1, start - 1))
    if report.unsealed and unsealed_grace is not None:
        oldest = store.query("SELECT recorded_at FROM msglog_record WHERE node_id = ? AND seq = ?", (node, next_start))
        if oldest and oldest[0][0]:
            age = (dt.datetime.now(dt.timezone.utc) - _parse(oldest[0][0])).total_seconds()
            if age > unsealed_grace:
                problem(next_start, "seal-missing", f"not sealed {age:.0f} s after it was recorded "
                                                    f"(grace {unsealed_grace:.0f} s): seal missing or sealer down")
    problems.sort(key=lambda p: (p.kind not in RECORD_KINDS, p.seq if p.seq is not None else -1))
    return report


def _parse(text: str) -> dt.datetime:
    value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)
