"""Console accounts on a real SQLite file: hashes, roles, links used once, sessions, failed-login counts, redirects."""

from __future__ import annotations

import datetime as dt
import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import update

from viss_bridge.console.accounts import (MAX_FAILURES_PER_ACCOUNT, MAX_FAILURES_PER_ADDRESS, AccountProblem,
                                          AccountStore, Grant, links, sessions)
from viss_bridge.console.web import node_secret, safe_next
from viss_bridge.db import make_engine


@pytest.fixture()
def store(tmp_path: Path) -> AccountStore:
    accounts = AccountStore(make_engine(f"sqlite:///{tmp_path / 'bridge.sqlite'}"))
    accounts.create_schema()
    return accounts


def test_passwords_are_stored_as_argon2_hashes_and_checked(store: AccountStore, tmp_path: Path) -> None:
    store.add("sandra", "a long passphrase")
    stored = sqlite3.connect(tmp_path / "bridge.sqlite").execute(
        "SELECT password_hash FROM console_accounts WHERE name = 'sandra'").fetchone()[0]
    assert stored.startswith("$argon2id$") and "a long passphrase" not in stored
    assert store.check_password("sandra", "a long passphrase") is not None
    assert store.check_password("sandra", "a long passphrasE") is None
    assert store.check_password("nobody", "a long passphrase") is None
    with pytest.raises(AccountProblem, match="at least 10"):
        store.add("short", "123")
    with pytest.raises(AccountProblem, match="exists already"):
        store.add("sandra", "another long one")
    with pytest.raises(AccountProblem, match="account name"):
        store.add("../etc", "a long passphrase")


def test_roles_and_the_data_owners_scope(store: AccountStore) -> None:
    store.add("dainis", "a long passphrase")
    with pytest.raises(AccountProblem, match="--owner"):
        store.grant("dainis", "data_owner")
    with pytest.raises(AccountProblem, match="only the data_owner role"):
        store.grant("dainis", "operator", "LV/GOV/1")
    with pytest.raises(AccountProblem, match="unknown role"):
        store.grant("dainis", "root")
    store.grant("dainis", "data_owner", "LV/GOV/90000100015/FPR")
    store.grant("dainis", "data_owner", "LV/GOV/90000500057/SAIS")
    account = store.grant("dainis", "data_owner", "LV/GOV/90000100015/FPR")  # twice: no duplicate
    assert account.scopes("data_owner") == ["LV/GOV/90000100015/FPR", "LV/GOV/90000500057/SAIS"]
    assert not account.has("operator")
    account = store.revoke("dainis", "data_owner", "LV/GOV/90000500057/SAIS")
    assert account.grants == (Grant("data_owner", "LV/GOV/90000100015/FPR"),)
    with pytest.raises(AccountProblem, match="does not hold"):
        store.revoke("dainis", "support")


def test_a_login_link_works_once_and_not_after_it_expires(store: AccountStore) -> None:
    store.add("demo")
    token = store.make_link("demo")
    assert store.use_link(token) is not None
    assert store.use_link(token) is None
    late = store.make_link("demo")
    with store.engine.begin() as conn:
        conn.execute(update(links).values(expires_at=dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=1)))
    assert store.use_link(late) is None
    assert store.use_link("not-a-token") is None
    assert store.check_password("demo", "") is None  # no password: links only


def test_sessions_end_when_closed_or_expired(store: AccountStore) -> None:
    store.add("olga", "a long passphrase")
    store.grant("olga", "operator")
    first, second = store.open_session("olga"), store.open_session("olga")
    session = store.session(first)
    assert session is not None and session.account.has("operator") and len(session.csrf) >= 32
    assert store.session(second).csrf != session.csrf  # type: ignore[union-attr]
    store.close_session(first)
    assert store.session(first) is None and store.session(second) is not None
    with store.engine.begin() as conn:
        conn.execute(update(sessions).values(expires_at=dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=1)))
    assert store.session(second) is None


def test_failed_logins_count_per_account_and_per_address(store: AccountStore) -> None:
    for _ in range(MAX_FAILURES_PER_ACCOUNT - 1):
        store.note_failure("victim", "10.0.0.1")
    assert not store.refused_for("victim", "10.0.0.2")
    store.note_failure("victim", "10.0.0.1")
    assert store.refused_for("victim", "10.0.0.2")  # the account, from anywhere
    assert not store.refused_for("someone", "10.0.0.2")
    store.clear_failures("victim")
    assert not store.refused_for("victim", "10.0.0.2")
    for index in range(MAX_FAILURES_PER_ADDRESS):
        store.note_failure(f"guess-{index}", "10.0.0.9")
    assert store.refused_for("anyone", "10.0.0.9") and not store.refused_for("anyone", "10.0.0.8")


def test_only_paths_inside_the_console_are_followed_after_login() -> None:
    assert safe_next("/requests?lang=en") == "/requests?lang=en"
    for evil in ("//evil.example/x", "https://evil.example/", "javascript:alert(1)", "/\\evil.example", "evil"):
        assert safe_next(evil) == "/", evil


def test_the_node_secret_is_made_once_and_kept_private(tmp_path: Path) -> None:
    path = tmp_path / "data" / "bridge-console.secret"
    first = node_secret(path)
    assert len(first) >= 32 and node_secret(path) == first
    assert path.stat().st_mode & 0o777 == 0o600
