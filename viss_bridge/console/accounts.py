"""Console accounts, their roles, sessions, one-time login links and failed-login counts, as database rows.

They live in the bridge's database (SQLite or PostgreSQL) next to the access tables, so every
worker and every node on one database sees the same accounts and sessions, and revoking a role
takes effect on the next page a person opens. Passwords are hashed with Argon2id (argon2-cffi);
session ids and login tokens are random and stored only as their SHA-256, so a copy of the
database lets nobody log in.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import secrets
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import (Column, DateTime, Index, Integer, MetaData, String, Table, delete, func, insert, select,
                        update)
from sqlalchemy.engine import Engine

metadata = MetaData()

OPERATOR, SECURITY_OFFICER, DATA_OWNER, MIGRATION, SUPPORT = (
    "operator", "security_officer", "data_owner", "migration", "support")
ROLES = (OPERATOR, SECURITY_OFFICER, DATA_OWNER, MIGRATION, SUPPORT)

SESSION_HOURS = 8
LINK_MINUTES = 30
# Failed logins counted over this window; beyond the limits a login is refused before the password is checked.
FAILURE_WINDOW = dt.timedelta(minutes=15)
MAX_FAILURES_PER_ACCOUNT = 5
MAX_FAILURES_PER_ADDRESS = 20

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")

accounts = Table(
    "console_accounts", metadata,
    Column("name", String(64), primary_key=True),
    Column("password_hash", String(255), nullable=True),  # NULL: no password (certificate or link only)
    Column("certificate_sha256", String(64), nullable=True, unique=True),  # a TLS client certificate's fingerprint
    Column("created_at", DateTime(timezone=True), nullable=False),
)

roles = Table(
    "console_roles", metadata,
    Column("account", String(64), nullable=False),
    Column("role", String(32), nullable=False),
    Column("scope", String(255), nullable=False, default=""),  # data_owner: the owner id (LV/GOV/90000000001/FPR)
    Index("ux_console_roles", "account", "role", "scope", unique=True),
)

sessions = Table(
    "console_sessions", metadata,
    Column("id_sha256", String(64), primary_key=True),
    Column("account", String(64), nullable=False),
    Column("csrf", String(64), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
)

links = Table(
    "console_login_links", metadata,
    Column("token_sha256", String(64), primary_key=True),
    Column("account", String(64), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("used_at", DateTime(timezone=True), nullable=True),
)

failures = Table(
    "console_login_failures", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("account", String(64), nullable=False),
    Column("address", String(64), nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Index("ix_console_failures_at", "at"),
)


class AccountProblem(ValueError):
    """An account operation that cannot be done as asked (unknown account, bad name, bad role)."""


@dataclass(frozen=True)
class Grant:
    role: str
    scope: str = ""


@dataclass(frozen=True)
class Account:
    name: str
    grants: tuple[Grant, ...]
    has_password: bool = False
    certificate_sha256: str | None = None

    def has(self, role: str) -> bool:
        return any(g.role == role for g in self.grants)

    def scopes(self, role: str) -> list[str]:
        """The owner ids a data owner acts for."""
        return sorted(g.scope for g in self.grants if g.role == role and g.scope)


@dataclass(frozen=True)
class Session:
    account: Account
    csrf: str
    expires_at: dt.datetime


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class AccountStore:
    def __init__(self, engine: Engine, hasher: PasswordHasher | None = None) -> None:
        self.engine = engine
        self.hasher = hasher or PasswordHasher()
        # A hash of a random password: an unknown account costs as much time as a wrong password.
        self._dummy = self.hasher.hash(secrets.token_urlsafe(16))

    def create_schema(self) -> None:
        from viss_bridge.db import create_tables

        create_tables(metadata, self.engine)  # several workers start together on a fresh database

    # -- accounts and roles ----------------------------------------------------------------------

    def add(self, name: str, password: str | None = None, certificate_sha256: str | None = None) -> Account:
        if not NAME.match(name):
            raise AccountProblem(f"account name {name!r}: use 1-64 letters, digits and . _ @ - (starting with a "
                                 "letter or digit)")
        if password is not None and len(password) < 10:
            raise AccountProblem("a console password needs at least 10 characters")
        with self.engine.begin() as conn:
            if conn.execute(select(accounts.c.name).where(accounts.c.name == name)).first():
                raise AccountProblem(f"account {name} exists already")
            conn.execute(insert(accounts).values(
                name=name, password_hash=self.hasher.hash(password) if password else None,
                certificate_sha256=certificate_sha256.lower() if certificate_sha256 else None, created_at=_now()))
        return self.get_required(name)

    def set_password(self, name: str, password: str) -> None:
        if len(password) < 10:
            raise AccountProblem("a console password needs at least 10 characters")
        self.get_required(name)
        with self.engine.begin() as conn:
            conn.execute(update(accounts).where(accounts.c.name == name)
                         .values(password_hash=self.hasher.hash(password)))

    def get(self, name: str) -> Account | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(accounts).where(accounts.c.name == name)).first()
            if row is None:
                return None
            grants = conn.execute(select(roles.c.role, roles.c.scope).where(roles.c.account == name)
                                  .order_by(roles.c.role, roles.c.scope)).all()
        return Account(row.name, tuple(Grant(r.role, r.scope or "") for r in grants), row.password_hash is not None,
                       row.certificate_sha256)

    def get_required(self, name: str) -> Account:
        account = self.get(name)
        if account is None:
            raise AccountProblem(f"no console account {name}")
        return account

    def list(self) -> list[Account]:
        with self.engine.connect() as conn:
            names = [r.name for r in conn.execute(select(accounts.c.name).order_by(accounts.c.name)).all()]
        return [self.get_required(n) for n in names]

    def grant(self, name: str, role: str, scope: str = "") -> Account:
        if role not in ROLES:
            raise AccountProblem(f"unknown role {role!r}; roles are {', '.join(ROLES)}")
        if role == DATA_OWNER and not scope:
            raise AccountProblem("a data owner acts for an owner: give --owner (e.g. LV/GOV/90000000001/FPR)")
        if role != DATA_OWNER and scope:
            raise AccountProblem(f"only the data_owner role has an owner; {role} covers the whole node")
        account = self.get_required(name)
        if Grant(role, scope) not in account.grants:
            with self.engine.begin() as conn:
                conn.execute(insert(roles).values(account=name, role=role, scope=scope))
        return self.get_required(name)

    def revoke(self, name: str, role: str, scope: str | None = None) -> Account:
        """Take a role away (for a data owner: one owner, or every owner without ``scope``)."""
        self.get_required(name)
        with self.engine.begin() as conn:
            query = delete(roles).where(roles.c.account == name, roles.c.role == role)
            if scope:
                query = query.where(roles.c.scope == scope)
            if conn.execute(query).rowcount == 0:
                raise AccountProblem(f"{name} does not hold the role {role}" + (f" for {scope}" if scope else ""))
        return self.get_required(name)

    # -- logging in ------------------------------------------------------------------------------

    def check_password(self, name: str, password: str) -> Account | None:
        """The account if the password is right; None otherwise (same work for unknown accounts)."""
        with self.engine.connect() as conn:
            row = conn.execute(select(accounts.c.password_hash).where(accounts.c.name == name)).first()
        stored = row.password_hash if row is not None else None
        try:
            self.hasher.verify(stored or self._dummy, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return None
        if stored is None:
            return None
        if self.hasher.check_needs_rehash(stored):
            self.set_password(name, password)
        return self.get(name)

    def for_certificate(self, fingerprint: str) -> Account | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(accounts.c.name).where(accounts.c.certificate_sha256 == fingerprint.lower())
                               ).first()
        return self.get(row.name) if row is not None else None

    def refused_for(self, name: str, address: str) -> bool:
        """True while an account or an address has too many recent failed logins."""
        since = _now() - FAILURE_WINDOW
        with self.engine.connect() as conn:
            per_account = conn.execute(select(func.count()).select_from(failures)
                                       .where(failures.c.account == name, failures.c.at >= since)).scalar_one()
            per_address = conn.execute(select(func.count()).select_from(failures)
                                       .where(failures.c.address == address, failures.c.at >= since)).scalar_one()
        return per_account >= MAX_FAILURES_PER_ACCOUNT or per_address >= MAX_FAILURES_PER_ADDRESS

    def note_failure(self, name: str, address: str) -> None:
        now = _now()
        with self.engine.begin() as conn:
            conn.execute(insert(failures).values(account=name[:64], address=address[:64], at=now))
            conn.execute(delete(failures).where(failures.c.at < now - FAILURE_WINDOW * 4))

    def clear_failures(self, name: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(delete(failures).where(failures.c.account == name))

    # -- one-time login links --------------------------------------------------------------------

    def make_link(self, name: str, minutes: int = LINK_MINUTES) -> str:
        """A random token for one login within ``minutes``; only its hash is stored."""
        self.get_required(name)
        token = secrets.token_urlsafe(32)
        with self.engine.begin() as conn:
            conn.execute(insert(links).values(token_sha256=_digest(token), account=name,
                                              expires_at=_now() + dt.timedelta(minutes=minutes)))
        return token

    def use_link(self, token: str) -> Account | None:
        """The link's account, once: a conditional UPDATE consumes it, so two uses cannot both succeed."""
        digest = _digest(token)
        now = _now()
        with self.engine.begin() as conn:
            row = conn.execute(select(links).where(links.c.token_sha256 == digest)).first()
            if row is None or row.used_at is not None or _aware(row.expires_at) <= now:
                return None
            taken = conn.execute(update(links).where(links.c.token_sha256 == digest, links.c.used_at.is_(None))
                                 .values(used_at=now)).rowcount
        return self.get(row.account) if taken == 1 else None

    # -- sessions --------------------------------------------------------------------------------

    def open_session(self, name: str, hours: int = SESSION_HOURS) -> str:
        """A new session id (for the signed cookie); only its hash and the CSRF token are stored."""
        session_id = secrets.token_urlsafe(32)
        now = _now()
        with self.engine.begin() as conn:
            conn.execute(delete(sessions).where(sessions.c.expires_at < now))
            conn.execute(insert(sessions).values(id_sha256=_digest(session_id), account=name,
                                                 csrf=secrets.token_urlsafe(32), created_at=now,
                                                 expires_at=now + dt.timedelta(hours=hours)))
        return session_id

    def session(self, session_id: str) -> Session | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(sessions).where(sessions.c.id_sha256 == _digest(session_id))).first()
        if row is None or _aware(row.expires_at) <= _now():
            return None
        account = self.get(row.account)
        return Session(account, row.csrf, _aware(row.expires_at)) if account is not None else None

    def close_session(self, session_id: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(delete(sessions).where(sessions.c.id_sha256 == _digest(session_id)))
