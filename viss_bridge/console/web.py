"""The console's WSGI application: login, roles, CSRF, language, security headers, one table of pages.

Server-rendered with Jinja2 (autoescape on), request parsing by Werkzeug (size-limited forms and
uploads). No page shows data without a session; every page names the one role that may open it,
so the role check exists once (:meth:`Console.handle`) and a test can walk every page x role.
Nothing here runs script in the browser: the Content-Security-Policy forbids inline script and
style, the CSS is served by the console itself.
"""

from __future__ import annotations

import functools
import logging
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable
from urllib.parse import quote

import jinja2
from itsdangerous import BadSignature, TimestampSigner
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge
from werkzeug.wrappers import Request, Response

from viss_bridge.console.accounts import SESSION_HOURS, Account, AccountStore, Session
from viss_bridge.console.i18n import DEFAULT, LANGUAGES, translator

log = logging.getLogger("viss_bridge.console")

PREFIX = "/console"
SESSION_COOKIE = "vb_console"
LOGIN_COOKIE = "vb_console_login"  # CSRF token of the login form (before a session exists)
LANG_COOKIE = "vb_console_lang"
MAX_UPLOAD_BYTES = 8 * 1024 * 1024  # evidence containers; bigger uploads get 413 before they are read
MAX_FORM_BYTES = 64 * 1024

CSP = ("default-src 'self'; script-src 'none'; style-src 'self'; img-src 'self' data:; object-src 'none'; "
       "base-uri 'none'; form-action 'self'; frame-ancestors 'none'")

Handler = Callable[["PageContext"], Response]


def _unavailable() -> tuple[type[Exception], ...]:
    from viss_bridge.access.registry import AccessStoreUnavailable
    from viss_bridge.catalog.store import StoreUnavailable
    from viss_bridge.msglog.store import LogUnavailable

    return (AccessStoreUnavailable, StoreUnavailable, LogUnavailable)


UNAVAILABLE = _unavailable()


@dataclass(frozen=True)
class Page:
    """One console page: its path below /console, the role that may open it, and its handler."""

    path: str
    role: str
    handler: Handler
    methods: tuple[str, ...] = ("GET",)
    title: str = ""  # shown in the menu when set
    group: str = ""


@dataclass
class PageContext:
    """What a page handler gets: the request, the signed-in session, the node, and a renderer."""

    request: Request
    session: Session
    node: Any
    console: "Console"
    lang: str

    @property
    def account(self) -> Account:
        return self.session.account

    @property
    def form(self) -> Any:
        return self.request.form

    @property
    def args(self) -> Any:
        return self.request.args

    def render(self, template: str, status: int = 200, **values: Any) -> Response:
        return self.console.render(template, self.request, self.lang, session=self.session, status=status, **values)

    def redirect(self, path: str, **query: str) -> Response:
        target = PREFIX + path + ("?" + "&".join(f"{k}={quote(v, safe='')}" for k, v in query.items()) if query else "")
        return Response(status=303, headers={"Location": target})


@dataclass
class Console:
    """The console mounted at /console of a bridge node (``node``: the server's BridgeApp, duck-typed)."""

    node: Any
    pages: dict[str, Page] = field(default_factory=dict)

    def __post_init__(self) -> None:
        settings = self.node.settings
        self.accounts = AccountStore(self.node.engine)
        from viss_bridge.console.jobs import VerifyJobs

        self.jobs = VerifyJobs(self.node.engine)
        self.accounts.create_schema()  # with the jobs table: the same metadata
        secret = node_secret(settings.console_secret_path)
        self.signer = TimestampSigner(secret, salt="viss-bridge console session")
        # the login form's CSRF cookie: another salt, so it can never pass for a session cookie
        self.login_signer = TimestampSigner(secret, salt="viss-bridge console login form")
        self.templates = jinja2.Environment(loader=jinja2.PackageLoader("viss_bridge.console", "templates"),
                                            autoescape=True, undefined=jinja2.StrictUndefined,
                                            trim_blocks=True, lstrip_blocks=True)
        self.static = Path(__file__).parent / "static"
        from viss_bridge.console import pages  # noqa: F401 - the page modules register themselves

        for page in pages.all_pages():
            self.pages[page.path] = page

    @functools.cached_property
    def log_store(self) -> Any:
        """A read-only view of the node's message log (thread-local connections inside), for the pages."""
        from viss_bridge.msglog.store import LogStore

        return LogStore(self.node.settings.message_log_url, read_only=True)

    # -- WSGI -------------------------------------------------------------------------------------

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        request = Request(environ)
        request.max_content_length = MAX_UPLOAD_BYTES
        request.max_form_memory_size = MAX_FORM_BYTES
        try:
            response = self.handle(request)
        except RequestEntityTooLarge:
            response = Response(f"upload larger than {MAX_UPLOAD_BYTES} bytes refused\n", status=413,
                                mimetype="text/plain")
        except HTTPException as exc:
            response = Response(exc.description or exc.name, status=exc.code or 400, mimetype="text/plain")
        secure_headers(response)
        return response(environ, start_response)

    def handle(self, request: Request) -> Response:
        path = request.path[len(PREFIX):] if request.path.startswith(PREFIX) else request.path
        path = path or "/"
        lang = self._lang(request)
        if path.startswith("/static/"):
            return self._static(path[len("/static/"):])
        from viss_bridge.console import login

        if path in ("/login", "/link", "/logout"):
            return login.route(self, request, path, lang)
        session = self.session_of(request)
        if session is None:
            next_path = path if request.method == "GET" else "/"
            return Response(status=303, headers={"Location": f"{PREFIX}/login?next={quote(next_path, safe='/')}"})
        if request.method == "POST" and not secrets.compare_digest(request.form.get("csrf", ""), session.csrf):
            log.warning("console form without a valid CSRF token", extra={"account": session.account.name,
                                                                          "path": path})
            return self.render("error.html", request, lang, session=session, status=403,
                               message="The form has expired or did not come from this console; open the page again.")
        if path == "/":
            return self.render("home.html", request, lang, session=session)
        page = self.pages.get(path.rstrip("/") or "/")
        if page is None:
            return self.render("error.html", request, lang, session=session, status=404, message="Not found")
        if request.method not in page.methods:
            return Response("method not allowed\n", status=405, headers={"Allow": ", ".join(page.methods)})
        if not session.account.has(page.role):
            log.warning("console page refused", extra={"account": session.account.name, "path": path,
                                                       "role": page.role})
            return self.render("error.html", request, lang, session=session, status=403,
                               message="You may not open this page.", role=page.role)
        try:
            response = page.handler(PageContext(request, session, self.node, self, lang))
        except UNAVAILABLE as exc:  # a store is down: say which, as /health would, instead of a bare 500
            log.error("console page could not read a store", extra={"path": path, "error": str(exc)})
            response = self.render("error.html", request, lang, session=session, status=503, message=str(exc))
        response.headers["Cache-Control"] = "no-store"
        return response

    # -- sessions ---------------------------------------------------------------------------------

    def session_of(self, request: Request) -> Session | None:
        cookie = request.cookies.get(SESSION_COOKIE)
        if not cookie:
            return None
        try:
            session_id = self.signer.unsign(cookie, max_age=SESSION_HOURS * 3600).decode()
        except BadSignature:
            return None
        return self.accounts.session(session_id)

    def start_session(self, request: Request, account: Account, target: str = "/") -> Response:
        session_id = self.accounts.open_session(account.name)
        response = Response(status=303, headers={"Location": PREFIX + safe_next(target)})
        response.set_cookie(SESSION_COOKIE, self.signer.sign(session_id).decode(), max_age=SESSION_HOURS * 3600,
                            path=PREFIX, httponly=True, samesite="Strict", secure=request.scheme == "https")
        response.delete_cookie(LOGIN_COOKIE, path=PREFIX)
        log.info("console login", extra={"account": account.name, "remote_addr": request.remote_addr})
        return response

    def end_session(self, request: Request) -> Response:
        cookie = request.cookies.get(SESSION_COOKIE, "")
        try:
            self.accounts.close_session(self.signer.unsign(cookie, max_age=SESSION_HOURS * 3600).decode())
        except BadSignature:
            pass
        response = Response(status=303, headers={"Location": f"{PREFIX}/login"})
        response.delete_cookie(SESSION_COOKIE, path=PREFIX, httponly=True, samesite="Strict")
        return response

    # -- rendering --------------------------------------------------------------------------------

    def menu(self, account: Account) -> list[Page]:
        return [p for p in self.pages.values() if p.title and account.has(p.role)]

    def render(self, template: str, request: Request, lang: str, *, session: Session | None = None,
               status: int = 200, **values: Any) -> Response:
        text = self.templates.get_template(template).render(
            _=translator(lang), lang=lang, languages=LANGUAGES, session=session, prefix=PREFIX,
            path=request.path, menu=self.menu(session.account) if session else [],
            csrf=session.csrf if session else values.pop("csrf", ""), **values)
        response = Response(text, status=status, mimetype="text/html")
        if request.args.get("lang") in LANGUAGES:
            response.set_cookie(LANG_COOKIE, lang, max_age=365 * 86400, path=PREFIX, httponly=True, samesite="Lax",
                                secure=request.scheme == "https")
        return response

    def _lang(self, request: Request) -> str:
        chosen = request.args.get("lang") or request.cookies.get(LANG_COOKIE) or ""
        if chosen in LANGUAGES:
            return chosen
        best = request.accept_languages.best_match(LANGUAGES)
        return best or DEFAULT

    def _static(self, name: str) -> Response:
        target = self.static / name
        if "/" in name or not target.is_file():
            return Response("not found\n", status=404, mimetype="text/plain")
        response = Response(target.read_bytes(), mimetype="text/css" if name.endswith(".css") else "image/png")
        response.headers["Cache-Control"] = "max-age=3600"
        return response


def safe_next(target: str) -> str:
    """A path inside the console to go to after login (never another site: ``//evil`` or ``https:``)."""
    if not target.startswith("/") or target.startswith("//") or "\\" in target or ":" in target.split("?")[0]:
        return "/"
    return target


def secure_headers(response: Response) -> None:
    response.headers["Content-Security-Policy"] = CSP
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["Cross-Origin-Opener-Policy"] = "same-origin"
    response.headers.setdefault("Cache-Control", "no-store")


def node_secret(path: Path) -> bytes:
    """The node's cookie-signing secret: read it, or make it once (O_EXCL, so parallel workers agree)."""
    import os

    try:
        data = path.read_bytes()
        if len(data) >= 32:
            return data
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another worker made it just now
        import time

        for _ in range(50):
            data = path.read_bytes()
            if len(data) >= 32:
                return data
            time.sleep(0.02)
        raise RuntimeError(f"{path}: console secret is empty or too short; delete it to make a new one") from None
    with os.fdopen(fd, "wb") as out:
        out.write(secrets.token_hex(32).encode())
    return path.read_bytes()
