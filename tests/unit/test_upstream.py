"""Upstream pieces in-process: breaker states, wire capture for the message log, legacy_soap manifest checks."""

from __future__ import annotations

from pathlib import Path

import time

import pytest
import yaml
from lxml import etree

from viss_bridge.catalog.manifest import ManifestError, parse_manifest
from viss_bridge.demo.legacy_catalog import legacy_manifest
from viss_bridge.demo.legacy_providers import start_provider
from viss_bridge.upstream.client import CALLER, CircuitBreaker
from viss_bridge.upstream.errors import UpstreamError
from viss_bridge.upstream.pool import ProviderPool


def test_breaker_opens_after_n_failures_and_lets_one_probe_through() -> None:
    now = [0.0]
    breaker = CircuitBreaker(failures=2, reset_after=10, clock=lambda: now[0])
    assert breaker.allow()
    breaker.failure()
    assert breaker.state == "closed"
    breaker.failure()
    assert breaker.state == "open" and not breaker.allow()
    now[0] = 10.5
    assert breaker.state == "half-open"
    assert breaker.allow()  # the probe
    assert not breaker.allow()  # only one at a time
    breaker.failure()
    assert breaker.state == "open"
    now[0] = 21
    assert breaker.allow()
    breaker.success()
    assert breaker.state == "closed" and breaker.allow()


def _write(tmp_path: Path, manifest: dict) -> Path:  # type: ignore[type-arg]
    path = tmp_path / f"{manifest['dataset']}.yaml"
    path.write_text(yaml.safe_dump(manifest, allow_unicode=True, sort_keys=False))
    return path


@pytest.mark.network
def test_provider_exchanges_carry_the_exact_wire_bytes(tmp_path: Path) -> None:
    from viss_bridge.catalog.catalog import load_catalog
    from viss_bridge.facade.exchange import CallInfo
    from viss_bridge.facade.sources import ProviderLegSink

    provider = start_provider("persons", size=50)
    try:
        _write(tmp_path, legacy_manifest("persons", provider.url, "live"))
        dataset = load_catalog(tmp_path).get("fpr_person_live")
        received: list = []  # type: ignore[type-arg]

        class Sink:
            def record(self, exchange) -> None:  # type: ignore[no-untyped-def]
                received.append(exchange)

        pool = ProviderPool(ProviderLegSink([Sink()]))
        code = next(iter(provider.state.records))
        token = CALLER.set(CallInfo(client="LV/GOV/1/X", message_id="m-1"))
        try:
            record = pool.lookup(dataset, {"person_code": code})
        finally:
            CALLER.reset(token)
        assert record is not None and record["person_code"] == code
        [exchange] = received
        assert exchange.leg == "provider" and exchange.status == 200
        assert exchange.info.message_id == "m-1" and exchange.info.operation == "GetPerson"
        sent = etree.fromstring(exchange.request)
        assert sent.findtext(".//{*}PersonCode") == code
        answered = etree.fromstring(exchange.response)
        assert answered.findtext(".//{*}Person/{*}PersonCode") == code

        class Broken:
            def record(self, exchange) -> None:  # type: ignore[no-untyped-def]
                raise OSError("disk full")

        failing = ProviderPool(ProviderLegSink([Broken()]))
        with pytest.raises(UpstreamError) as caught:
            failing.lookup(dataset, {"person_code": code})
        assert caught.value.cause == "LoggingFailed"
    finally:
        provider.stop()


@pytest.mark.parametrize("change, field, message", [
    (lambda s: s["fields"].update(GivenName="given_name"), "source.fields.GivenName", "not a dataset field"),
    (lambda s: s["fields"].pop("Surname"), "source.fields", "'last_name' is not mapped"),
    (lambda s: s["lookup"].update(request={"PersonCode": "first_name"}), "source.lookup.request.PersonCode", "not a key field"),
    (lambda s: s["fields"].update(Address="addresses"), "source.fields.Address", "is a list field"),
    (lambda s: s.update(timeouts={"connect": 0}), "source.timeouts.connect", "greater than 0"),
    (lambda s: s.update(retry=3), "source.retry", "unknown key"),
    (lambda s: s.pop("lookup"), "source.lookup", "required"),
    (lambda s: (s.update(mode="replicated"), s.pop("changes")), "source.mode", "needs a 'changes' operation"),
])
def test_legacy_source_errors_name_file_line_and_key(tmp_path: Path, change, field, message) -> None:  # type: ignore[no-untyped-def]
    manifest = legacy_manifest("persons", "http://127.0.0.1:1/x", "live")
    change(manifest["source"])
    path = _write(tmp_path, manifest)
    with pytest.raises(ManifestError) as caught:
        parse_manifest(path.read_text(), path)
    error = caught.value
    assert error.field == field, str(error)
    assert message in error.reason, str(error)
    assert error.line is not None and error.line > 1
    assert str(path) in str(error)


@pytest.mark.network
def test_concurrency_cap_answers_busy_without_calling(tmp_path: Path) -> None:
    import threading

    from viss_bridge.catalog.catalog import load_catalog

    provider = start_provider("persons", size=20)
    try:
        _write(tmp_path, legacy_manifest("persons", provider.url, "live", max_concurrent=1,
                                         timeouts={"connect": 0.3, "operation": 3}))
        dataset = load_catalog(tmp_path).get("fpr_person_live")
        pool = ProviderPool()
        code = next(iter(provider.state.records))
        provider.set_mode("slow", delay=1.5)
        results: list = []  # type: ignore[type-arg]
        first = threading.Thread(target=lambda: results.append(pool.lookup(dataset, {"person_code": code})))
        first.start()
        while not provider.calls():
            time.sleep(0.01)
        with pytest.raises(UpstreamError) as caught:
            pool.lookup(dataset, {"person_code": code})
        assert caught.value.cause == "ProviderBusy" and not caught.value.called
        first.join()
        assert results and results[0]["person_code"] == code
        assert provider.calls() == {"GetPerson": 1}
        assert pool.client(dataset).breaker.state == "closed"  # being busy is not the provider's failure
    finally:
        provider.stop()


@pytest.mark.network
def test_unloadable_wsdl_fails_fast_and_is_not_fetched_again(tmp_path: Path) -> None:
    from viss_bridge.catalog.catalog import load_catalog
    from tests.conftest import free_port

    gone = f"http://127.0.0.1:{free_port()}/ivis/FizPersonas/v1-0"
    manifest = legacy_manifest("persons", gone, "live", wsdl=gone + "?wsdl", timeouts={"connect": 0.5, "operation": 0.5})
    _write(tmp_path, manifest)
    dataset = load_catalog(tmp_path).get("fpr_person_live")
    pool = ProviderPool()
    with pytest.raises(UpstreamError) as first:
        pool.lookup(dataset, {"person_code": "010101-00000"})
    assert first.value.cause == "ProviderUnavailable"
    with pytest.raises(UpstreamError) as second:
        pool.lookup(dataset, {"person_code": "010101-00000"})
    assert second.value.cause == "ProviderUnavailable" and not second.value.called

    _write(tmp_path, legacy_manifest("persons", gone, "live", wsdl="no-such.wsdl"))
    with pytest.raises(UpstreamError) as missing:
        ProviderPool().lookup(load_catalog(tmp_path).get("fpr_person_live"), {"person_code": "010101-00000"})
    assert missing.value.cause == "ProviderConfigurationError"
