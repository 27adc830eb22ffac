"""What each role sees and does on the console, against a real bridge and its real stores.

Numbers on the pages are compared with the stores themselves (dataset counts, the message log,
the migration tables, the tracker); actions on the pages are checked by what the rest of the
bridge then does (a SOAP call let through, a record on the signed chain, a container judged).
"""

from __future__ import annotations

import datetime as dt
import re
import time
import zipfile
from pathlib import Path

import pytest
import requests

from tests.conftest import BANK_CONSUMER, DEMO_CONSUMER, cli
from tests.console_helpers import FPR_OWNER, login_as, start_console_bridge, text_of
from tests.msglog_helpers import TsaProcess, sqlite_rows
from tests.soap_helpers import parse_fault, post, xroad_lookup


@pytest.fixture(scope="module")
def node(tmp_path_factory, dev_pki):  # type: ignore[no-untyped-def]
    tsa = TsaProcess(dev_pki)
    running = start_console_bridge(tmp_path_factory.mktemp("console-pages"), dev_pki, tsa.url)
    yield running
    running.bridge.stop()
    tsa.stop()


@pytest.fixture(scope="module")
def catalog(node):  # type: ignore[no-untyped-def]
    from viss_bridge.catalog.catalog import load_catalog

    return load_catalog(node.bridge.catalog_dir)


@pytest.fixture(scope="module")
def person(demo_world) -> str:  # type: ignore[no-untyped-def]
    return demo_world["fpr_person"][3]["person_code"]


def call(node, catalog, client: str, person: str, message_id: str) -> requests.Response:  # type: ignore[no-untyped-def]
    return post(node.bridge.xroad, xroad_lookup(catalog.get("fpr_person"), client, {"person_code": person},
                                                message_id=message_id))


def wait_sealed(node, timeout: float = 30) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        head, sealed = sqlite_rows(node.log_db, "SELECT h.seq, s.sealed_seq FROM msglog_head h JOIN msglog_sealer s "
                                                "ON s.node_id = h.node_id")[0]
        if head == sealed:
            return
        time.sleep(0.1)
    raise AssertionError("the log was not sealed in time")


def test_operator_sees_the_datasets_with_the_stores_record_counts(node) -> None:  # type: ignore[no-untyped-def]
    from viss_bridge.catalog.store import DatasetStore
    from viss_bridge.db import make_engine

    counts = DatasetStore(make_engine(node.bridge.database_url)).counts()
    page = login_as(node, "operator").get("/datasets?lang=en").text
    shown = dict(re.findall(r'<tr data-dataset="([^"]+)">.*?<td class="num records">(\d+)</td>', page, re.S))
    assert shown and {k: int(v) for k, v in shown.items()} == {k: v for k, v in counts.items() if k in shown}
    assert set(shown) >= {"fpr_person", "vzd_address", "ur_company"}
    assert f"{sum(counts[k] for k in shown)} records" in text_of(page)
    assert "Every manifest loaded." in page


def test_operator_sees_a_reload_error_with_file_and_line(node) -> None:  # type: ignore[no-untyped-def]
    broken = Path(node.bridge.catalog_dir) / "zz_broken.yaml"
    operator = login_as(node, "operator")
    try:  # the broken manifest never outlives this test (the module's other tests load the catalog)
        broken.write_text("dataset: zz_broken\nversion: v1\nkey: [id]\nfields: []\naccess: sometimes\n")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            page = operator.get("/datasets").text
            if "reload-errors" in page:
                break
            time.sleep(0.3)
        errors = text_of(page[page.index('id="reload-errors"'):page.index("</ul>", page.index('id="reload-errors"'))])
        assert "zz_broken.yaml" in errors and re.search(r"zz_broken\.yaml:\d+", errors), errors
    finally:
        broken.unlink(missing_ok=True)


def test_operator_sees_clients_and_a_certificate_that_expires_soon(node, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from tests.pki_helpers import TestCa
    from viss_bridge.access.identity import CertificateInfo
    from viss_bridge.access.registry import AccessRegistry
    from viss_bridge.db import make_engine

    ca = TestCa.create(tmp_path / "ca")
    soon, _ = ca.issue("soon", common_name=DEMO_CONSUMER,
                       not_after=dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=9, hours=12))
    later, _ = ca.issue("later", common_name=BANK_CONSUMER,
                        not_after=dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=300))
    registry = AccessRegistry(make_engine(node.bridge.database_url))
    registry.add_certificate(DEMO_CONSUMER, CertificateInfo.from_pem(soon.read_bytes()), actor="test")
    registry.add_certificate(BANK_CONSUMER, CertificateInfo.from_pem(later.read_bytes()), actor="test")
    page = login_as(node, "operator").get("/clients?lang=en").text
    for client in registry.clients():
        assert f'data-client="{client.client_id}"' in page
    demo_row = page[page.index(f'data-client="{DEMO_CONSUMER}"'):]
    demo_row = demo_row[:demo_row.index("</tr>")]
    assert 'data-state="soon"' in demo_row and "expires soon: 9 d" in text_of(demo_row)
    bank_row = page[page.index(f'data-client="{BANK_CONSUMER}"'):]
    assert 'data-state="ok"' in bank_row[:bank_row.index("</tr>")]
    usable = len([p for p in registry.permissions(client_id=DEMO_CONSUMER) if p.usable()])
    assert re.search(rf'<td class="num">{usable}</td>', demo_row)


def test_operator_health_page_shows_the_node_and_its_request_counts(node, catalog, person) -> None:  # type: ignore[no-untyped-def]
    assert call(node, catalog, DEMO_CONSUMER, person, "health-1").status_code == 200
    page = login_as(node, "operator").get("/health?lang=en").text
    health = requests.get(f"{node.bridge.url}/health", timeout=30).json()
    assert f'<span id="health" class="good">{health["status"]}</span>' in page
    assert f'{health["catalog"]["datasets"]} datasets' in text_of(page)
    bar = re.search(r'<rect class="bar" data-label="xroad" data-value="(\d+)"', page)
    assert bar and int(bar[1]) >= 1, page


def test_security_officer_finds_an_exchange_and_sees_both_legs(node, catalog, person) -> None:  # type: ignore[no-untyped-def]
    answer = call(node, catalog, DEMO_CONSUMER, person, "console-find-1")
    assert answer.status_code == 200
    officer = login_as(node, "security_officer")
    found = officer.get("/log?message_id=console-find-1&lang=en").text
    rows = re.findall(r'<tr data-record="([^"]+)">', found)
    logged = sqlite_rows(node.log_db, "SELECT node_id, seq, exchange_id FROM msglog_record WHERE message_id = ? "
                                      "ORDER BY seq DESC", ("console-find-1",))
    assert rows == [f"{n}/{s}" for n, s, _ in logged] and len(rows) == 2
    assert f"{len(rows)} record(s)" in found
    by_person = officer.get(f"/log?person={person}&client={DEMO_CONSUMER}").text
    assert "console-find-1" in by_person
    exchange = officer.get(f"/log/exchange?id={logged[0][2]}").text
    assert exchange.count('<section class="record"') == 2
    assert 'data-direction="request"' in exchange and 'data-direction="response"' in exchange
    assert "console-find-1" in exchange and person in exchange  # the bytes as logged, escaped
    assert "&lt;" in exchange and "<SOAP-ENV:Envelope" not in exchange


def test_security_officer_sees_chain_and_seal_state(node, catalog, person) -> None:  # type: ignore[no-untyped-def]
    call(node, catalog, DEMO_CONSUMER, person, "console-seal-1")
    wait_sealed(node)
    head, sealed = sqlite_rows(node.log_db, "SELECT h.seq, s.sealed_seq FROM msglog_head h JOIN msglog_sealer s "
                                            "ON s.node_id = h.node_id")[0]
    page = login_as(node, "security_officer").get("/seals?lang=en").text
    row = page[page.index('data-node="node-1"'):]
    shown_head = int(re.search(r'<td class="num head">(\d+)</td>', row)[1])  # type: ignore[index]
    shown_sealed = int(re.search(r'<td class="num sealed">(\d+)</td>', row)[1])  # type: ignore[index]
    assert shown_head >= head and shown_sealed >= sealed and shown_sealed <= shown_head
    stamped = sqlite_rows(node.log_db, "SELECT COUNT(*) FROM msglog_seal WHERE tsr IS NOT NULL")[0][0]
    assert stamped >= 1 and ">ok<" in row


def test_security_officer_runs_log_verify_from_the_page(node, catalog, person) -> None:  # type: ignore[no-untyped-def]
    call(node, catalog, DEMO_CONSUMER, person, "console-verify-1")
    wait_sealed(node)
    officer = login_as(node, "security_officer")
    started = officer.post("/verify")
    assert started.status_code == 303 and "/console/verify/job?id=" in started.headers["Location"]
    job = started.headers["Location"][len("/console"):]
    deadline = time.monotonic() + 120
    page = officer.get(job + "&lang=en").text
    while 'data-state="running"' in page and time.monotonic() < deadline:
        assert '<meta http-equiv="refresh" content="1">' in page  # the page follows the job by itself
        time.sleep(0.5)
        page = officer.get(job).text
    assert 'data-state="finished"' in page, page
    assert '<p class="verdict good" id="verdict">LOG VALID</p>' in page
    records = sqlite_rows(node.log_db, "SELECT COUNT(*) FROM msglog_record")[0][0]
    assert "LOG VALID" in page and re.search(r"(\d+) record\(s\) in", page)
    assert int(re.search(r"(\d+) record\(s\) in", page)[1]) <= records  # type: ignore[index]
    assert 'http-equiv="refresh"' not in page


def test_evidence_page_says_valid_for_an_export_and_names_the_failed_check_of_a_tampered_copy(  # type: ignore[no-untyped-def]
        node, catalog, person, tmp_path) -> None:
    call(node, catalog, DEMO_CONSUMER, person, "console-evidence-1")
    wait_sealed(node)
    container = tmp_path / "exchange.asice"
    cli("log", "export", "--message-id", "console-evidence-1", "-o", str(container), env=node.cli_env)
    officer = login_as(node, "security_officer")
    good = officer.post("/evidence?lang=en", files={"container": ("exchange.asice", container.read_bytes(),
                                                                  "application/vnd.etsi.asic-e+zip")})
    assert good.status_code == 200
    assert '<span id="verdict" class="good">VALID</span>' in good.text
    assert 'data-status="failed"' not in good.text and 'data-check="Merkle inclusion proof"' in good.text
    tampered = tmp_path / "tampered.asice"
    with zipfile.ZipFile(container) as source, zipfile.ZipFile(tampered, "w") as out:
        message = next(n for n in source.namelist() if n.startswith("messages/") and n.endswith("response.xml"))
        for info in source.infolist():
            data = source.read(info)
            out.writestr(info, data.replace(person.encode(), b"010101-10101") if info.filename == message else data,
                         compress_type=info.compress_type)
    bad = officer.post("/evidence?lang=en", files={"container": ("tampered.asice", tampered.read_bytes(),
                                                                 "application/vnd.etsi.asic-e+zip")})
    assert '<span id="verdict" class="bad">INVALID</span>' in bad.text
    failed = text_of(bad.text[bad.text.index('id="failed"'):bad.text.index("</ul>", bad.text.index('id="failed"'))])
    assert "message bytes" in failed and f"data file {message} was changed after signing" in failed, failed
    not_zip = officer.post("/evidence?lang=en", files={"container": ("x.asice", b"<not a zip/>", "text/xml")})
    assert "INVALID" in not_zip.text and "not a ZIP file" in not_zip.text
    huge = officer.post("/evidence", files={"container": ("big.asice", b"0" * (9 * 1024 * 1024), "x/y")})
    assert huge.status_code == 413


def test_data_owner_approves_on_the_page_and_the_consumers_next_call_goes_through(  # type: ignore[no-untyped-def]
        node, catalog, person) -> None:
    refused = call(node, catalog, BANK_CONSUMER, person, "console-before")
    assert parse_fault(refused).code.endswith("Server.ServerProxy.AccessDenied")
    asked = cli("access", "request", BANK_CONSUMER, "fpr_person", "--purpose", "customer due diligence",
                "--legal-basis", "AML law s. 11", "--fields", "person_code,first_name,last_name,birth_date",
                "--quota", "100", env=node.cli_env).stdout
    request_id = re.search(r"(R-\d{4}-[0-9A-F]+)", asked)[1]  # type: ignore[index]
    owner = login_as(node, "data_owner")
    work = owner.get("/requests?lang=en").text
    assert f'data-request="{request_id}"' in work and "customer due diligence" in work
    pending = int(re.search(r'id="pending-count">(\d+)<', work)[1])  # type: ignore[index]
    from viss_bridge.access.registry import AccessRegistry
    from viss_bridge.access.requests import AccessRequests, Actor
    from viss_bridge.db import make_engine

    requests_ = AccessRequests(AccessRegistry(make_engine(node.bridge.database_url)), catalog.get)
    assert pending == len(requests_.list(actor=Actor(FPR_OWNER), status="pending"))
    wider = owner.post("/requests/decide?lang=en", {"request_id": request_id, "decision": "approve",
                                                     "fields": "person_code,addresses"})
    assert wider.status_code == 400 and "only narrow" in wider.text
    approved = owner.post("/requests/decide?lang=en", {"request_id": request_id, "decision": "approve",
                                                        "fields": "person_code,first_name", "quota": "50",
                                                        "note": "names only"})
    assert approved.status_code == 200 and f"{request_id} approved: permission P-" in approved.text
    number = re.search(r"permission (P-\d{4}-[0-9A-F]+)", approved.text)[1]  # type: ignore[index]
    served = call(node, catalog, BANK_CONSUMER, person, "console-after")
    assert served.status_code == 200 and person in served.text
    assert "first_name" in served.text
    assert "last_name" not in served.text  # narrowed on the page
    history = cli("access", "history", request_id, env=node.cli_env).stdout
    assert "request.approved" in history and FPR_OWNER in history
    log = login_as(node, "security_officer")
    audit = log.get(f"/log?service=request/request.approved&message_id={request_id}").text
    assert request_id in audit  # the workflow's audit event is on the signed chain, as from the CLI
    clicked = log.get("/log?service=console/request.approve&client=console:dainis-owner").text
    assert request_id in clicked
    permissions = owner.get("/permissions?lang=en").text
    row = permissions[permissions.index(f'data-permission="{number}"'):]
    assert re.search(r'<td class="num used">1</td><td class="num quota">50</td>', row[:row.index("</tr>")])
    revoked = owner.post("/permissions/revoke?lang=en", {"number": number, "reason": "test over"})
    assert f"{number} revoked" in revoked.text
    again = call(node, catalog, BANK_CONSUMER, person, "console-revoked")
    assert "AccessDenied" in parse_fault(again).code


def test_data_owner_rejects_with_a_reason_and_cannot_decide_for_another_owner(node, catalog) -> None:  # type: ignore[no-untyped-def]
    mine = re.search(r"(R-\d{4}-[0-9A-F]+)", cli(
        "access", "request", BANK_CONSUMER, "fpr_person", "--purpose", "marketing", "--legal-basis", "none",
        env=node.cli_env).stdout)[1]  # type: ignore[index]
    other = re.search(r"(R-\d{4}-[0-9A-F]+)", cli(
        "access", "request", BANK_CONSUMER, "vsaa_social_insurance", "--purpose", "x", "--legal-basis", "y",
        env=node.cli_env).stdout)[1]  # type: ignore[index]
    owner = login_as(node, "data_owner")
    work = owner.get("/requests").text
    assert mine in work and other not in work  # only the owner's datasets
    refused = owner.post("/requests/decide", {"request_id": other, "decision": "approve"})
    assert refused.status_code == 403
    no_reason = owner.post("/requests/decide", {"request_id": mine, "decision": "reject", "reason": " "})
    assert no_reason.status_code == 400 and "reason" in no_reason.text
    rejected = owner.post("/requests/decide", {"request_id": mine, "decision": "reject",
                                               "reason": "marketing is not a lawful purpose"})
    assert f"{mine} rejected" in rejected.text
    listed = cli("access", "requests", "--json", env=node.cli_env).stdout
    assert '"reason": "marketing is not a lawful purpose"' in listed


def test_migration_page_shows_states_parity_and_the_differing_operation_and_field(node) -> None:  # type: ignore[no-untyped-def]
    from viss_bridge.db import make_engine
    from viss_bridge.migration.tracking import MigrationTracker

    tracker = MigrationTracker(make_engine(node.bridge.database_url))
    tracker.create_schema()
    cli("migrate", "inventory", "wsdl/", "--record", env=node.cli_env)
    services = tracker.services()
    name = next(s.name for s in services if "FizPersonas" in s.name)
    tracker.record_shadow(name, 20, 18, 2, 0, differing={"GetPersonResponse/Person/GivenName": 2})
    tracker.record_shadow(name, 20, 20, 0, 0)
    tracker.record_shadow(name, 20, 17, 3, 0, differing={"GetPersonResponse/Person/Surname": 3})
    page = login_as(node, "migration").get("/migration?lang=en").text
    assert f'<div class="n">{len(services)}</div>' in page
    row = page[page.index(f'<tr data-service="{name}">'):]
    row = row[:row.index("</tr>")]
    assert '<td class="num parity">85.0%</td>' in row
    assert "GetPerson: <b>Person/Surname</b> (3)" in row
    assert row.count('class="point"') == 3 and 'data-value="100"' in row  # parity over time: 90, 100, 85
    assert 'data-parity="85"' in page  # the report's parity chart
    runs = login_as(node, "migration").get(f"/migration/service?name={name}").text
    assert runs.count("<tr><td>") == 3 and "Person/GivenName" in runs


def test_support_sees_who_read_a_person_and_the_lookup_is_logged(node, catalog, person) -> None:  # type: ignore[no-untyped-def]
    assert call(node, catalog, DEMO_CONSUMER, person, "console-tracker-1").status_code == 200
    cli("access", "restrict", person, "csdd_vehicle", "--reason", "stalking", env=node.cli_env)
    support = login_as(node, "support")
    before = sqlite_rows(node.log_db, "SELECT COUNT(*) FROM msglog_record WHERE endpoint = 'console'")[0][0]
    no_reason = support.post("/tracker?lang=en", {"person": person, "reason": ""})
    assert no_reason.status_code == 400 and 'id="usage"' not in no_reason.text
    assert sqlite_rows(node.log_db, "SELECT COUNT(*) FROM msglog_record WHERE endpoint = 'console'")[0][0] == before
    page = support.post("/tracker?lang=en", {"person": person, "reason": "person's request 2026/17"})
    from viss_bridge.access.tracker import DataTracker
    from viss_bridge.db import make_engine

    _, total = DataTracker(make_engine(node.bridge.database_url)).usage(person)
    assert total >= 1 and f'<span id="total">{total}</span>' in page.text
    assert DEMO_CONSUMER in page.text and "fpr_person" in page.text
    assert "csdd_vehicle" in page.text[page.text.index('id="restrictions"'):]
    logged = sqlite_rows(node.log_db, "SELECT client, service, user_id, subjects, body FROM msglog_record "
                                      "WHERE endpoint = 'console' AND service = 'console/tracker.lookup' "
                                      "AND direction = 'request' ORDER BY seq DESC LIMIT 1")
    client, service, user, subjects, body = logged[0]
    assert (client, user) == ("console:sergejs-support", "sergejs-support") and person in subjects
    assert b"person's request 2026/17" in body and person.encode() in body
