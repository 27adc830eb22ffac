"""The demo's console account: every role (data owner for every demo dataset's owner), a one-time link.

``viss-bridge demo`` prints the link; it logs in once, within 30 minutes, and a new start of the
demo makes a new one. The account has no password, so nobody can log in as it without a link.
"""

from __future__ import annotations

from typing import Iterable

from viss_bridge.console.accounts import DATA_OWNER, ROLES, AccountStore

DEMO_ACCOUNT = "demo"


def demo_login_token(engine: object, owners: Iterable[str]) -> str:
    """Make (or complete) the demo account and return a fresh one-time login token for it."""
    accounts = AccountStore(engine)  # type: ignore[arg-type]
    accounts.create_schema()
    if accounts.get(DEMO_ACCOUNT) is None:
        accounts.add(DEMO_ACCOUNT)
    for role in ROLES:
        if role != DATA_OWNER:
            accounts.grant(DEMO_ACCOUNT, role)
    for owner in sorted(set(owners)):
        accounts.grant(DEMO_ACCOUNT, DATA_OWNER, owner)
    return accounts.make_link(DEMO_ACCOUNT)
