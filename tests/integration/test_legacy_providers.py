"""Legacy providers as live dataset sources, over real HTTP: bridge (gunicorn) -> zeep -> demo provider.

A provider that hangs, faults or is down yields its precise fault; repeated failures open the
breaker, which then answers without calling the provider, and a probe closes it again.
"""

from __future__ import annotations

import time
from typing import Iterator

import pytest
import requests
import yaml
import zeep

from tests.conftest import DEMO_CONSUMER, RunningBridge, cli, start_bridge
from tests.soap_helpers import normalise, parse_fault, post, xroad_headers, xroad_lookup
from viss_bridge.demo.legacy_catalog import legacy_manifest
from viss_bridge.demo.legacy_providers import ProviderServer

RESET_AFTER = 1.0
OPERATION_TIMEOUT = 2.0  # generous: a loaded CI machine must not turn normal calls into timeouts


def _wait_for_dataset(bridge: RunningBridge, name: str) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if name in requests.get(bridge.url + "/", timeout=5).json()["datasets"]:
            return
        time.sleep(0.1)
    raise AssertionError(f"{name} was not published:\n{bridge.log_text()}")


@pytest.fixture(scope="module")
def live_bridge(tmp_path_factory: pytest.TempPathFactory, persons_provider: ProviderServer) -> Iterator[RunningBridge]:
    # One worker: breakers are per process, so the test sees the one breaker it drives.
    bridge = start_bridge(tmp_path_factory.mktemp("live-bridge"), workers=1)
    try:
        manifest = legacy_manifest("persons", persons_provider.url, "live",
                                   timeouts={"connect": 2, "operation": OPERATION_TIMEOUT},
                                   retries={"attempts": 2, "backoff": 0.05},
                                   breaker={"failures": 3, "reset_after": RESET_AFTER})
        (bridge.catalog_dir / "fpr_person_live.yaml").write_text(yaml.safe_dump(manifest, allow_unicode=True))
        cli("clients", "grant", DEMO_CONSUMER, "fpr_person_live", env=bridge.env())
        _wait_for_dataset(bridge, "fpr_person_live")
        yield bridge
    finally:
        bridge.stop()


@pytest.fixture()
def catalog_of(live_bridge):  # type: ignore[no-untyped-def]
    from viss_bridge.catalog.catalog import load_catalog

    return load_catalog(live_bridge.catalog_dir)


def _call(bridge: RunningBridge, dataset, code: str):  # type: ignore[no-untyped-def]
    return post(bridge.xroad, xroad_lookup(dataset, DEMO_CONSUMER, {"person_code": code}))


def test_live_lookup_through_the_provider_equals_the_register(live_bridge, persons_provider, catalog_of, demo_world):  # type: ignore[no-untyped-def]
    persons_provider.reset()
    dataset = catalog_of.get("fpr_person_live")
    client = zeep.Client(f"{live_bridge.xroad}?wsdl")
    expected = next(p for p in demo_world["fpr_person"] if len(p["addresses"]) > 1)
    answer = client.service.fpr_person_live(person_code=expected["person_code"],
                                            _soapheaders=xroad_headers(DEMO_CONSUMER, dataset))
    assert normalise(answer.body.record) == normalise(expected)
    assert persons_provider.calls() == {"GetPerson": 1}
    # unknown person: the provider says none, the consumer gets an empty answer
    assert client.service.fpr_person_live(person_code="010101-00000",
                                          _soapheaders=xroad_headers(DEMO_CONSUMER, dataset)).body.record is None


def test_hang_fault_down_then_breaker_opens_and_probe_closes_it(live_bridge, persons_provider, catalog_of, demo_world):  # type: ignore[no-untyped-def]
    dataset = catalog_of.get("fpr_person_live")
    code = demo_world["fpr_person"][0]["person_code"]
    persons_provider.reset()

    persons_provider.set_mode("slow", delay=30)  # hangs far longer than the operation timeout
    started = time.monotonic()
    fault = parse_fault(_call(live_bridge, dataset, code))
    assert fault.code == "Server.ServerProxy.ServiceFailed.ProviderTimeout"
    assert time.monotonic() - started < 20  # answered at the timeout, not when the provider woke up
    assert persons_provider.calls() == {"GetPerson": 1}  # a timeout is not retried

    persons_provider.set_mode("fault")
    fault = parse_fault(_call(live_bridge, dataset, code))
    assert fault.code == "Server.ServerProxy.ServiceFailed.ProviderFault"
    assert "demo fault" in fault.string

    persons_provider.set_mode("down")
    fault = parse_fault(_call(live_bridge, dataset, code))
    assert fault.code == "Server.ServerProxy.ServiceFailed.ProviderUnavailable"
    assert persons_provider.calls()["GetPerson"] == 4  # dropped connection: one retry (attempts: 2)

    # three consecutive failures: the breaker is open; the provider is healthy again but not called
    persons_provider.reset()
    fault = parse_fault(_call(live_bridge, dataset, code))
    assert fault.code == "Server.ServerProxy.ServiceFailed.ProviderUnavailable"
    assert "circuit breaker" in fault.string
    assert persons_provider.calls() == {}

    time.sleep(RESET_AFTER + 0.2)  # half-open: one probe goes out and closes the breaker
    response = _call(live_bridge, dataset, code)
    assert response.status_code == 200, response.text
    assert persons_provider.calls() == {"GetPerson": 1}
    assert _call(live_bridge, dataset, code).status_code == 200


def test_failed_probe_reopens_the_breaker(live_bridge, persons_provider, catalog_of, demo_world):  # type: ignore[no-untyped-def]
    dataset = catalog_of.get("fpr_person_live")
    code = demo_world["fpr_person"][1]["person_code"]
    persons_provider.reset()
    persons_provider.set_mode("fault")
    for _ in range(3):
        assert parse_fault(_call(live_bridge, dataset, code)).code.endswith("ProviderFault")
    assert parse_fault(_call(live_bridge, dataset, code)).code.endswith("ProviderUnavailable")
    time.sleep(RESET_AFTER + 0.2)
    assert parse_fault(_call(live_bridge, dataset, code)).code.endswith("ProviderFault")  # the probe failed
    calls = persons_provider.calls()["GetPerson"]
    assert parse_fault(_call(live_bridge, dataset, code)).code.endswith("ProviderUnavailable")  # open again
    assert persons_provider.calls()["GetPerson"] == calls
    persons_provider.reset()
    time.sleep(RESET_AFTER + 0.2)
    assert _call(live_bridge, dataset, code).status_code == 200


def test_provider_that_was_never_there(live_bridge, catalog_of, demo_world):  # type: ignore[no-untyped-def]
    from tests.conftest import free_port

    manifest = legacy_manifest("persons", f"http://127.0.0.1:{free_port()}/ivis/FizPersonas/v1-0", "live",
                               name="fpr_person_gone", provider="pmlp-gone",
                               timeouts={"connect": 1, "operation": 1}, retries={"attempts": 1, "backoff": 0})
    (live_bridge.catalog_dir / "fpr_person_gone.yaml").write_text(yaml.safe_dump(manifest, allow_unicode=True))
    cli("clients", "grant", DEMO_CONSUMER, "fpr_person_gone", env=live_bridge.env())
    _wait_for_dataset(live_bridge, "fpr_person_gone")
    time.sleep(1.1)  # the permission cache (1 s) must see the new grant
    from viss_bridge.catalog.catalog import load_catalog

    dataset = load_catalog(live_bridge.catalog_dir).get("fpr_person_gone")
    fault = parse_fault(post(live_bridge.xroad, xroad_lookup(dataset, DEMO_CONSUMER,
                                                             {"person_code": demo_world["fpr_person"][0]["person_code"]})))
    assert fault.code == "Server.ServerProxy.ServiceFailed.ProviderUnavailable"
    assert fault.detail  # the UUID that finds the log line


def test_old_contract_passed_through_to_the_old_provider(live_bridge, persons_provider, demo_world):  # type: ignore[no-untyped-def]
    """An old consumer on /legacy/<name> answered live by the old provider (a dataset with a live legacy source)."""
    from tests.legacy_helpers import PERSONS_WSDL, original_client, plain
    from viss_bridge.demo.legacy_catalog import PERSON_FIELDS

    contract = {"wsdl": str(PERSONS_WSDL), "consumer": DEMO_CONSUMER, "consumer_networks": ["127.0.0.0/8"],
                "operations": {"GetPerson": {"dataset": "fpr_person_live", "request": {"PersonCode": "person_code"},
                                             "response": "Person", "fields": PERSON_FIELDS}}}
    folder = live_bridge.catalog_dir / "legacy"
    (folder / "fprlive.yaml").write_text(yaml.safe_dump(contract, allow_unicode=True))
    persons_provider.reset()
    time.sleep(RESET_AFTER + 0.2)  # let any breaker left open by earlier tests probe again
    via_bridge = original_client(PERSONS_WSDL, f"{live_bridge.url}/legacy/fprlive")
    via_provider = original_client(PERSONS_WSDL, persons_provider.url)
    code = demo_world["fpr_person"][3]["person_code"]
    assert plain(via_bridge.GetPerson(PersonCode=code)) == plain(via_provider.GetPerson(PersonCode=code))
    assert persons_provider.calls() == {"GetPerson": 2}
    persons_provider.set_mode("fault")
    with pytest.raises(zeep.exceptions.Fault) as caught:
        via_bridge.GetPerson(PersonCode=code)
    assert caught.value.code == "Server.ServerProxy.ServiceFailed.ProviderFault"
    persons_provider.reset()
