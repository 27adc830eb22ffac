"""The console in a real browser: headless Chromium driven by Selenium (Debian chromium + chromium-driver).

One demo-like node with real traffic; the demo's own account (every role, logged in by the one-time
link ``viss-bridge demo`` prints) walks every page and checks the figures against the stores; a
support account cannot open an operator's page; a container is uploaded; a request is approved and
the consumer's next SOAP call goes through. Screenshots of the main pages are saved in the test's
temporary folder (and copied to ``$VISS_BRIDGE_CONSOLE_SCREENSHOTS`` when set, for docs/console.md).
"""

from __future__ import annotations

import os
import re
import shutil
import time
import zipfile
from pathlib import Path

import pytest

from tests.conftest import BANK_CONSUMER, DEMO_CONSUMER, EDUCATION_CONSUMER, cli
from tests.console_helpers import ConsoleNode, start_console_bridge
from tests.msglog_helpers import TsaProcess, sqlite_rows
from tests.soap_helpers import parse_fault, post, xroad_lookup

pytestmark = pytest.mark.tool

CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def _require_browser() -> None:
    if CHROMIUM and Path(CHROMEDRIVER).exists():
        return
    if os.environ.get("CI") == "true":
        pytest.fail("chromium and chromium-driver are needed (Debian packages chromium chromium-driver)")
    pytest.skip("needs chromium and chromium-driver (apt-get install chromium chromium-driver)")


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:  # type: ignore[no-untyped-def]
    return tmp_path_factory.mktemp("console-screenshots")


@pytest.fixture(scope="module")
def world(demo_world):  # type: ignore[no-untyped-def]
    return demo_world


@pytest.fixture(scope="module")
def node(tmp_path_factory, dev_pki, world):  # type: ignore[no-untyped-def]
    _require_browser()
    tsa = TsaProcess(dev_pki)
    running = start_console_bridge(tmp_path_factory.mktemp("console-browser"), dev_pki, tsa.url)
    from viss_bridge.catalog.catalog import load_catalog

    catalog = load_catalog(running.bridge.catalog_dir)
    running.catalog = catalog  # type: ignore[attr-defined]
    # Real traffic: several consumers read persons, one is refused, one person restricts a dataset.
    for index, person in enumerate(world["fpr_person"][:6]):
        for client in (DEMO_CONSUMER, EDUCATION_CONSUMER):
            post(running.bridge.xroad, xroad_lookup(catalog.get("fpr_person"), client,
                                                    {"person_code": person["person_code"]},
                                                    message_id=f"browser-{client[-4:]}-{index}"))
    post(running.bridge.xroad, xroad_lookup(catalog.get("fpr_person"), BANK_CONSUMER,
                                            {"person_code": world["fpr_person"][0]["person_code"]},
                                            message_id="browser-refused"))
    cli("access", "restrict", world["fpr_person"][0]["person_code"], "csdd_vehicle", "--reason", "objection",
        env=running.cli_env)
    cli("migrate", "inventory", "wsdl/", "--record", env=running.cli_env)
    from viss_bridge.db import make_engine
    from viss_bridge.migration.tracking import MigrationTracker

    tracker = MigrationTracker(make_engine(running.bridge.database_url))
    persons = next(s.name for s in tracker.services() if "FizPersonas" in s.name)
    tracker.record_shadow(persons, 20, 17, 3, 0, differing={"GetPersonResponse/Person/GivenName": 3})
    tracker.record_shadow(persons, 20, 20, 0, 0)
    running.shadowed = persons  # type: ignore[attr-defined]
    yield running
    running.bridge.stop()
    tsa.stop()


@pytest.fixture(scope="module")
def browser():  # type: ignore[no-untyped-def]
    _require_browser()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM  # type: ignore[assignment]
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1280,1000",
                     "--disable-dev-shm-usage"):
        options.add_argument(argument)
    options.add_experimental_option("prefs", {"intl.accept_languages": "lv,en"})  # a Latvian official's browser
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


def shot(driver, folder: Path, name: str) -> Path:  # type: ignore[no-untyped-def]
    """A full-page screenshot (the window grows to the page's height first)."""
    height = driver.execute_script("return document.documentElement.scrollHeight")
    width = driver.get_window_size()["width"]
    driver.set_window_size(width, min(max(height + 120, 600), 4000))
    target = folder / f"{name}.png"
    driver.save_screenshot(str(target))
    copy_to = os.environ.get("VISS_BRIDGE_CONSOLE_SCREENSHOTS")
    if copy_to:
        Path(copy_to).mkdir(parents=True, exist_ok=True)
        shutil.copy(target, Path(copy_to) / target.name)
    driver.set_window_size(width, 1000)
    return target


def csp_violations(driver) -> list[str]:  # type: ignore[no-untyped-def]
    return [e["message"] for e in driver.get_log("browser") if "Content Security Policy" in e["message"]]


def submit(driver, within, selector: str) -> None:  # type: ignore[no-untyped-def]
    """Click a form's button and wait until the answer's page replaced this one, so that the next
    ``find_element`` reads the new page, not the old one (which would go stale under it)."""
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    page = driver.find_element("tag name", "html")
    within.find_element("css selector", selector).click()
    WebDriverWait(driver, 60).until(expected_conditions.staleness_of(page))


def log_in_with_the_demo_link(driver, node: ConsoleNode) -> None:  # type: ignore[no-untyped-def]
    from viss_bridge.console.demo import demo_login_token
    from viss_bridge.db import make_engine

    token = demo_login_token(make_engine(node.bridge.database_url), [d.owner for d in node.catalog])  # type: ignore[attr-defined]
    driver.delete_all_cookies()
    driver.get(f"{node.bridge.url}/console/link?token={token}")
    assert driver.current_url.endswith("/console/"), driver.current_url


def test_login_form_and_a_role_that_cannot_open_another_roles_page(browser, node, shots) -> None:  # type: ignore[no-untyped-def]
    from selenium.webdriver.common.by import By

    browser.delete_all_cookies()
    browser.get(f"{node.url}/datasets")
    assert "/console/login" in browser.current_url
    shot(browser, shots, "login")
    browser.find_element(By.NAME, "account").send_keys("sergejs-support")
    browser.find_element(By.NAME, "password").send_keys("wrong password here")
    submit(browser, browser, "#login button")
    assert "Nepareizs konts vai parole" in browser.find_element(By.ID, "error").text
    browser.find_element(By.NAME, "account").send_keys("sergejs-support")
    browser.find_element(By.NAME, "password").send_keys("correct horse battery staple")
    submit(browser, browser, "#login button")
    assert browser.find_element(By.ID, "account").text == "sergejs-support"
    assert [a.text for a in browser.find_elements(By.CSS_SELECTOR, "nav.menu a")] == ["Datu izsekotājs"]
    browser.get(f"{node.url}/datasets")
    assert "Jums nav tiesību atvērt šo lapu" in browser.find_element(By.ID, "refused").text
    assert "fpr_person" not in browser.page_source
    # the style sheet is served by the console and allowed by its CSP: the header has the accent colour
    header = browser.find_element(By.CSS_SELECTOR, "header.top")
    assert header.value_of_css_property("background-color") in ("rgba(158, 48, 57, 1)", "rgb(158, 48, 57)")
    assert csp_violations(browser) == []


def test_every_page_of_every_role_renders_with_the_demos_real_numbers(browser, node, shots, world) -> None:  # type: ignore[no-untyped-def]
    from selenium.webdriver.common.by import By

    from viss_bridge.access.tracker import DataTracker
    from viss_bridge.catalog.store import DatasetStore
    from viss_bridge.db import make_engine

    engine = make_engine(node.bridge.database_url)
    log_in_with_the_demo_link(browser, node)
    browser.get(f"{node.url}/?lang=en")
    assert {a.text for a in browser.find_elements(By.CSS_SELECTOR, "nav.menu a")} >= {
        "Message log", "Chain and seals", "Verify the log", "Evidence container", "Access requests", "Permissions",
        "Migration", "Datasets", "Clients and certificates", "Health", "Data tracker"}
    shot(browser, shots, "home")
    # operator
    counts = DatasetStore(engine).counts()
    browser.get(f"{node.url}/datasets")
    for row in browser.find_elements(By.CSS_SELECTOR, "#datasets tbody tr"):
        name = row.get_attribute("data-dataset")
        assert int(row.find_element(By.CSS_SELECTOR, "td.records").text) == counts[name], name
    assert len(browser.find_elements(By.CSS_SELECTOR, "#datasets tbody tr")) == len(node.catalog)  # type: ignore[attr-defined]
    shot(browser, shots, "operator-datasets")
    browser.get(f"{node.url}/clients")
    assert browser.find_element(By.CSS_SELECTOR, f'tr[data-client="{DEMO_CONSUMER}"]')
    browser.get(f"{node.url}/health")
    assert browser.find_element(By.ID, "health").text == "ok"
    xroad_bar = browser.find_element(By.CSS_SELECTOR, 'svg rect.bar[data-label="xroad"]')
    assert int(xroad_bar.get_attribute("data-value")) >= 13  # the 13 calls made above, on some worker
    shot(browser, shots, "operator-health")
    # security officer
    browser.get(f"{node.url}/log?client={DEMO_CONSUMER}")
    logged = sqlite_rows(node.log_db, "SELECT COUNT(*) FROM msglog_record WHERE client = ?", (DEMO_CONSUMER,))[0][0]
    assert len(browser.find_elements(By.CSS_SELECTOR, "#records tbody tr")) == min(logged, 200)
    shot(browser, shots, "security-log")
    submit(browser, browser, "#records tbody tr td a")
    assert len(browser.find_elements(By.CSS_SELECTOR, "section.record")) == 2
    shot(browser, shots, "security-exchange")
    browser.get(f"{node.url}/seals")
    head = sqlite_rows(node.log_db, "SELECT seq FROM msglog_head")[0][0]
    assert int(browser.find_element(By.CSS_SELECTOR, 'tr[data-node="node-1"] td.head').text) >= head
    shot(browser, shots, "security-seals")
    browser.get(f"{node.url}/verify")
    submit(browser, browser, "#start-verify button")
    deadline = time.monotonic() + 120
    while browser.find_element(By.ID, "job-state").get_attribute("data-state") == "running":
        assert time.monotonic() < deadline
        time.sleep(0.5)  # the page refreshes itself (meta refresh); no script runs
    assert browser.find_element(By.ID, "verdict").text == "LOG VALID"
    shot(browser, shots, "security-verify")
    # migration
    browser.get(f"{node.url}/migration")
    row = browser.find_element(By.CSS_SELECTOR, f'tr[data-service="{node.shadowed}"]')  # type: ignore[attr-defined]
    assert row.find_element(By.CSS_SELECTOR, "td.parity").text == "100.0%"
    assert len(row.find_elements(By.CSS_SELECTOR, "circle.point")) == 2
    shot(browser, shots, "migration")
    # support
    person = world["fpr_person"][0]["person_code"]
    browser.get(f"{node.url}/tracker")
    browser.find_element(By.NAME, "person").send_keys(person)
    browser.find_element(By.NAME, "reason").send_keys("person's request 2026/41")
    submit(browser, browser, "#lookup button")
    _, total = DataTracker(engine).usage(person)
    assert int(browser.find_element(By.ID, "total").text) == total and total >= 2
    assert "csdd_vehicle" in browser.find_element(By.ID, "restrictions").text
    shot(browser, shots, "support-tracker")
    assert csp_violations(browser) == []


def test_data_owner_approves_in_the_browser_and_the_consumer_is_served(browser, node, shots, world) -> None:  # type: ignore[no-untyped-def]
    from selenium.webdriver.common.by import By

    person = world["fpr_person"][1]["person_code"]
    dataset = node.catalog.get("fpr_person")  # type: ignore[attr-defined]
    assert "AccessDenied" in parse_fault(post(node.bridge.xroad, xroad_lookup(dataset, BANK_CONSUMER,
                                                                               {"person_code": person}))).code
    asked = cli("access", "request", BANK_CONSUMER, "fpr_person", "--purpose", "customer due diligence",
                "--legal-basis", "AML law s. 11", "--fields", "person_code,first_name,last_name", "--quota", "500",
                env=node.cli_env).stdout
    request_id = re.search(r"(R-\d{4}-[0-9A-F]+)", asked)[1]  # type: ignore[index]
    log_in_with_the_demo_link(browser, node)
    browser.get(f"{node.url}/requests?lang=en")
    card = browser.find_element(By.CSS_SELECTOR, f'section[data-request="{request_id}"]')
    shot(browser, shots, "owner-requests")
    card.find_element(By.CSS_SELECTOR, "form.approve input[name=fields]").send_keys("person_code,first_name")
    card.find_element(By.CSS_SELECTOR, "form.approve input[name=quota]").send_keys("100")
    submit(browser, card, "form.approve button")
    assert f"{request_id} approved" in browser.find_element(By.ID, "message").text
    served = post(node.bridge.xroad, xroad_lookup(dataset, BANK_CONSUMER, {"person_code": person}))
    assert served.status_code == 200 and "first_name" in served.text and "last_name" not in served.text
    browser.get(f"{node.url}/permissions")
    bank = [r for r in browser.find_elements(By.CSS_SELECTOR, "#permissions tbody tr")
            if BANK_CONSUMER in r.text and r.get_attribute("data-dataset") == "fpr_person"]
    assert bank and bank[0].find_element(By.CSS_SELECTOR, "td.used").text == "1"
    assert bank[0].find_element(By.CSS_SELECTOR, "td.quota").text == "100"
    shot(browser, shots, "owner-permissions")


def test_uploaded_containers_valid_and_tampered(browser, node, shots, tmp_path, world) -> None:  # type: ignore[no-untyped-def]
    from selenium.webdriver.common.by import By

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        head, sealed = sqlite_rows(node.log_db, "SELECT h.seq, s.sealed_seq FROM msglog_head h JOIN msglog_sealer s "
                                                "ON s.node_id = h.node_id")[0]
        if head == sealed:
            break
        time.sleep(0.2)
    good = tmp_path / "browser-0.asice"
    cli("log", "export", "--message-id", f"browser-{DEMO_CONSUMER[-4:]}-0", "-o", str(good),
        env=node.cli_env)
    tampered = tmp_path / "tampered.asice"
    person = world["fpr_person"][0]["person_code"].encode()
    with zipfile.ZipFile(good) as source, zipfile.ZipFile(tampered, "w") as out:
        for info in source.infolist():
            data = source.read(info)
            if info.filename.startswith("messages/") and info.filename.endswith("response.xml"):
                data = data.replace(person, b"999999-99999")
            out.writestr(info, data, compress_type=info.compress_type)
    log_in_with_the_demo_link(browser, node)
    browser.get(f"{node.url}/evidence?lang=en")
    browser.find_element(By.NAME, "container").send_keys(str(good))
    submit(browser, browser, "#upload button")
    assert browser.find_element(By.ID, "verdict").text == "VALID"
    assert not browser.find_elements(By.CSS_SELECTOR, 'tr[data-status="failed"]')
    shot(browser, shots, "security-evidence-valid")
    browser.find_element(By.NAME, "container").send_keys(str(tampered))
    submit(browser, browser, "#upload button")
    assert browser.find_element(By.ID, "verdict").text == "INVALID"
    failed = browser.find_element(By.ID, "failed").text
    assert "message bytes" in failed and "was changed after signing" in failed, failed
    shot(browser, shots, "security-evidence-tampered")


def test_pages_fit_a_phone(browser, node, shots) -> None:  # type: ignore[no-untyped-def]
    log_in_with_the_demo_link(browser, node)
    browser.set_window_size(390, 844)
    try:
        browser.get(f"{node.url}/requests?lang=en")
        overflow = browser.execute_script("return document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 1, overflow  # wide tables scroll inside their box, the page does not
        browser.save_screenshot(str(shots / "phone-requests.png"))
        copy_to = os.environ.get("VISS_BRIDGE_CONSOLE_SCREENSHOTS")
        if copy_to:
            shutil.copy(shots / "phone-requests.png", Path(copy_to) / "phone-requests.png")
    finally:
        browser.set_window_size(1280, 1000)
