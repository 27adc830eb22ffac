"""/health follows the message log's appends at run time, not only whether the store can be read.

A log that can be read but no longer written (a full disk, a revoked grant, a refusing trigger) must take
the node out of rotation as soon as an append fails, naming the cause, and bring it back once appends work.
"""

from __future__ import annotations

import requests

from tests.conftest import DEMO_CONSUMER, start_bridge
from tests.integration.test_answer_accounting import LOGGING_FAILED, LogSwitch
from tests.soap_helpers import parse_fault, post, xroad_lookup


def test_health_turns_503_when_appends_fail_and_back_when_they_work(tmp_path, demo_catalog, demo_world) -> None:  # type: ignore[no-untyped-def]
    bridge = start_bridge(tmp_path / "health", workers=1, size=20)
    person = demo_world["fpr_person"][0]["person_code"]
    call = xroad_lookup(demo_catalog.get("fpr_person"), DEMO_CONSUMER, {"person_code": person})
    switch = LogSwitch(bridge)
    try:
        assert requests.get(f"{bridge.url}/health", timeout=10).status_code == 200
        assert post(bridge.xroad, call).status_code == 200
        switch.break_()
        assert parse_fault(post(bridge.xroad, call)).code == LOGGING_FAILED
        health = requests.get(f"{bridge.url}/health", timeout=10)
        assert health.status_code == 503
        msglog = health.json()["msglog"]
        assert msglog["status"] == "unavailable"
        assert "appending to the log fails" in msglog["error"] and "refused by the test" in msglog["error"]
        # still refused while the cause lasts: the health probe itself cannot append either
        assert requests.get(f"{bridge.url}/health", timeout=10).status_code == 503
        switch.repair()
        health = requests.get(f"{bridge.url}/health", timeout=10)
        assert health.status_code == 200, health.text
        assert post(bridge.xroad, call).status_code == 200
    finally:
        bridge.stop()
