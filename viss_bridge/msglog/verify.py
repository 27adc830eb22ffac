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

A big log is checked in ranges at seal boundaries by a pool of processes (one
per core), each streaming its records by keyset pagination, so memory does not
grow with the log and every core works; see :func:`verify_node`.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, field
from hashlib import sha256
from typing import Any, Callable, Iterator, Sequence

from viss_bridge.msglog import merkle
from viss_bridge.msglog.records import GENESIS, META_COLUMNS, SQLITE_META_TAIL, row_record_hash, tail_record_hash
from viss_bridge.msglog.seals import SealInvalid, read_seal, verify_seal
from viss_bridge.msglog.store import LogStore
from viss_bridge.msglog.tsp import TimestampError, verify_timestamp
from viss_bridge.security.pki import TrustStore, subject_cn

SELECT_TAILS = ("SELECT seq, " + SQLITE_META_TAIL + ", body, record_hash, chain_hash FROM msglog_record "
                "WHERE node_id = ? AND seq > ? AND seq <= ? ORDER BY seq")
SELECT_ONE = ("SELECT " + ", ".join(META_COLUMNS) + ", body, record_hash, chain_hash FROM msglog_record "
              "WHERE node_id = ? AND seq = ?")
SELECT_PAGE = ("SELECT " + ", ".join(META_COLUMNS) + ", body, record_hash, chain_hash FROM msglog_record "
               "WHERE node_id = ? AND seq > ? AND seq <= ? ORDER BY seq LIMIT ?")


# Ranges handed to the worker processes: whole seals, about this many records each. Small enough that a
# range's work arrays stay a few MB whatever the log's size, big enough that a range's fixed cost is noise.
RANGE_RECORDS = 25_000
# Below this many records one process is faster than starting a pool.
PARALLEL_FROM = 60_000
PAGE = 2_000  # keyset page: rows fetched per query


Progress = Callable[[int, int], None]


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
               known_seals: Sequence[bytes] = (), workers: int | None = None,
               progress: Progress | None = None, range_records: int = RANGE_RECORDS,
               parallel_from: int = PARALLEL_FROM) -> VerifyReport:
    """Verify every node; ``known_seals`` are seal documents kept outside the database (they must all be in it).

    ``progress(done, total)`` gets the records checked so far of the node being verified and its total;
    ``workers`` processes (default: one per core) share a big log (see :func:`verify_node`)."""
    started = time.perf_counter()
    reports = [verify_node(store, node, trust, unsealed_grace=unsealed_grace, require_timestamps=require_timestamps,
                           workers=workers, progress=progress, range_records=range_records, parallel_from=parallel_from)
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


@dataclass(frozen=True)
class RangeTask:
    """Records ``first..last`` of ``node`` and the seals starting in ``seal_from..seal_to``."""

    node: str
    first: int
    last: int
    seal_from: int
    seal_to: int
    start: int  # the node's first live record (after purged archives) and the chain value before it
    start_chain: bytes
    final: bool  # the last range: its tail is checked against the head by the caller
    require_timestamps: bool


@dataclass
class RangeResult:
    records: int = 0
    problems: list[Problem] = field(default_factory=list)
    seals: int = 0
    sealed_to: int = 0
    timestamps: int = 0
    signers: set[str] = field(default_factory=set)
    tsas: set[str] = field(default_factory=set)
    latest_time: str | None = None
    next_expected: int = 0  # one past the last record seen (the range's first if none)
    last_stored: bytes = b""  # the stored chain hash of the last record seen (or the one handed in)
    pure_end: bytes | None = None  # the chain recomputed from contents at ``last`` (None: unknown, e.g. a gap)
    boundary: tuple[int, int, bytes] | None = None  # a valid seal starting at ``first``: (first, last, previous head)


def verify_node(store: LogStore, node: str, trust: TrustStore, *, unsealed_grace: float | None = 300.0,
                require_timestamps: bool = False, workers: int | None = None, progress: Progress | None = None,
                range_records: int = RANGE_RECORDS, parallel_from: int = PARALLEL_FROM) -> NodeReport:
    """Verify one node's chain, records and seals; big logs in ``workers`` processes (default: one per core).

    The records are cut into ranges at seal boundaries. Each range is checked on its own, streaming its
    records by keyset pagination: record hashes, stored chain links (from the stored chain hash just before
    the range), gaps, and every seal starting in it (signature, time-stamp, Merkle root, chain heads, the
    recomputed chain starting from that same stored hash). Where two ranges meet, the recomputed chain at the
    end of one must equal the previous chain head of the seal that starts the next. Memory is bounded by a
    range, not the log; ``progress(done, total)`` is called as records are checked.
    """
    report = NodeReport(node)
    problems = report.problems

    def problem(seq: int | None, kind: str, message: str) -> None:
        problems.append(Problem(node, seq, kind, message))

    # One statement, so the head and the last record are one snapshot even while the node appends.
    head = store.query("SELECT h.seq, h.chain_hash, (SELECT MAX(r.seq) FROM msglog_record r WHERE r.node_id = h.node_id) "
                       "FROM msglog_head h WHERE h.node_id = ?", (node,))
    if not head:
        problem(None, "head", "has no chain head")
        return report
    head_seq, head_chain, max_seq = int(head[0][0]), bytes(head[0][1]), int(head[0][2] or 0)
    report.head_seq = head_seq
    # Archived and purged records: the chain continues from the last purged archive's digest.
    start, start_chain = 1, GENESIS
    purged = store.query("SELECT last_seq, last_chain_hash FROM msglog_archive WHERE node_id = ? AND purged = 1 "
                         "ORDER BY last_seq DESC LIMIT 1", (node,))
    if purged:
        start, start_chain = int(purged[0][0]) + 1, bytes(purged[0][1])
    report.first_seq = start
    bounds = [(int(r[0]), int(r[1])) for r in store.query(
        "SELECT first_seq, last_seq FROM msglog_seal WHERE node_id = ? AND last_seq >= ? ORDER BY first_seq",
        (node, start))]
    # Seals: a contiguous cover from the first live record.
    next_start = start
    for first, last in bounds:
        if first > next_start:
            problem(next_start, "seal-missing", f"records {next_start}..{first - 1} have no seal (seal deleted?)")
        elif first < next_start:
            problem(first, "seal-overlap", f"seal {first}..{last} overlaps an earlier seal")
        next_start = max(next_start, last + 1)

    top = max(max_seq, start - 1)
    tasks = plan_ranges(node, start, start_chain, top, bounds, range_records, require_timestamps)
    total = max(0, top - start + 1)
    parallel = (len(tasks) > 1 and total >= parallel_from and (workers is None or workers > 1)
                and _shareable(store))
    if not parallel and len(tasks) > 1:
        tasks = plan_ranges(node, start, start_chain, top, bounds, None, require_timestamps)
    results = _run(store, trust, tasks, workers, progress, total) if parallel else \
        [check_range(store, task, trust, progress=progress, total=total) for task in tasks]

    previous: RangeResult | None = None
    for task, result in zip(tasks, results):
        report.records += result.records
        report.seals += result.seals
        report.sealed_to = max(report.sealed_to, result.sealed_to)
        report.timestamps += result.timestamps
        report.signers |= result.signers
        report.tsas |= result.tsas
        report.latest_time = result.latest_time or report.latest_time
        problems.extend(result.problems)
        if previous is not None and previous.pure_end is not None and result.boundary is not None:
            first, last, claimed = result.boundary
            if claimed != previous.pure_end:
                problem(first, "seal-chain", f"seal {first}..{last}: previous chain head does not match the records")
        previous = result
    expected = results[-1].next_expected
    last_stored = results[-1].last_stored
    if expected <= head_seq:
        problem(expected, "missing", f"is missing (records {expected}..{head_seq} deleted from the end of the log)")
    elif head_seq < expected - 1:
        problem(head_seq + 1, "head", f"lies beyond the chain head {head_seq} (head rewound or records inserted)")
    elif expected - 1 >= start and head_chain != last_stored:
        problem(head_seq, "head", "the node's head digest does not match the last record")

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


def plan_ranges(node: str, start: int, start_chain: bytes, top: int, bounds: list[tuple[int, int]],
                range_records: int | None, require_timestamps: bool) -> list[RangeTask]:
    """Cut ``start..top`` into ranges of about ``range_records`` (None: one range), only where no seal spans the cut."""
    cuts: list[int] = []
    if range_records is not None:
        covered_to, begin = start - 1, start
        for first, last in bounds:
            if first > covered_to and first > begin and first <= top and first - begin >= range_records:
                cuts.append(first)
                begin = first
            covered_to = max(covered_to, last)
    edges = [start, *cuts, top + 1]
    tasks = []
    for i in range(len(edges) - 1):
        final = i == len(edges) - 2
        tasks.append(RangeTask(node, edges[i], edges[i + 1] - 1, seal_from=edges[i] if i else -(2 ** 62),
                               seal_to=2 ** 62 if final else edges[i + 1] - 1, start=start, start_chain=start_chain,
                               final=final, require_timestamps=require_timestamps))
    return tasks


def _shareable(store: LogStore) -> bool:
    """Can other processes open this store? (Not an in-memory SQLite database.)"""
    return store.is_pg or (store.path != ":memory:" and "mode=memory" not in store.path)


def check_range(store: LogStore, task: RangeTask, trust: TrustStore, *, progress: Progress | None = None,
                total: int = 0) -> RangeResult:
    """Check one range's records and the seals that start in it (see :func:`verify_node`).

    On SQLite the rows come with their canonical metadata written by SQLite (records.SQLITE_META_TAIL);
    where SQLite cannot write it (a value of a type that does not belong in its column), the range is
    checked again reading every column, as on PostgreSQL."""
    if not store.is_pg:
        import sqlite3

        try:
            return _check_range(store, task, trust, progress=None, total=total, fast=True, report=progress)
        except sqlite3.Error:
            pass
    return _check_range(store, task, trust, progress=progress, total=total, fast=False, report=None)


def _check_range(store: LogStore, task: RangeTask, trust: TrustStore, *, progress: Progress | None, total: int,
                 fast: bool, report: Progress | None) -> RangeResult:
    """:func:`check_range`; ``fast``: read the SQLite metadata tails; ``report``: progress told once at the
    end (a fast pass that fails half-way must not have counted its records already)."""
    node, first_seq, last_seq, start = task.node, task.first, task.last, task.start
    result = RangeResult(next_expected=first_seq)
    problems = result.problems

    def problem(seq: int | None, kind: str, message: str) -> None:
        problems.append(Problem(node, seq, kind, message))

    # The chain hash before the range, as stored: the link check of the range's first record starts from it
    # (as a single pass over the whole log would), and so does the recomputed chain of a range after the first.
    prev_stored: bytes = task.start_chain
    prev_pure: bytes | None = task.start_chain
    if first_seq > start:
        before = store.query("SELECT seq, chain_hash FROM msglog_record WHERE node_id = ? AND seq >= ? AND seq < ? "
                             "ORDER BY seq DESC LIMIT 1", (node, start, first_seq))
        prev_stored = bytes(before[0][1]) if before else task.start_chain
        prev_pure = bytes(before[0][1]) if before and int(before[0][0]) == first_seq - 1 else None
    base_pure = prev_pure
    size = max(0, last_seq - first_seq + 1)
    # Per position in the range: the record hash (None: no such record) and the chain recomputed from record
    # contents alone (None: unknown, after a gap). Lists of the digests themselves: no copying per record.
    leaves: list[bytes | None] = [None] * size
    pure: list[bytes | None] = [None] * size

    expected = first_seq
    seen = 0
    for row in (_tails(store, node, max(first_seq, start), last_seq) if fast
                else _records(store, node, max(first_seq, start), last_seq)):
        if fast:
            seq, tail, body, stored_leaf, stored_chain = row
            leaf = tail_record_hash(body, tail)
            if leaf != stored_leaf:  # decide with the exact encoding, never with the fast one
                full = store.query(SELECT_ONE, (node, seq))[0]
                leaf = row_record_hash(full, bytes(full[18]))
        else:
            seq = row[1]
            body, stored_leaf, stored_chain = bytes(row[18]), bytes(row[19]), bytes(row[20])
            leaf = row_record_hash(row, body)
        seq = seq if seq.__class__ is int else int(seq)
        if seq != expected:
            if seq > expected:
                problem(expected, "missing", f"is missing (records {expected}..{seq - 1} deleted)"
                        if seq - 1 > expected else "is missing (deleted)")
            prev_pure = None
            expected = seq
        pos = seq - first_seq
        leaves[pos] = leaf
        if prev_pure is not None:
            link = sha256(prev_pure + leaf).digest()
            same = prev_pure == prev_stored  # the usual case: one hash serves both chains
            prev_pure = link
            pure[pos] = link
        else:
            same = False
        if leaf != stored_leaf:
            problem(seq, "altered", "content does not match its record hash (message bytes or metadata altered)")
        elif (link if same else sha256(prev_stored + leaf).digest()) != stored_chain:
            problem(seq, "chain", "chain link broken (record inserted, reordered, or its hashes rewritten)")
        prev_stored = stored_chain
        expected = seq + 1
        seen += 1
        if progress is not None and seen % PAGE == 0:
            progress(PAGE, total)
    if seen:
        latest = store.query("SELECT recorded_at FROM msglog_record WHERE node_id = ? AND seq = ?", (node, expected - 1))
        result.latest_time = latest[0][0] if latest else None
    result.records = seen
    if progress is not None and seen % PAGE:
        progress(seen % PAGE, total)
    if report is not None and seen:
        report(seen, total)
    if not task.final and expected <= last_seq:
        problem(expected, "missing", f"is missing (records {expected}..{last_seq} deleted)"
                if last_seq > expected else "is missing (deleted)")
    result.next_expected = expected
    result.last_stored = prev_stored

    def pure_at(seq: int) -> bytes | None:
        if seq == first_seq - 1:
            return base_pure
        pos = seq - first_seq
        if pos < 0 or pos >= size:
            return None
        return pure[pos]

    result.pure_end = pure_at(last_seq) if size else base_pure

    # The seals starting in this range: signature, content against the records, time-stamp.
    for first, last, xml, tsr in store.query(
            "SELECT first_seq, last_seq, seal_xml, tsr FROM msglog_seal WHERE node_id = ? AND last_seq >= ? "
            "AND first_seq BETWEEN ? AND ? ORDER BY first_seq", (node, start, task.seal_from, task.seal_to)):
        first, last, xml = int(first), int(last), bytes(xml)
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
        result.seals += 1
        result.sealed_to = max(result.sealed_to, last)
        result.signers.add(subject_cn(signer) or signer.subject.rfc4514_string())
        if (info.node, info.first_seq, info.last_seq) != (node, first, last):
            problem(first, "seal-forged", f"seal {first}..{last}: signed content says {info.node} "
                                          f"{info.first_seq}..{info.last_seq}")
            continue
        lo, hi = first - first_seq, last - first_seq
        covered = leaves[lo:hi + 1] if 0 <= lo and hi < size else []
        if not covered or None in covered:
            problem(first, "seal-records", f"seal {first}..{last}: records it covers are missing")
            continue
        root = merkle.root(covered)  # type: ignore[arg-type]  # no None: checked above
        if root != info.merkle_root:
            problem(first, "seal-merkle", f"seal {first}..{last}: Merkle root does not match the records "
                                          "(a record in this range was altered)")
        if first == first_seq and first_seq > start:
            result.boundary = (first, last, info.previous_chain_head)  # checked by the caller against the range before
        elif pure_at(first - 1) not in (None, info.previous_chain_head):
            problem(first, "seal-chain", f"seal {first}..{last}: previous chain head does not match the records")
        if pure_at(last) not in (None, info.chain_head):
            problem(first, "seal-chain", f"seal {first}..{last}: chain head does not match the records")
        if tsr is None:
            if task.require_timestamps:
                problem(first, "timestamp-missing", f"seal {first}..{last} has no time-stamp")
            continue
        if stamp is None:
            problem(first, "timestamp", f"seal {first}..{last}: time-stamp invalid: {stamp_error}")
            continue
        result.timestamps += 1
        result.tsas.add(subject_cn(stamp.tsa) or "?")
        if stamp.gen_time < _parse(info.created) - dt.timedelta(seconds=5):
            problem(first, "timestamp", f"seal {first}..{last}: time-stamp {stamp.gen_time} predates the seal")
    return result


def _tails(store: LogStore, node: str, first: int, last: int) -> Iterator[tuple[Any, ...]]:
    """SQLite: (seq, canonical metadata tail, body, record hash, chain hash) of rows ``first..last`` in order.

    One read-only cursor over the range with a large ``arraysize``: the rows arrive a page at a time,
    SQLite writes each row's metadata text, and no other column becomes a Python object."""
    conn = store.connection()
    # Map the file instead of copying every page through read(): a quarter less CPU per record. (SQLite
    # caps the map at 2 GB here; pages beyond it are read as before.)
    conn.execute("PRAGMA mmap_size = 68719476736")
    cursor = conn.execute(SELECT_TAILS, (node, first - 1, last))
    try:
        while True:
            rows = cursor.fetchmany(PAGE)
            if not rows:
                return
            yield from rows
    finally:
        cursor.close()


def _records(store: LogStore, node: str, first: int, last: int) -> Iterator[tuple[Any, ...]]:
    """Rows ``first..last`` in sequence order, a page per query (keyset pagination: no cursor held open)."""
    after = first - 1
    while after < last:
        rows = store.query(SELECT_PAGE, (node, after, last, PAGE))
        if not rows:
            return
        yield from rows
        after = int(rows[-1][1])


# -- the worker pool ---------------------------------------------------------------------------------

_worker: dict[str, Any] = {}


def _init_worker(url: str, read_only: bool, anchors: list[bytes], intermediates: list[bytes]) -> None:
    from cryptography import x509

    _worker["store"] = LogStore(url, read_only=read_only)
    _worker["trust"] = TrustStore([x509.load_der_x509_certificate(c) for c in anchors],
                                  [x509.load_der_x509_certificate(c) for c in intermediates])


def _check_in_worker(task: RangeTask) -> RangeResult:
    return check_range(_worker["store"], task, _worker["trust"])


def _run(store: LogStore, trust: TrustStore, tasks: list[RangeTask], workers: int | None,
         progress: Progress | None, total: int) -> list[RangeResult]:
    """Check the ranges in a pool of processes, results in range order; progress as each range finishes."""
    import multiprocessing
    import os
    import threading
    from concurrent.futures import ProcessPoolExecutor

    from cryptography.hazmat.primitives.serialization import Encoding

    count = workers or os.cpu_count() or 1
    # fork starts in milliseconds, but is only safe from a process without other threads (the CLI).
    method = "fork" if threading.active_count() == 1 and "fork" in multiprocessing.get_all_start_methods() else "spawn"
    der = [c.public_bytes(Encoding.DER) for c in trust.anchors], [c.public_bytes(Encoding.DER) for c in trust.intermediates]
    with ProcessPoolExecutor(count, mp_context=multiprocessing.get_context(method), initializer=_init_worker,
                             initargs=(store.url, store.read_only, *der)) as pool:
        futures = [pool.submit(_check_in_worker, task) for task in tasks]
        results = []
        for task, future in zip(tasks, futures):
            results.append(future.result())
            if progress is not None:
                progress(task.last - task.first + 1, total)
    return results


def _parse(text: str) -> dt.datetime:
    value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)
