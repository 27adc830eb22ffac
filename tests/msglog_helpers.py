"""Helpers for message-log tests: a development TSA process and bridge settings for a logged, sealed node."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import requests

from tests.conftest import ROOT, free_port


class TsaProcess:
    """``viss-bridge tsa serve`` on a free loopback port."""

    def __init__(self, pki: Any, port: int | None = None) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.process = subprocess.Popen([sys.executable, "-m", "viss_bridge.cli", "tsa", "serve", "--cert",
                                         str(pki.tsa.cert), "--key", str(pki.tsa.key), "--port", str(self.port)],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, cwd=ROOT)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                if requests.get(self.url, timeout=1).status_code == 200:
                    return
            except requests.RequestException:
                time.sleep(0.1)
        self.stop()
        raise AssertionError("the development TSA did not start")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)


def log_env(pki: Any, log_url: str, tsa_url: str = "", **extra: str) -> dict[str, str]:
    env = {"VISS_BRIDGE_LOG_DATABASE_URL": log_url, "VISS_BRIDGE_SIGNING_CERT": str(pki.node.cert),
           "VISS_BRIDGE_SIGNING_KEY": str(pki.node.key), "VISS_BRIDGE_TRUST_ANCHORS": str(pki.ca_cert),
           "VISS_BRIDGE_TSA_URL": tsa_url, "VISS_BRIDGE_SEAL_EVERY_RECORDS": "20", "VISS_BRIDGE_SEAL_INTERVAL_MS": "200"}
    env.update({f"VISS_BRIDGE_{k.upper()}": v for k, v in extra.items()})
    return env


def sqlite_rows(path: Path, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def worker_pids(master_pid: int) -> list[int]:
    """The gunicorn workers: children of the ``viss-bridge serve`` process (the arbiter)."""
    pids: list[int] = []
    for task in Path(f"/proc/{master_pid}/task").iterdir():
        text = (task / "children").read_text().split()
        pids.extend(int(p) for p in text)
    return pids
