"""The message log: durable appends to a per-node hash chain, and the sealer.

Public API (the consumer leg and the provider leg use the same calls)::

    from viss_bridge.msglog import MessageLog, RecordInput

    receipts = app.msglog.record(
        RecordInput(body=wire_bytes, leg="provider", direction="request", exchange_id=exchange_id,
                    endpoint="upstream", dialect="xroad", client=..., service=..., message_id=...),
    )

``record`` returns only after the records are committed (SQLite WAL with
``synchronous=FULL``, or a PostgreSQL commit) and raises
:class:`LogUnavailable` otherwise: the caller must then not use or serve
what it was about to. Several records passed in one call share one
transaction (one disk flush), which is how the server logs a consumer's
request and the bridge's response together.

Concurrent ``record`` calls of one process (threads) are *group committed*
(:mod:`viss_bridge.msglog.group`): everything waiting when the node's lock
is obtained goes into one transaction; each call returns only after that
transaction committed, and if it fails every call in it raises the same
error. The chain head is read inside that transaction, under the node's
lock, so several processes of one node keep one contiguous chain.

Sealing runs on a thread in each worker process. Workers of one node take
turns through a lease row (``msglog_sealer``) so only one seals at a time;
a worker that dies holding the lease loses it after ``lease_seconds``. The
sealer reads committed records (immutable), signs and time-stamps outside
any lock that appends wait for, then commits the seal and the new sealed
sequence number in one short transaction. A seal covers a contiguous
range, so no record is ever skipped: what is not sealed yet is sealed next.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any, Callable

from viss_bridge.msglog import merkle
from viss_bridge.msglog.group import GroupCommit, run_alone
from viss_bridge.msglog.records import GENESIS, RecordInput, chain_next, row_record_hash, utc_text
from viss_bridge.msglog.seals import build_seal
from viss_bridge.msglog.store import LogStore, LogUnavailable
from viss_bridge.msglog.tsp import TimestampError, request_timestamp
from viss_bridge.security.keys import SigningKey

log = logging.getLogger("viss_bridge.msglog")

INSERT = ("INSERT INTO msglog_record (node_id, seq, recorded_at, exchange_id, leg, direction, endpoint, dialect, client,"
          " service, message_id, user_id, subjects, status, fault_code, fault_id, duration_us, remote_addr, body,"
          " record_hash, chain_hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")


# The stored subjects column: a JSON list as json.dumps(..., ensure_ascii=False) writes it, one encoder for all.
_subjects_json = json.JSONEncoder(ensure_ascii=False).encode

_Prepared = tuple[RecordInput, bytes, str]  # an entry, its bytes and their SHA-256 (hex)
_Item = tuple[list[_Prepared], Any]  # one record() call's entries and its ``then`` token (None: nothing follows)


class _ProbeRolledBack(LogUnavailable):
    """Raised inside a probe's transaction so the store rolls it back (the write itself worked)."""


@dataclass(frozen=True)
class Receipt:
    node_id: str
    seq: int
    recorded_at: str
    chain_hash: str


@dataclass
class SealerStatus:
    head_seq: int = 0
    sealed_seq: int = 0
    last_seal_at: float = 0.0
    tsa_failing_since: float | None = None
    tsa_error: str | None = None
    checked_at: float = 0.0
    error: str | None = None


class MessageLog:
    def __init__(self, url: str, node_id: str, *, signing_key: SigningKey | None = None, tsa_url: str | None = None,
                 seal_every: int = 1000, seal_interval_ms: int = 1000, max_seal_records: int = 50_000,
                 tsa_max_outage: float = 300.0, tsa_timeout: float = 5.0, lease_seconds: float = 15.0,
                 group_commit: bool = True, max_batch: int = 256) -> None:
        """``group_commit=False`` gives every ``record`` call its own transaction (the old way; a baseline)."""
        self.store = LogStore(url)
        self.node_id = node_id
        self.signing_key = signing_key
        self.tsa_url = tsa_url or None
        self.seal_every = max(1, seal_every)
        self.seal_interval = max(1, seal_interval_ms) / 1000
        self.max_seal_records = max_seal_records
        self.tsa_max_outage = tsa_max_outage
        self.tsa_timeout = tsa_timeout
        self.lease_seconds = lease_seconds
        self.owner = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.status = SealerStatus()
        self.append_failure: str | None = None  # why this process's last append failed; None once one succeeds
        self._known_sealed = 0
        self._stamp_failed = False
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.group_commit = group_commit
        # Called once per committed batch with the ``then`` tokens of its record() calls, by the thread that
        # committed it and before those calls return (the server settles the answers' tracker entries here).
        self.on_commit: Callable[[list[Any]], None] | None = None
        self._group: GroupCommit[_Item, list[Receipt]] = GroupCommit(self._write, max_batch=max_batch,
                                                                     after=self._after_commit)
        self.commits = 0  # transactions committed by this process, and the record() calls they held
        self.committed_calls = 0
        self._stats_lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Any) -> "MessageLog":
        """Build from a :class:`viss_bridge.config.Settings` (duck-typed: msglog does not import config)."""
        key = None
        if settings.signing_key and settings.signing_cert:
            key = SigningKey.from_files(settings.signing_cert, settings.signing_key)
        url = getattr(settings, "message_log_url", None) or settings.log_database_url or settings.database_url
        return cls(url, settings.node_id, signing_key=key,
                   tsa_url=settings.tsa_url or None, seal_every=settings.seal_every_records,
                   seal_interval_ms=settings.seal_interval_ms, tsa_max_outage=settings.tsa_max_outage_seconds)

    def open(self) -> None:
        """Create the tables and this node's head (safe to call from every worker at once)."""
        self.store.create_schema(self.node_id)

    # -- appending -----------------------------------------------------------------

    def record(self, *entries: RecordInput, then: Any = None) -> list[Receipt]:
        """Append ``entries`` to this node's chain in one committed transaction, or raise LogUnavailable.

        ``then``: an opaque token handed to :attr:`on_commit` once the entries have committed (never if
        they did not), together with the tokens of every other call in the same transaction, before this
        call returns. A failed append is remembered until one succeeds, so ``/health`` turns 503 at once,
        naming the cause, even while the store can still be read."""
        try:
            receipts = self._append(entries, probe=False, then=then)
        except LogUnavailable as exc:
            self.append_failure = str(exc)
            raise
        self.append_failure = None
        return receipts

    def probe_append(self) -> None:
        """Write a record as an append would, then roll it back: are appends possible again?"""
        probe = RecordInput(body=b"<probe/>", leg="consumer", direction="request", exchange_id="health-probe")
        try:
            self._append((probe,), probe=True)
        except _ProbeRolledBack:
            self.append_failure = None
        except LogUnavailable as exc:
            self.append_failure = str(exc)

    def _after_commit(self, items: list[_Item]) -> None:
        tokens = [token for _prepared, token in items if token is not None]
        if not tokens or self.on_commit is None:
            return
        try:
            self.on_commit(tokens)
        except Exception as exc:  # the records are committed: whatever follows must not undo their answers
            log.error("work after a message log commit failed", exc_info=exc)

    def _append(self, entries: tuple[RecordInput, ...], probe: bool, then: Any = None) -> list[Receipt]:
        if not entries:
            return []
        if not self.store._schema_ready:
            self.open()
        # Hash the (possibly large) bodies in the caller's thread, before any lock; only the small metadata is
        # hashed inside the transaction (it holds the sequence number, known only there).
        prepared = [(entry, bytes(entry.body)) for entry in entries]
        item: _Item = ([(entry, body, hashlib.sha256(body).hexdigest()) for entry, body in prepared], then)
        if probe:
            return run_alone(lambda take: self._write(take, probe=True), item)
        if self.group_commit:
            return self._group.submit(item)
        return run_alone(self._write, item, after=self._after_commit)

    def _write(self, take: Callable[[], list[_Item]], probe: bool = False) -> list[list[Receipt]]:
        """One transaction: lock the node's head, take the waiting batch, chain and insert it, move the head."""
        store = self.store
        results: list[list[Receipt]] = []
        with store.transaction() as cur:
            cur.execute(store.sql("SELECT seq, chain_hash FROM msglog_head WHERE node_id = ?"
                                  + (" FOR UPDATE" if store.is_pg else "")), (self.node_id,))
            row = cur.fetchone()
            if row is None:
                raise LogUnavailable(f"node {self.node_id} has no chain head in the log store")
            # The head is read under the node's lock, never cached: several processes append to one chain.
            seq, chain = int(row[0]), bytes(row[1])
            batch = take()  # everyone who queued while this transaction waited for the lock rides along
            now = utc_text(dt.datetime.now(dt.timezone.utc))
            params = []
            for prepared, _then in batch:
                receipts = []
                for entry, body, digest in prepared:
                    seq += 1
                    # META_COLUMNS order; row_record_hash writes the canonical JSON directly (same bytes as
                    # canonical_meta, which it falls back to for any value it does not write itself).
                    row = (self.node_id, seq, now, entry.exchange_id, entry.leg, entry.direction, entry.endpoint,
                           entry.dialect, entry.client, entry.service, entry.message_id, entry.user_id,
                           _subjects_json(list(entry.subjects)), entry.status, entry.fault_code, entry.fault_id,
                           entry.duration_us, entry.remote_addr)
                    leaf = row_record_hash(row, body, digest)
                    chain = chain_next(chain, leaf)
                    params.append((*row, body, leaf, chain))
                    receipts.append(Receipt(self.node_id, seq, now, chain.hex()))
                results.append(receipts)
            cur.executemany(store.sql(INSERT), params)
            cur.execute(store.sql("UPDATE msglog_head SET seq = ?, chain_hash = ? WHERE node_id = ?"),
                        (seq, chain, self.node_id))
            if probe:
                raise _ProbeRolledBack("probe written and rolled back")
        with self._stats_lock:
            self.commits += 1
            self.committed_calls += len(batch)
        if seq - self._known_sealed >= self.seal_every:
            self._wake.set()
        return results

    # -- sealing ---------------------------------------------------------------------

    def start_sealer(self) -> None:
        if self.signing_key is None or self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name=f"msglog-sealer-{self.node_id}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(10)
            self._thread = None

    def _run(self) -> None:
        tick = min(self.seal_interval, 0.25)
        while not self._stop.is_set():
            self._wake.wait(tick)
            self._wake.clear()
            if self._stop.is_set():
                break
            try:
                self.seal_pending()
                self.status.error = None
            except Exception as exc:  # the sealer must outlive a broken database or TSA
                self.status.error = str(exc)
                log.warning("sealing failed; will retry", exc_info=exc)

    def refresh_status(self) -> SealerStatus:
        rows = self.store.query(
            "SELECT h.seq, s.sealed_seq, s.last_seal_at, s.tsa_failing_since, s.tsa_error FROM msglog_head h "
            "JOIN msglog_sealer s ON s.node_id = h.node_id WHERE h.node_id = ?", (self.node_id,))
        if rows:
            head, sealed, last, failing, error = rows[0]
            self.status.head_seq, self.status.sealed_seq = int(head), int(sealed)
            self.status.last_seal_at = float(last or 0)
            self.status.tsa_failing_since = float(failing) if failing is not None else None
            self.status.tsa_error = error
            self._known_sealed = int(sealed)
        self.status.checked_at = time.time()
        return self.status

    def refusal(self) -> str | None:
        """Why requests must be refused now (trusted time has failed too long), or None."""
        status = self.status
        if not self.tsa_url or self._thread is None or status.tsa_failing_since is None:
            return None
        since = time.time() - status.tsa_failing_since
        if since <= self.tsa_max_outage:
            return None
        return (f"time-stamping has failed for {since:.0f} s (limit {self.tsa_max_outage:.0f} s): "
                f"{status.tsa_error or 'unknown error'}")

    def seal_pending(self, force: bool = False) -> int:
        """Seal what is due (everything if ``force``); return how many records got sealed by this call."""
        if self.signing_key is None:
            raise RuntimeError("no signing key configured: seals cannot be made")
        if not self.store._schema_ready:
            self.open()
        status = self.refresh_status()
        pending = status.head_seq - status.sealed_seq
        now = time.time()
        if pending <= 0:
            if self.tsa_url and status.tsa_failing_since is not None and now - status.last_seal_at > self.seal_interval:
                self._backfill_timestamps()
            return 0
        if not force and pending < self.seal_every and now - status.last_seal_at < self.seal_interval:
            return 0
        if not self._take_lease(wait=force):
            return 0
        sealed_total = 0
        target = status.head_seq  # seal what is there now; what arrives meanwhile waits for the next round
        try:
            while True:
                done = self._seal_one(target)
                sealed_total += done
                if done == 0:
                    break
            if self.tsa_url and (status.tsa_failing_since is not None or self._stamp_failed):
                self._backfill_timestamps()
        finally:
            self._release_lease()
            self.refresh_status()
        return sealed_total

    def _take_lease(self, wait: bool) -> bool:
        deadline = time.monotonic() + (self.lease_seconds + 5 if wait else 0)
        while True:
            now = time.time()
            with self.store.transaction() as cur:
                cur.execute(self.store.sql(
                    "UPDATE msglog_sealer SET lease_owner = ?, lease_until = ? WHERE node_id = ? AND "
                    "(lease_owner IS NULL OR lease_until < ? OR lease_owner = ?)"),
                    (self.owner, now + self.lease_seconds, self.node_id, now, self.owner))
                got: bool = cur.rowcount == 1
            if got or time.monotonic() > deadline:
                return got
            time.sleep(0.1)

    def _release_lease(self) -> None:
        try:
            with self.store.transaction() as cur:
                cur.execute(self.store.sql("UPDATE msglog_sealer SET lease_owner = NULL WHERE node_id = ? AND lease_owner = ?"),
                            (self.node_id, self.owner))
        except LogUnavailable:
            pass  # the lease expires by itself

    def _seal_one(self, target: int) -> int:
        store, node = self.store, self.node_id
        rows = store.query("SELECT h.seq, s.sealed_seq FROM msglog_head h JOIN msglog_sealer s ON s.node_id = h.node_id "
                           "WHERE h.node_id = ?", (node,))
        head, sealed = min(int(rows[0][0]), max(target, 1)), int(rows[0][1])
        if head <= sealed:
            return 0
        first, last = sealed + 1, min(head, sealed + self.max_seal_records)
        records = store.query("SELECT seq, record_hash, chain_hash FROM msglog_record WHERE node_id = ? AND seq BETWEEN ? AND ? "
                              "ORDER BY seq", (node, first, last))
        if sealed == 0:
            previous = GENESIS
        else:
            found = store.query("SELECT chain_head FROM msglog_seal WHERE node_id = ? AND last_seq = ?", (node, sealed))
            if not found:
                raise RuntimeError(f"no seal ends at sealed sequence {sealed}: the seal table was altered")
            previous = bytes(found[0][0])
        chain, leaves = previous, []
        for expected, (seq, leaf, stored) in enumerate(records, start=first):
            chain = chain_next(chain, bytes(leaf))
            if int(seq) != expected or chain != bytes(stored):
                raise RuntimeError(f"record {node}/{expected} breaks the chain; refusing to seal over it "
                                   "(run 'viss-bridge log verify')")
            leaves.append(bytes(leaf))
        if len(leaves) != last - first + 1:
            raise RuntimeError(f"records {node}/{first}..{last} are incomplete; refusing to seal")
        created = utc_text(dt.datetime.now(dt.timezone.utc))
        assert self.signing_key is not None
        root = merkle.root(leaves)
        seal_xml = build_seal(self.signing_key, node, first, last, root, previous, chain, created)
        tsr, tsa_time, tsa_error = self._timestamp(seal_xml)
        now = time.time()
        with store.transaction() as cur:
            cur.execute(store.sql("SELECT sealed_seq, lease_owner FROM msglog_sealer WHERE node_id = ?"
                                  + (" FOR UPDATE" if store.is_pg else "")), (node,))
            current, owner = cur.fetchone()
            if int(current) != sealed or owner != self.owner:
                return 0  # someone else sealed meanwhile (our lease expired): drop this seal
            cur.execute(store.sql("INSERT INTO msglog_seal (node_id, first_seq, last_seq, created_at, merkle_root, "
                                  "chain_head, seal_xml, tsr, tsa_time) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"),
                        (node, first, last, created, root, chain, seal_xml, tsr, tsa_time))
            if self.tsa_url and tsa_error:
                cur.execute(store.sql("UPDATE msglog_sealer SET sealed_seq = ?, last_seal_at = ?, lease_until = ?, "
                                      "tsa_failing_since = COALESCE(tsa_failing_since, ?), tsa_error = ? WHERE node_id = ?"),
                            (last, now, now + self.lease_seconds, now, tsa_error, node))
            else:  # a failure is cleared by _backfill_timestamps once no seal lacks its token
                cur.execute(store.sql("UPDATE msglog_sealer SET sealed_seq = ?, last_seal_at = ?, lease_until = ? "
                                      "WHERE node_id = ?"), (last, now, now + self.lease_seconds, node))
        self._stamp_failed = self._stamp_failed or bool(self.tsa_url and tsa_error)
        self._known_sealed = last
        return last - first + 1

    def _timestamp(self, seal_xml: bytes) -> tuple[bytes | None, str | None, str | None]:
        if not self.tsa_url:
            return None, None, None
        from viss_bridge.msglog.seals import read_seal
        from viss_bridge.msglog.tsp import token_of

        try:
            tsr = request_timestamp(self.tsa_url, read_seal(seal_xml).signature_value, timeout=self.tsa_timeout)
            gen_time = token_of(tsr)["content"]["encap_content_info"]["content"].parsed["gen_time"].native
            return tsr, utc_text(gen_time), None
        except TimestampError as exc:
            log.warning("time-stamping a seal failed", extra={"error": str(exc)})
            return None, None, str(exc)

    def _backfill_timestamps(self) -> None:
        """Time-stamp seals made while the TSA was down (their token time is later than the seal: honest)."""
        rows = self.store.query("SELECT first_seq, seal_xml FROM msglog_seal WHERE node_id = ? AND tsr IS NULL "
                                "ORDER BY first_seq LIMIT 20", (self.node_id,))
        for first_seq, seal_xml in rows:
            tsr, tsa_time, error = self._timestamp(bytes(seal_xml))
            if error:
                return
            with self.store.transaction() as cur:
                cur.execute(self.store.sql("UPDATE msglog_seal SET tsr = ?, tsa_time = ? WHERE node_id = ? AND first_seq = ? "
                                           "AND tsr IS NULL"), (tsr, tsa_time, self.node_id, first_seq))
        if not self.store.query("SELECT 1 FROM msglog_seal WHERE node_id = ? AND tsr IS NULL LIMIT 1", (self.node_id,)):
            self._stamp_failed = False
            with self.store.transaction() as cur:
                cur.execute(self.store.sql("UPDATE msglog_sealer SET tsa_failing_since = NULL, tsa_error = NULL "
                                           "WHERE node_id = ?"), (self.node_id,))

    # -- health -----------------------------------------------------------------------------

    def health(self) -> tuple[bool, dict[str, Any]]:
        from sqlalchemy.engine import make_url

        report: dict[str, Any] = {"node": self.node_id, "url": make_url(self.store.url).render_as_string(hide_password=True)}
        try:
            if not self.store._schema_ready:
                self.open()
            status = self.refresh_status()
        except LogUnavailable as exc:
            return False, {**report, "status": "unavailable", "error": str(exc)}
        if self.append_failure is not None:
            self.probe_append()  # without a probe a node taken out of rotation would never come back
            if self.append_failure is not None:
                return False, {**report, "status": "unavailable",
                               "error": f"appending to the log fails: {self.append_failure}"}
        report.update(status="ok", head_seq=status.head_seq, sealed_seq=status.sealed_seq,
                      unsealed=status.head_seq - status.sealed_seq,
                      sealing="on" if self._thread is not None else
                      ("off: no signing key configured" if self.signing_key is None else "off"))
        if status.last_seal_at:
            report["last_seal_age_s"] = round(time.time() - status.last_seal_at, 1)
        if self.tsa_url:
            report["tsa"] = {"url": self.tsa_url, "status": "ok" if status.tsa_failing_since is None else "failing"}
            if status.tsa_failing_since is not None:
                report["tsa"].update(failing_for_s=round(time.time() - status.tsa_failing_since, 1),
                                     error=status.tsa_error)
        if status.error:
            report["sealer_error"] = status.error
        refusal = self.refusal()
        if refusal:
            report.update(status="refusing", reason=refusal)
            return False, report
        return True, report
