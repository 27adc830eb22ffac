"""``log verify`` started from a page: a background thread, its progress and report in a database row.

The row (not the worker's memory) holds the state because the page that follows the job may be
answered by another worker process or node; the page refreshes itself (``<meta http-equiv=refresh>``,
no script) until the row says finished. The running thread touches ``heartbeat_at`` with every
progress step; a row whose heartbeat is older than ``STALE_AFTER`` belonged to a worker that died or
was restarted mid-run, and reads as ``interrupted`` instead of spinning as "running" for ever.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import secrets
import threading
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Column, DateTime, Integer, String, Table, Text, insert, select, update
from sqlalchemy.engine import Engine

from viss_bridge.console.accounts import metadata

log = logging.getLogger("viss_bridge.console")

jobs = Table(
    "console_jobs", metadata,
    Column("id", String(32), primary_key=True),
    Column("kind", String(32), nullable=False),
    Column("account", String(64), nullable=False),
    Column("state", String(16), nullable=False),  # running | finished | failed (interrupted is derived)
    Column("done", Integer, nullable=False, default=0),
    Column("total", Integer, nullable=False, default=0),
    Column("valid", Integer, nullable=True),
    Column("report_text", Text, nullable=True),
    Column("report_json", Text, nullable=True),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("finished_at", DateTime(timezone=True), nullable=True),
    Column("heartbeat_at", DateTime(timezone=True), nullable=True),
)

# Progress is saved every 2,000 records (well under a second) and while seals are checked (ms each), so a
# minute without a heartbeat means the thread is gone, not slow.
STALE_AFTER = dt.timedelta(seconds=60)
INTERRUPTED_TEXT = ("verification was interrupted: the worker running it stopped (restart or crash) before it "
                    "finished; start it again")


@dataclass(frozen=True)
class Job:
    id: str
    kind: str
    account: str
    state: str
    done: int
    total: int
    valid: bool | None
    report_text: str | None
    report: dict[str, Any] | None
    started_at: dt.datetime
    finished_at: dt.datetime | None

    @property
    def percent(self) -> int:
        return 100 if self.state != "running" else int(100 * self.done / self.total) if self.total else 0


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _job(row: Any, now: dt.datetime | None = None) -> Job:
    def aware(v: dt.datetime | None) -> dt.datetime | None:
        return None if v is None else v if v.tzinfo else v.replace(tzinfo=dt.timezone.utc)

    state, report_text = row.state, row.report_text
    last_sign = aware(row.heartbeat_at) or aware(row.started_at)
    if state == "running" and last_sign is not None and (now or _now()) - last_sign > STALE_AFTER:
        state, report_text = "interrupted", INTERRUPTED_TEXT
    return Job(row.id, row.kind, row.account, state, row.done, row.total,
               None if row.valid is None else bool(row.valid), report_text,
               json.loads(row.report_json) if row.report_json else None, aware(row.started_at),  # type: ignore[arg-type]
               aware(row.finished_at))


class VerifyJobs:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def get(self, job_id: str) -> Job | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(jobs).where(jobs.c.id == job_id)).first()
        return _job(row) if row else None

    def recent(self, limit: int = 10) -> list[Job]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(jobs).order_by(jobs.c.started_at.desc()).limit(limit)).all()
        return [_job(r) for r in rows]

    def start(self, account: str, log_url: str, trust: Any, unsealed_grace: float | None = 300.0) -> str:
        """Start verifying the whole log (every node) in a thread; the job's id at once."""
        job_id = secrets.token_hex(8)
        with self.engine.begin() as conn:
            conn.execute(insert(jobs).values(id=job_id, kind="log-verify", account=account, state="running", done=0,
                                             total=0, started_at=_now(), heartbeat_at=_now()))
        thread = threading.Thread(target=self._run, args=(job_id, log_url, trust, unsealed_grace),
                                  name=f"console-verify-{job_id}", daemon=True)
        thread.start()
        return job_id

    def _run(self, job_id: str, log_url: str, trust: Any, unsealed_grace: float | None) -> None:
        from viss_bridge.msglog.store import LogStore
        from viss_bridge.msglog.verify import verify_log

        checked = {"done": 0, "total": 0, "saved": 0}

        def progress(step: int, node_total: int) -> None:  # as the CLI's bar: steps per node, totals add up
            if checked["done"] >= checked["total"]:
                checked["total"] += node_total
            checked["done"] += step
            if checked["done"] - checked["saved"] >= 2000 or checked["done"] >= checked["total"]:
                checked["saved"] = checked["done"]
                self._update(job_id, done=checked["done"], total=checked["total"])

        store = LogStore(log_url, read_only=True)
        try:
            total = sum(int(r[0]) for r in store.query("SELECT COUNT(*) FROM msglog_record"))
            self._update(job_id, total=total)
            # One process: the pool verify_log would start is not for a thread inside a serving worker.
            report = verify_log(store, trust, unsealed_grace=unsealed_grace, workers=1,
                                parallel_from=10**12, progress=progress)
            self._update(job_id, state="finished", done=report.records, total=report.records, valid=int(report.ok),
                         report_text=report.text(), report_json=report.json(), finished_at=_now())
        except Exception as exc:  # noqa: BLE001 - the page must say why, not spin for ever
            log.exception("console log verification failed", extra={"job": job_id})
            self._update(job_id, state="failed", report_text=f"verification could not run: {exc}", finished_at=_now())
        finally:
            store.close()

    def _update(self, job_id: str, **values: Any) -> None:
        values.setdefault("heartbeat_at", _now())
        with self.engine.begin() as conn:
            conn.execute(update(jobs).where(jobs.c.id == job_id).values(**values))
