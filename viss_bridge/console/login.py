"""Logging in and out: password (Argon2), a TLS client certificate mapped to an account, a one-time link.

Failed logins are counted per account and per address in the database (so every worker and node
counts the same) and logged; beyond the limits (accounts.py) a login is refused before the password
is even checked. The login form carries its own CSRF token (a signed cookie and a hidden field),
since there is no session yet whose token it could carry.
"""

from __future__ import annotations

import logging
import secrets
from typing import TYPE_CHECKING

from itsdangerous import BadSignature
from werkzeug.wrappers import Request, Response

from viss_bridge.access.identity import IDENTITY_ENV

if TYPE_CHECKING:
    from viss_bridge.console.web import Console

log = logging.getLogger("viss_bridge.console")


def route(console: "Console", request: Request, path: str, lang: str) -> Response:
    from viss_bridge.console.accounts import SESSION_HOURS
    from viss_bridge.console.web import LOGIN_COOKIE, PREFIX

    if path == "/logout":
        session = console.session_of(request)
        if request.method != "POST" or session is None or not secrets.compare_digest(
                request.form.get("csrf", ""), session.csrf):
            return Response(status=303, headers={"Location": f"{PREFIX}/"})
        log.info("console logout", extra={"account": session.account.name})
        return console.end_session(request)
    if path == "/link":
        token = request.args.get("token", "")
        account = console.accounts.use_link(token) if token else None
        if account is None:
            log.warning("console login link refused", extra={"remote_addr": request.remote_addr})
            return _form(console, request, lang, "This login link is not valid (used, expired or unknown).", 403)
        return console.start_session(request, account, "/")
    # /login
    if request.method == "GET":
        return _form(console, request, lang)
    try:
        expected = console.login_signer.unsign(request.cookies.get(LOGIN_COOKIE, ""), max_age=SESSION_HOURS * 3600).decode()
    except BadSignature:
        expected = ""
    if not expected or not secrets.compare_digest(request.form.get("csrf", ""), expected):
        return _form(console, request, lang, "The form has expired or did not come from this console; "
                                             "open the page again.", 403)
    target = request.form.get("next", "/")
    address = request.remote_addr or "-"
    if request.form.get("method") == "certificate":
        account = _certificate_account(console, request)
        if account is None:
            log.warning("console certificate login refused", extra={"remote_addr": address})
            return _form(console, request, lang, "Wrong account or password.", 401)
        return console.start_session(request, account, target)
    name = request.form.get("account", "").strip()[:64]
    password = request.form.get("password", "")
    if console.accounts.refused_for(name, address):
        console.accounts.note_failure(name, address)
        log.warning("console login refused: too many failed logins", extra={"account": name, "remote_addr": address})
        return _form(console, request, lang, "Too many failed logins; try again in 15 minutes.", 429)
    account = console.accounts.check_password(name, password) if name and password else None
    if account is None:
        console.accounts.note_failure(name, address)
        log.warning("console login failed", extra={"account": name, "remote_addr": address})
        return _form(console, request, lang, "Wrong account or password.", 401)
    console.accounts.clear_failures(name)
    return console.start_session(request, account, target)


def _certificate_account(console: "Console", request: Request):  # type: ignore[no-untyped-def]
    """The account mapped to the TLS client certificate the server verified (never a header from anyone)."""
    identity = request.environ.get(IDENTITY_ENV)
    certificate = getattr(identity, "certificate", None)
    if certificate is None:
        return None
    return console.accounts.for_certificate(certificate.fingerprint)


def _form(console: "Console", request: Request, lang: str, error: str = "", status: int = 200) -> Response:
    from viss_bridge.console.web import LOGIN_COOKIE, PREFIX, safe_next

    token = secrets.token_urlsafe(24)
    response = console.render("login.html", request, lang, status=status, error=error, csrf=token,
                              next=safe_next(request.values.get("next", "/")),
                              certificate=_certificate_account(console, request) is not None)
    response.set_cookie(LOGIN_COOKIE, console.login_signer.sign(token).decode(), path=PREFIX, httponly=True,
                        samesite="Strict", secure=request.scheme == "https")
    return response
