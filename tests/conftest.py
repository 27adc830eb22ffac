"""Shared fixtures: a real bridge (gunicorn workers over HTTP on loopback) on a temp SQLite."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pytest
import requests

ROOT = Path(__file__).resolve().parents[1]
DEMO_CONSUMER = "LV/GOV/90000069281/VID-EDS"  # granted fpr_person, ur_company, vsaa_social_insurance, vzd_address, csdd_vehicle
EDUCATION_CONSUMER = "LV/GOV/90000022399/IZM-VIIS"  # granted fpr_person, viis_education
BANK_CONSUMER = "LV/COM/40003000001/BANK-KYC"  # granted ur_company only


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def cli(*args: str, env: dict[str, str] | None = None, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run the real ``viss-bridge`` command."""
    full_env = dict(os.environ)
    full_env.update(env or {})
    result = subprocess.run([sys.executable, "-m", "viss_bridge.cli", *args], capture_output=True, text=True,
                            env=full_env, timeout=timeout, cwd=ROOT)
    if check and result.returncode != 0:
        raise AssertionError(f"viss-bridge {' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result


@dataclass
class RunningBridge:
    url: str
    data_dir: Path
    catalog_dir: Path
    database_url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def xroad(self) -> str:
        return f"{self.url}/xroad"

    @property
    def catalog(self) -> str:
        return f"{self.url}/catalog"

    def env(self) -> dict[str, str]:
        return {"VISS_BRIDGE_DATABASE_URL": self.database_url, "VISS_BRIDGE_CATALOG_DIR": str(self.catalog_dir)}

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)


def start_bridge(data_dir: Path, database_url: str | None = None, workers: int = 2, size: int = 200,
                 extra_env: dict[str, str] | None = None, server_ca: str | None = None,
                 ready_status: tuple[int, ...] = (200,)) -> RunningBridge:
    """Prepare demo data in ``data_dir`` and start ``viss-bridge serve`` on a free port.

    With ``VISS_BRIDGE_TLS_CERTFILE`` in ``extra_env`` the bridge serves https; ``server_ca``
    verifies its certificate. It counts as started when ``/health`` answers with one of
    ``ready_status`` (a test of a broken dependency waits for 503)."""
    prepare = ["demo", "--prepare-only", "--data-dir", str(data_dir), "--size", str(size)]
    cli(*prepare, *(["--database-url", database_url] if database_url else []))
    catalog_dir = data_dir / "catalog"
    database_url = database_url or f"sqlite:///{data_dir / 'bridge.sqlite'}"
    port = free_port()
    env = dict(os.environ)
    env.update({"VISS_BRIDGE_DATABASE_URL": database_url, "VISS_BRIDGE_CATALOG_DIR": str(catalog_dir),
                "VISS_BRIDGE_RELOAD_INTERVAL": "0.2",
                # development mode, as `viss-bridge demo`: tests that are not about authentication
                # name their client in the header; tests/integration/test_access_*.py turn it off.
                "VISS_BRIDGE_TRUST_CLIENT_HEADER": "true"})
    env.update(extra_env or {})
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    log_path = data_dir / "bridge.log"
    log_file = open(log_path, "wb")
    process = subprocess.Popen([sys.executable, "-m", "viss_bridge.cli", "serve", "--port", str(port),
                                "--workers", str(workers)], stdout=log_file, stderr=subprocess.STDOUT, env=env,
                               cwd=ROOT)
    scheme = "https" if env.get("VISS_BRIDGE_TLS_CERTFILE") else "http"
    bridge = RunningBridge(f"{scheme}://127.0.0.1:{port}", data_dir, catalog_dir, database_url, process, log_path)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"bridge exited early:\n{bridge.log_text()}")
        try:
            if requests.get(f"{bridge.url}/health", timeout=1,
                            verify=server_ca or True).status_code in ready_status:
                return bridge
        except requests.RequestException:
            pass
        time.sleep(0.2)
    bridge.stop()
    raise AssertionError(f"bridge did not become healthy:\n{bridge.log_text()}")


@pytest.fixture(scope="session")
def bridge(tmp_path_factory: pytest.TempPathFactory, dev_pki) -> Iterator[RunningBridge]:  # type: ignore[no-untyped-def]
    """One demo bridge for the whole session: 2 gunicorn workers, demo registers, demo consumers.

    It seals its message log and signs every response (WS-Security), so every client test (zeep, raw
    SOAP, Java) also shows that consumers which do not verify signatures keep working."""
    signing = {"VISS_BRIDGE_SIGNING_CERT": str(dev_pki.node.cert), "VISS_BRIDGE_SIGNING_KEY": str(dev_pki.node.key),
               "VISS_BRIDGE_TRUST_ANCHORS": str(dev_pki.ca_cert), "VISS_BRIDGE_SIGN_RESPONSES": "*"}
    running = start_bridge(tmp_path_factory.mktemp("bridge"), extra_env=signing)
    yield running
    running.stop()


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """A test CA (with a server certificate for 127.0.0.1) and a rogue CA; see tests/pki_helpers.py."""
    from tests.access_helpers import make_pki

    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="session")
def tls_bridge(tmp_path_factory: pytest.TempPathFactory, pki) -> Iterator[RunningBridge]:  # type: ignore[no-untyped-def]
    """A production-like node for the access tests: TLS, client certificates, no header trust."""
    from tests.access_helpers import start_tls_bridge

    running = start_tls_bridge(tmp_path_factory.mktemp("tls-bridge"), pki)
    yield running
    running.stop()


@pytest.fixture(scope="session")
def demo_catalog(bridge: RunningBridge):  # type: ignore[no-untyped-def]
    from viss_bridge.catalog.catalog import load_catalog

    return load_catalog(bridge.catalog_dir)


@pytest.fixture(scope="session")
def demo_world():  # type: ignore[no-untyped-def]
    from viss_bridge.demo.world import generate_world

    return generate_world(size=200)


@pytest.fixture()
def pg_database() -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test, dropped afterwards.

    Needs ``VISS_BRIDGE_TEST_PG`` (an admin URL such as postgresql://postgres@127.0.0.1:5432/postgres);
    skipped without it, except in CI where it is an error.
    """
    import uuid

    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    admin_url = os.environ.get("VISS_BRIDGE_TEST_PG")
    if not admin_url:
        if os.environ.get("CI") == "true":
            pytest.fail("VISS_BRIDGE_TEST_PG is not set in CI")
        pytest.skip("set VISS_BRIDGE_TEST_PG to run PostgreSQL tests")
    name = f"viss_bridge_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"))
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()


@pytest.fixture(scope="session")
def dev_pki(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """A development PKI made by the project's own code (as `viss-bridge certs init` does)."""
    from viss_bridge.security.pki import init_dev_pki

    return init_dev_pki(tmp_path_factory.mktemp("certs"))


@pytest.fixture(scope="module")
def persons_provider():  # type: ignore[no-untyped-def]
    """The demo persons register (a generation-II SOAP provider) on its own port, one per test module.

    Module scope: tests switch its modes (slow, fault, down) and read its call counters.
    """
    from viss_bridge.demo.legacy_providers import start_provider

    server = start_provider("persons", size=200)
    yield server
    server.stop()
