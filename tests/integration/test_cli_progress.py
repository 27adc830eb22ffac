"""Long CLI jobs show progress on a terminal and stay quiet otherwise (issue 9 item 16).

The bar goes to stderr only when stderr is a terminal, so scripts that read stdout, or run the
command in a pipe or with --json, see exactly what they saw before.
"""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT, cli


def _on_terminal(*args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    """Run ``viss-bridge ARGS`` with stdout and stderr on a pseudo-terminal; return its exit code and output."""
    master, slave = pty.openpty()
    full_env = dict(os.environ, COLUMNS="100", **(env or {}))
    process = subprocess.Popen([sys.executable, "-m", "viss_bridge.cli", *args], stdin=subprocess.DEVNULL,
                               stdout=slave, stderr=slave, env=full_env, cwd=ROOT)
    os.close(slave)
    chunks = []
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # the terminal closed: the command is done
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(master)
    return process.wait(timeout=120), b"".join(chunks).decode("utf-8", "replace")


def test_demo_prepare_shows_progress_on_a_terminal_only(tmp_path: Path) -> None:
    code, shown = _on_terminal("demo", "--prepare-only", "--data-dir", str(tmp_path / "tty"), "--size", "300")
    assert code == 0, shown
    assert "preparing demo registers (records)" in shown
    assert "100%" in shown

    piped = cli("demo", "--prepare-only", "--data-dir", str(tmp_path / "pipe"), "--size", "300")
    assert "preparing demo" not in piped.stdout + piped.stderr
    assert "%" not in piped.stderr


def test_catalog_load_shows_progress_on_a_terminal_and_not_in_a_pipe(tmp_path: Path) -> None:
    cli("demo", "--prepare-only", "--data-dir", str(tmp_path), "--size", "20")
    env = {"VISS_BRIDGE_DATABASE_URL": f"sqlite:///{tmp_path / 'bridge.sqlite'}",
           "VISS_BRIDGE_CATALOG_DIR": str(tmp_path / "catalog")}
    rows = tmp_path / "companies.jsonl"
    rows.write_text("".join(json.dumps({"reg_number": f"4000{i:07d}", "name": f"SIA Tests {i}", "legal_form": "SIA",
                                        "status": "active", "registered": "2020-01-01", "address_code": "100000001"}) + "\n" for i in range(1500)), encoding="utf-8")
    code, shown = _on_terminal("catalog", "load", "ur_company", str(rows), env=env)
    assert code == 0, shown
    assert "loading ur_company" in shown and "1500/1500" in shown, shown
    assert "ur_company: 1500 record(s) loaded" in shown

    piped = cli("catalog", "load", "ur_company", str(rows), env=env)
    assert piped.stdout.startswith("ur_company: 1500 record(s) loaded"), piped.stdout
    assert piped.stderr == ""
