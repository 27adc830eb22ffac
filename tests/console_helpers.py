"""Helpers for the console tests: a logged, sealed demo bridge with one account per role, and a browser-less client.

Accounts are made with the real ``viss-bridge console user`` commands; pages are fetched over HTTP
with a ``requests`` session that logs in through the login form (its CSRF token included).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from tests.conftest import ROOT, RunningBridge, cli, start_bridge
from tests.msglog_helpers import log_env

FPR_OWNER = "LV/GOV/90000100015/FPR"  # owner of fpr_person in the demo catalog
PASSWORD = "correct horse battery staple"
ACCOUNTS = {  # account -> (role, owner scope)
    "olga-operator": ("operator", ""),
    "sandra-security": ("security_officer", ""),
    "dainis-owner": ("data_owner", FPR_OWNER),
    "marta-migration": ("migration", ""),
    "sergejs-support": ("support", ""),
}
ROLE_ACCOUNT = {role: name for name, (role, _) in ACCOUNTS.items()}

# Every GET page of the console and the role that may open it (the matrix test walks all of them).
GET_PAGES = {
    "/log": "security_officer", "/log/exchange?id=none": "security_officer", "/seals": "security_officer",
    "/verify": "security_officer", "/verify/job?id=none": "security_officer", "/evidence": "security_officer",
    "/requests": "data_owner", "/permissions": "data_owner",
    "/migration": "migration", "/migration/service?name=none": "migration",
    "/datasets": "operator", "/clients": "operator", "/health": "operator",
    "/tracker": "support",
}
POST_PAGES = {"/verify": "security_officer", "/evidence": "security_officer", "/requests/decide": "data_owner",
              "/permissions/revoke": "data_owner", "/tracker": "support"}
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


@dataclass
class ConsoleNode:
    bridge: RunningBridge
    log_db: Path
    cli_env: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"{self.bridge.url}/console"


def start_console_bridge(folder: Path, pki: Any, tsa_url: str) -> ConsoleNode:
    log_db = folder / "msglog.sqlite"
    env = log_env(pki, f"sqlite:///{log_db}", tsa_url, sign_responses="xroad")
    bridge = start_bridge(folder, workers=2, extra_env=env)
    node = ConsoleNode(bridge, log_db, {**bridge.env(), **env})
    for name, (role, scope) in ACCOUNTS.items():
        add_account(node, name, PASSWORD)
        cli("console", "user", "grant", name, role, *(["--owner", scope] if scope else []), env=node.cli_env)
    return node


def add_account(node: ConsoleNode, name: str, password: str) -> None:
    result = subprocess.run([sys.executable, "-m", "viss_bridge.cli", "console", "user", "add", name,
                             "--password-stdin"], input=password + "\n", text=True, capture_output=True,
                            env={**os.environ, **node.cli_env}, cwd=ROOT, timeout=60)
    assert result.returncode == 0, result.stderr


class ConsoleClient:
    """A person at the console, without a browser: cookies kept, forms posted with their CSRF token."""

    def __init__(self, node: ConsoleNode) -> None:
        self.node = node
        self.http = requests.Session()
        self.http.trust_env = False
        self.csrf = ""

    def login(self, account: str, password: str = PASSWORD) -> requests.Response:
        form = self.http.get(f"{self.node.url}/login", timeout=30)
        token = CSRF.search(form.text)[1]  # type: ignore[index]
        answer = self.http.post(f"{self.node.url}/login", data={"csrf": token, "account": account,
                                                                "password": password, "next": "/"},
                                allow_redirects=False, timeout=30)
        if answer.status_code == 303:
            self.csrf = CSRF.search(self.get("/").text)[1]  # type: ignore[index]
        return answer

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("allow_redirects", False)
        return self.http.get(f"{self.node.url}{path}", timeout=60, **kwargs)

    def post(self, path: str, data: dict[str, str] | None = None, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("allow_redirects", False)
        return self.http.post(f"{self.node.url}{path}", data={"csrf": self.csrf, **(data or {})}, timeout=120,
                              **kwargs)


def login_as(node: ConsoleNode, role: str) -> ConsoleClient:
    client = ConsoleClient(node)
    answer = client.login(ROLE_ACCOUNT[role])
    assert answer.status_code == 303, answer.text
    return client


def text_of(html: str) -> str:
    """The visible words of a page (tags out, whitespace folded), for asserting what a person reads."""
    import html as html_lib

    return " ".join(html_lib.unescape(re.sub(r"<[^>]+>", " ", html)).split())
