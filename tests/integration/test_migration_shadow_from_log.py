"""Shadow runs fed by the message log: requests old consumers sent to /legacy/fpr are replayed from the log."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from tests.conftest import cli
from tests.integration.test_migration_shadow import person_request
from tests.soap_helpers import post
from viss_bridge.demo.legacy_providers import start_provider

pytest.importorskip("viss_bridge.msglog.store", reason="the message log (issue 4) is not part of this build")


def test_shadow_replays_requests_from_the_message_log(bridge, demo_world, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from viss_bridge.migration.shadow import log_requests

    since = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    codes = [p["person_code"] for p in demo_world["fpr_person"][20:24]]
    for code in codes:  # an old consumer calls the bridge's copy of the contract
        response = post(f"{bridge.url}/legacy/fpr", person_request(code).encode())
        assert response.status_code == 200, response.text
    from viss_bridge.config import load_settings

    log_url = load_settings(environ=bridge.env()).message_log_url  # the log's own file beside the store
    logged = log_requests(log_url, service="legacy/fpr", since=since)
    assert [r.body for r in logged] == [person_request(code).encode() for code in codes]  # exact bytes
    assert all(":" in r.id for r in logged)

    provider = start_provider("persons", size=200)
    try:
        result = cli("migrate", "shadow", "--service", "PMLP/FizPersonas/v1-0", "--legacy-url", provider.url,
                     "--bridge-url", f"{bridge.url}/legacy/fpr", "--from-log", "--since", since, "--rate", "50",
                     "--format", "json", env=bridge.env())
    finally:
        provider.stop()
    report = json.loads(result.stdout)
    assert (report["requests"], report["parity"]) == (4, 100.0)
    assert [o["request"] for o in report["outcomes"]] == [r.id for r in logged]
