"""The console's door: no page without a login, every page only for its role, CSRF, headers, rate limits, links.

A real bridge (gunicorn, two workers) serves /console/; accounts are made with the real
``viss-bridge console user`` commands and people log in through the login form.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest
import requests

from tests.conftest import ROOT, cli
from tests.console_helpers import (ACCOUNTS, GET_PAGES, PASSWORD, POST_PAGES, ROLE_ACCOUNT, ConsoleClient,
                                   add_account, login_as, start_console_bridge)
from tests.msglog_helpers import TsaProcess


@pytest.fixture(scope="module")
def node(tmp_path_factory, dev_pki):  # type: ignore[no-untyped-def]
    tsa = TsaProcess(dev_pki)
    running = start_console_bridge(tmp_path_factory.mktemp("console-access"), dev_pki, tsa.url)
    yield running
    running.bridge.stop()
    tsa.stop()


def test_no_page_without_a_login(node) -> None:  # type: ignore[no-untyped-def]
    anonymous = requests.Session()
    for path in ["/", *GET_PAGES]:
        answer = anonymous.get(f"{node.url}{path}", allow_redirects=False, timeout=30)
        assert answer.status_code == 303, path
        assert answer.headers["Location"].startswith("/console/login?next="), path
    for path in POST_PAGES:
        answer = anonymous.post(f"{node.url}{path}", data={"csrf": "x"}, allow_redirects=False, timeout=30)
        assert answer.status_code == 303 and "/console/login" in answer.headers["Location"], path
    # nothing of the data is in the login page
    assert "fpr_person" not in anonymous.get(f"{node.url}/datasets", timeout=30).text


def test_every_page_opens_for_its_role_and_is_refused_to_every_other(node) -> None:  # type: ignore[no-untyped-def]
    for role in ROLE_ACCOUNT:
        person = login_as(node, role)
        for path, owner_role in GET_PAGES.items():
            answer = person.get(path)
            if owner_role == role:
                assert answer.status_code in (200, 404), (role, path, answer.status_code)  # 404: "none" is unknown
                assert answer.headers["Cache-Control"] == "no-store", path
            else:
                assert answer.status_code == 403, (role, path, answer.status_code)
                assert "You may not open this page." in answer.text or "Jums nav tiesību" in answer.text
        for path, owner_role in POST_PAGES.items():
            if owner_role != role:
                assert person.post(path, {"request_id": "R-x", "number": "P-x"}).status_code == 403, (role, path)
        home = person.get("/?lang=en").text
        own = [p for p, r in GET_PAGES.items() if r == role and "?" not in p]
        assert all(f'href="/console{p}"' in home for p in own), (role, home)
        assert not any(f'href="/console{p}"' in home for p, r in GET_PAGES.items() if r != role and "?" not in p)


def test_revoking_a_role_closes_its_pages_at_once(node) -> None:  # type: ignore[no-untyped-def]
    add_account(node, "tmp-operator", PASSWORD)
    cli("console", "user", "grant", "tmp-operator", "operator", env=node.cli_env)
    person = ConsoleClient(node)
    assert person.login("tmp-operator").status_code == 303
    assert person.get("/datasets").status_code == 200
    cli("console", "user", "revoke", "tmp-operator", "operator", env=node.cli_env)
    assert person.get("/datasets").status_code == 403
    listed = cli("console", "user", "list", env=node.cli_env).stdout
    assert re.search(r"tmp-operator\s+password\s+-", listed), listed
    assert re.search(r"dainis-owner\s+password\s+data_owner \(LV/GOV/90000100015/FPR\)", listed), listed


def test_a_form_without_the_session_csrf_token_is_refused(node) -> None:  # type: ignore[no-untyped-def]
    person = login_as(node, "support")
    refused = person.http.post(f"{node.url}/tracker", data={"person": "010190-10009", "reason": "ticket 1"},
                               allow_redirects=False, timeout=30)
    assert refused.status_code == 403
    wrong = person.http.post(f"{node.url}/tracker", data={"csrf": "forged", "person": "010190-10009",
                                                          "reason": "ticket 1"}, allow_redirects=False, timeout=30)
    assert wrong.status_code == 403
    login_form = requests.post(f"{node.url}/login", data={"account": "olga-operator", "password": PASSWORD},
                               allow_redirects=False, timeout=30)
    assert login_form.status_code == 403 and "vb_console=" not in login_form.headers.get("Set-Cookie", "")


def test_session_cookie_and_security_headers(node) -> None:  # type: ignore[no-untyped-def]
    person = ConsoleClient(node)
    answer = person.login("olga-operator")
    cookie = next(c for c in answer.raw.headers.getlist("Set-Cookie") if c.startswith("vb_console="))
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/console" in cookie
    page = person.get("/datasets")
    csp = page.headers["Content-Security-Policy"]
    assert "default-src 'self'" in csp and "script-src 'none'" in csp and "frame-ancestors 'none'" in csp
    assert page.headers["X-Frame-Options"] == "DENY" and page.headers["X-Content-Type-Options"] == "nosniff"
    assert page.headers["Cache-Control"] == "no-store"
    assert "<script" not in page.text and "style=" not in page.text
    css = person.get("/static/console.css")
    assert css.status_code == 200 and css.headers["Content-Type"].startswith("text/css")
    # a forged cookie (right shape, wrong signature) is no session
    forged = requests.get(f"{node.url}/datasets", cookies={"vb_console": cookie.split(";")[0].split("=", 1)[1][:-2]
                                                            + "xx"}, allow_redirects=False, timeout=30)
    assert forged.status_code == 303
    # logging out ends the session on the server, not only in the browser
    stolen = dict(person.http.cookies)
    assert person.post("/logout").status_code == 303
    assert requests.get(f"{node.url}/datasets", cookies=stolen, allow_redirects=False, timeout=30).status_code == 303


def test_failed_logins_are_rate_limited_and_logged(node) -> None:  # type: ignore[no-untyped-def]
    add_account(node, "victim", PASSWORD)
    cli("console", "user", "grant", "victim", "operator", env=node.cli_env)
    attacker = ConsoleClient(node)
    for _ in range(5):
        assert attacker.login("victim", "wrong password!").status_code == 401
    assert attacker.login("victim", PASSWORD).status_code == 429  # even the right password, for now
    log = node.bridge.log_text()
    assert log.count('"message": "console login failed"') >= 5 and '"account": "victim"' in log
    assert "console login refused: too many failed logins" in log
    assert ConsoleClient(node).login("olga-operator").status_code == 303  # others are not locked out


def test_a_one_time_link_logs_in_once(node) -> None:  # type: ignore[no-untyped-def]
    link = cli("console", "user", "link", "marta-migration", env=node.cli_env).stdout.strip()
    assert "/console/link?token=" in link
    path = link[link.index("/console/link"):]
    first = requests.get(node.bridge.url + path, allow_redirects=False, timeout=30)
    assert first.status_code == 303 and first.headers["Location"] == "/console/"
    assert requests.get(f"{node.url}/migration", cookies=first.cookies, allow_redirects=False,
                        timeout=30).status_code == 200
    again = requests.get(node.bridge.url + path, allow_redirects=False, timeout=30)
    assert again.status_code == 403 and "vb_console=" not in again.headers.get("Set-Cookie", "")


def test_console_user_commands_check_what_they_are_given(node) -> None:  # type: ignore[no-untyped-def]
    short = subprocess.run([sys.executable, "-m", "viss_bridge.cli", "console", "user", "add", "shorty",
                            "--password-stdin"], input="short\n", capture_output=True, text=True,
                           env={**os.environ, **node.cli_env}, cwd=ROOT)
    assert short.returncode != 0 and "at least 10 characters" in short.stderr
    no_owner = cli("console", "user", "grant", "olga-operator", "data_owner", env=node.cli_env, check=False)
    assert no_owner.returncode != 0 and "--owner" in no_owner.stderr
    unknown = cli("console", "user", "grant", "nobody", "operator", env=node.cli_env, check=False)
    assert unknown.returncode != 0 and "no console account nobody" in unknown.stderr
    assert set(ACCOUNTS) <= set(cli("console", "user", "list", env=node.cli_env).stdout.split())


def test_the_language_switches_between_latvian_and_english(node) -> None:  # type: ignore[no-untyped-def]
    person = login_as(node, "security_officer")
    assert "Ziņojumu žurnāls" in person.get("/log?lang=lv").text
    english = person.get("/log?lang=en").text
    assert "Message log" in english and "Ziņojumu žurnāls" not in english
    assert "Message log" in person.get("/log").text  # the choice is kept in a cookie


def test_a_tls_client_certificate_mapped_to_an_account_logs_in(tmp_path_factory, pki) -> None:  # type: ignore[no-untyped-def]
    from tests.access_helpers import start_tls_bridge
    from tests.console_helpers import CSRF

    bridge = start_tls_bridge(tmp_path_factory.mktemp("console-tls"), pki, workers=1)
    try:
        cert, key = pki.ca.issue("olga-console", common_name="olga")
        other, other_key = pki.ca.issue("someone-else", common_name="someone")
        cli("console", "user", "add", "olga", "--certificate", str(cert), env=bridge.env())
        cli("console", "user", "grant", "olga", "operator", env=bridge.env())
        for presented, expected in (((str(cert), str(key)), 303), ((str(other), str(other_key)), 401)):
            browser = requests.Session()
            browser.trust_env = False  # REQUESTS_CA_BUNDLE would otherwise override verify
            browser.verify, browser.cert = str(pki.ca.cert_path), presented
            form = browser.get(f"{bridge.url}/console/login", timeout=30)
            assert ('id="certificate-login"' in form.text) == (expected == 303)
            answer = browser.post(f"{bridge.url}/console/login", data={
                "csrf": CSRF.search(form.text)[1], "method": "certificate", "next": "/datasets"},  # type: ignore[index]
                allow_redirects=False, timeout=30)
            assert answer.status_code == expected, answer.text
            if expected == 303:
                cookie = next(c for c in answer.raw.headers.getlist("Set-Cookie") if c.startswith("vb_console="))
                assert "Secure" in cookie and answer.headers["Location"] == "/console/datasets"
                assert browser.get(f"{bridge.url}/console/datasets", timeout=30).status_code == 200
    finally:
        bridge.stop()


def test_the_demo_prints_a_one_time_link_for_an_account_with_every_role(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from tests.conftest import free_port

    port = free_port()
    demo = subprocess.Popen([sys.executable, "-m", "viss_bridge.cli", "demo", "--data-dir", str(tmp_path / "demo"),
                             "--port", str(port), "--provider-port", "0", "--workers", "1", "--size", "50"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT)
    printed = ""
    try:
        assert demo.stdout is not None
        for line in demo.stdout:
            printed += line
            if "/console/link?token=" in line:
                break
        found = re.search(r"(http://\S+/console/link\?token=\S+)", printed)
        assert found, printed
        first = requests.get(found[1], allow_redirects=False, timeout=30)
        assert first.status_code == 303
        home = requests.get(f"http://127.0.0.1:{port}/console/?lang=en", cookies=first.cookies, timeout=30).text
        for page in ("Message log", "Access requests", "Migration", "Datasets", "Data tracker"):
            assert page in home, page
        assert requests.get(found[1], allow_redirects=False, timeout=30).status_code == 403
    finally:
        demo.terminate()
        demo.wait(30)
