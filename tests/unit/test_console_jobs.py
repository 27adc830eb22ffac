"""Console verification jobs on a real SQLite file: a job runs to its verdict, a log that cannot be read fails
with the reason, and a job whose worker died reads as interrupted instead of "running" for ever."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

import pytest
from sqlalchemy import update

from viss_bridge.console.accounts import AccountStore
from viss_bridge.console.jobs import INTERRUPTED_TEXT, STALE_AFTER, Job, VerifyJobs, jobs
from viss_bridge.db import make_engine
from viss_bridge.msglog import MessageLog, RecordInput
from viss_bridge.security.pki import TrustStore


@pytest.fixture()
def verify_jobs(tmp_path: Path) -> VerifyJobs:
    engine = make_engine(f"sqlite:///{tmp_path / 'bridge.sqlite'}")
    AccountStore(engine).create_schema()  # the jobs table shares the console's metadata
    return VerifyJobs(engine)


def settled(verify_jobs: VerifyJobs, job_id: str) -> Job:
    for _ in range(600):
        job = verify_jobs.get(job_id)
        assert job is not None
        if job.state != "running":
            return job
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} still running after 30 s")


def test_a_job_verifies_the_log_and_keeps_its_report(verify_jobs: VerifyJobs, tmp_path: Path, dev_pki) -> None:  # type: ignore[no-untyped-def]
    url = f"sqlite:///{tmp_path / 'log.sqlite'}"
    msglog = MessageLog(url, "node-1")
    msglog.open()
    for i in range(5):
        msglog.record(RecordInput(f"<req n='{i}'/>".encode(), "consumer", "request", f"ex-{i}", message_id=f"m-{i}"),
                      RecordInput(f"<resp n='{i}'/>".encode(), "consumer", "response", f"ex-{i}", status=200))
    msglog.store.close()
    job = settled(verify_jobs, verify_jobs.start("sandra", url, TrustStore.from_files(dev_pki.ca_cert)))
    assert (job.state, job.valid, job.done, job.total, job.percent) == ("finished", True, 10, 10, 100)
    assert job.report_text and "10" in job.report_text
    assert job.report is not None and job.finished_at is not None


def test_a_log_that_cannot_be_read_fails_with_the_reason(verify_jobs: VerifyJobs, tmp_path: Path, dev_pki) -> None:  # type: ignore[no-untyped-def]
    missing = f"sqlite:///{tmp_path / 'no-such-log.sqlite'}"
    job = settled(verify_jobs, verify_jobs.start("sandra", missing, TrustStore.from_files(dev_pki.ca_cert)))
    assert job.state == "failed" and job.valid is None
    assert job.report_text and job.report_text.startswith("verification could not run")
    assert not (tmp_path / "no-such-log.sqlite").exists()  # the officer's tool never creates the log it examines


def test_a_job_whose_worker_died_reads_as_interrupted(verify_jobs: VerifyJobs, tmp_path: Path, dev_pki) -> None:  # type: ignore[no-untyped-def]
    # A row left "running" by a worker that was killed: no thread touches it any more.
    missing = f"sqlite:///{tmp_path / 'no-such-log.sqlite'}"
    job_id = verify_jobs.start("sandra", missing, TrustStore.from_files(dev_pki.ca_cert))
    settled(verify_jobs, job_id)
    long_ago = dt.datetime.now(dt.timezone.utc) - STALE_AFTER - dt.timedelta(seconds=5)
    with verify_jobs.engine.begin() as conn:
        conn.execute(update(jobs).where(jobs.c.id == job_id).values(state="running", finished_at=None,
                                                                    report_text=None, heartbeat_at=long_ago))
    job = verify_jobs.get(job_id)
    assert job is not None and (job.state, job.report_text, job.percent) == ("interrupted", INTERRUPTED_TEXT, 100)
    assert [j.state for j in verify_jobs.recent() if j.id == job_id] == ["interrupted"]
    # A heartbeat within STALE_AFTER is a job still at work.
    with verify_jobs.engine.begin() as conn:
        conn.execute(update(jobs).where(jobs.c.id == job_id).values(heartbeat_at=dt.datetime.now(dt.timezone.utc)))
    job = verify_jobs.get(job_id)
    assert job is not None and job.state == "running"
