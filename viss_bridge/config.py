"""Settings: one TOML file plus ``VISS_BRIDGE_*`` environment overrides.

One flat-ish settings object keeps every knob discoverable in one place; the
environment wins over the file so that containers and CI can change a value
without writing files. An unknown key or a wrong type is an error that names
the file and the key, never a silent default.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Mapping


class ConfigError(ValueError):
    """A settings file or environment variable that cannot be used."""


@dataclass
class Settings:
    """Everything a bridge node needs to run.

    The defaults run a single development node on loopback with SQLite under
    ``var/``; production sets ``database_url`` to PostgreSQL and a node id.
    """

    database_url: str = "sqlite:///var/viss-bridge.sqlite"
    catalog_dir: str = "catalog"
    # Legacy contracts (/legacy/<name>): mapping files + original WSDLs; default <catalog_dir>/legacy.
    legacy_dir: str = ""
    # Seconds between scheduled syncs of replicated legacy datasets (`viss-bridge sync --all`); 0: off.
    sync_interval: float = 0.0
    # VISS dialect (/viss): CA that consumer certificates chain to, the registered consumer certificates
    # (YAML: consumers: [{client, participant, cert}]), and optionally the node's key to sign replies with.
    # viss_freshness: older name of wss_max_age for /viss only (0, the default: use wss_max_age).
    viss_trust_ca: str = ""
    viss_consumers: str = ""
    viss_freshness: int = 0
    viss_signing_cert: str = ""
    viss_signing_key: str = ""
    host: str = "127.0.0.1"
    port: int = 8080
    workers: int = 2
    # Threads per worker process (requests served at once by one worker), how long an idle keep-alive
    # connection stays open, and how many connections one worker holds (idle ones cost no thread).
    worker_threads: int = 8
    keepalive_seconds: int = 5
    # Milliseconds a worker thread waits on its connection for the consumer's next request before handing
    # the connection back to the poller (serving.BridgeWorker.handle); 0: hand it back at once.
    keepalive_linger_ms: float = 5.0
    worker_connections: int = 200
    # Seconds within which a request's headers and body must have arrived (slow or lying clients get 408).
    request_read_timeout: float = 10.0
    node_id: str = "node-1"
    # X-Road identity of the bridge itself: instance and the member/subsystem
    # that provides every dataset service unless a manifest says otherwise.
    xroad_instance: str = "LV"
    provider: str = "LV/GOV/90000000000/VISSBRIDGE"
    max_message_bytes: int = 4 * 1024 * 1024
    # /xroad lookups read keys and write answers without Spyne (facade/xroad_fast.py); false: all through Spyne,
    # the way to rule the fast path out should an answer ever look different.
    xroad_fast_lookups: bool = True
    # Structure caps of every untrusted XML message (viss_bridge/xml.py): a flood
    # of attributes or elements inside the byte cap would stall a worker.
    max_xml_attributes: int = 256
    max_xml_elements: int = 50_000
    # Seconds between checks of the catalog folder for changed manifests.
    reload_interval: float = 2.0
    public_url: str = ""
    # Message log (docs/message-log.md). Empty log_database_url: the log lives in database_url.
    log_database_url: str = ""
    # The node's signing identity (seals, signed responses) and the trust anchors (CA bundle) for verifying.
    signing_cert: str = ""
    signing_key: str = ""
    trust_anchors: str = ""
    # Seal every N records or T milliseconds, whichever comes first.
    seal_every_records: int = 1000
    seal_interval_ms: int = 1000
    # RFC 3161 time-stamping of seals; past this many seconds of failure the bridge refuses requests.
    tsa_url: str = ""
    tsa_max_outage_seconds: float = 300.0
    # Endpoints whose responses the bridge signs with WS-Security ("xroad,catalog", "*" for all, "" for none).
    sign_responses: str = ""
    # Archives: records older than archive_after_days move to files under archive_dir; retention_days > 0
    # deletes archived records from the database once they are that old.
    archive_dir: str = "var/archive"
    archive_after_days: float = 30.0
    retention_days: float = 0.0
    log_level: str = "INFO"
    log_format: str = "json"
    # -- who is calling (docs/access.md) --
    # Development only: believe the client named in the message without a certificate.
    trust_client_header: bool = False
    # TLS terminated by the bridge: server certificate and key; setting them serves https.
    tls_certfile: str = ""
    tls_keyfile: str = ""
    # CA bundle that consumers' client certificates must chain to.
    tls_client_ca: str = ""
    # true: refuse the TLS handshake without a client certificate (then even ?wsdl needs one).
    tls_require_client_cert: bool = False
    # TLS terminated by a reverse proxy: the header carrying the client certificate
    # (e.g. X-SSL-Client-Cert with nginx $ssl_client_escaped_cert) and the proxies' addresses.
    proxy_cert_header: str = ""
    trusted_proxies: str = ""
    # CA bundle for WS-Security signatures (verified by viss_bridge.security).
    wss_trust_ca: str = ""
    # Every signed request (/viss, /xroad, ...): the most seconds since its Timestamp's Created (whatever its
    # Expires says; an Expires further than this after Created is refused), and the tolerated clock difference.
    # A message id is remembered (replay check) until Created + wss_max_age + wss_clock_skew.
    wss_max_age: int = 300
    wss_clock_skew: int = 60
    # Connections (comma-separated X-Road client ids) that /access treats as operators, acting for every
    # data owner. Empty (default): operator rights only from the local CLI, never from a caller's name.
    operator_clients: str = ""
    # -- the platform as a source (source.kind: platform; docs/rest.md) --
    # The connection this node reads the platform under: client certificate and key (PEM) for TLS, the CA
    # bundle that verifies the platform's server certificate (empty: the system's CAs; never unverified),
    # an optional bearer token, the default X-DAGR-Permission (a manifest's source.permission wins) and an
    # X-Road-Client header to send (only for a development platform that believes it; empty: none).
    platform_cert: str = ""
    platform_key: str = ""
    platform_ca: str = ""
    platform_token: str = field(default="", repr=False)
    platform_permission: str = ""
    platform_client: str = ""
    # The console's cookie-signing secret (random, made on first start, mode 0600, never committed).
    # Empty: beside an SQLite database_url (<name>-console.secret), else var/console.secret.
    console_secret_file: str = ""
    source_file: str | None = field(default=None, repr=False)

    @property
    def legacy_folder(self) -> Path:
        return Path(self.legacy_dir) if self.legacy_dir else Path(self.catalog_dir) / "legacy"

    @property
    def message_log_url(self) -> str:
        """Where the message log lives: ``log_database_url``, else next to or in ``database_url``.

        With an SQLite store the log gets its own file beside it (``<name>-msglog.sqlite``): the log
        commits with a full flush under its own lock, and the store's per-answer writes (use
        counts, tracker entries) must not queue behind it (measured: +14 % throughput, -36 % p99,
        benchmarks/RESULTS.md). On PostgreSQL the log's tables share the database.
        """
        if self.log_database_url:
            return self.log_database_url
        from sqlalchemy.engine import make_url

        url = make_url(self.database_url)
        if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
            path = Path(url.database)
            return url.set(database=str(path.with_name(f"{path.stem}-msglog{path.suffix or '.sqlite'}"))) \
                .render_as_string(hide_password=False)
        return self.database_url

    @property
    def console_secret_path(self) -> Path:
        """Where the console's cookie-signing secret is kept (see ``console_secret_file``)."""
        if self.console_secret_file:
            return Path(self.console_secret_file)
        from sqlalchemy.engine import make_url

        url = make_url(self.database_url)
        if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
            path = Path(url.database)
            return path.with_name(f"{path.stem}-console.secret")
        return Path("var/console.secret")

    @property
    def viss_max_age(self) -> int:
        """The /viss Timestamp max age: ``viss_freshness`` where an older settings file still sets it."""
        return self.viss_freshness or self.wss_max_age

    @property
    def base_url(self) -> str:
        """Address that WSDLs advertise; behind a proxy set ``public_url``."""
        scheme = "https" if self.tls_certfile else "http"
        return self.public_url.rstrip("/") or f"{scheme}://{self.host}:{self.port}"


_ENV_PREFIX = "VISS_BRIDGE_"


def _coerce(name: str, value: Any, target: type, origin: str) -> Any:
    """Convert a TOML or environment value to the field's type, or say why not."""
    try:
        if target is bool:
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text in ("1", "true", "yes", "on"):
                return True
            if text in ("0", "false", "no", "off"):
                return False
            raise ValueError(value)
        if target is int:
            if isinstance(value, bool):
                raise ValueError(value)
            return int(value)
        if target is float:
            return float(value)
        return str(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{origin}: field '{name}' must be {target.__name__}, got {value!r}") from None


def _field_types() -> dict[str, type]:
    hints = {"str": str, "int": int, "float": float, "bool": bool, "str | None": str}
    return {f.name: hints[str(f.type)] for f in fields(Settings) if f.name != "source_file"}


def load_settings(path: str | os.PathLike[str] | None = None,
                  environ: Mapping[str, str] | None = None,
                  **overrides: Any) -> Settings:
    """Read the TOML file (if any), then the environment, then explicit overrides.

    ``path`` defaults to ``$VISS_BRIDGE_CONFIG``. The TOML may put keys at the
    top level or under a ``[bridge]`` table.
    """
    environ = os.environ if environ is None else environ
    types = _field_types()
    values: dict[str, Any] = {}
    path = path or environ.get(_ENV_PREFIX + "CONFIG")
    if path:
        file_path = Path(path)
        try:
            raw = file_path.read_bytes()
        except OSError as exc:
            raise ConfigError(f"{file_path}: cannot read settings file: {exc.strerror}") from None
        try:
            data = tomllib.loads(raw.decode("utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{file_path}: {exc}") from None
        table = data.get("bridge", data)
        for key, value in table.items():
            if key == "bridge":
                continue
            line = _line_of(raw.decode("utf-8", "replace"), key)
            origin = f"{file_path}:{line}" if line else str(file_path)
            if key not in types:
                raise ConfigError(f"{origin}: unknown field '{key}'")
            values[key] = _coerce(key, value, types[key], origin)
        values["source_file"] = str(file_path)
    for name, target in types.items():
        env_name = _ENV_PREFIX + name.upper()
        if env_name in environ:
            values[name] = _coerce(name, environ[env_name], target, f"environment {env_name}")
    for name, value in overrides.items():
        if value is None:
            continue
        if name not in types:
            raise ConfigError(f"unknown setting '{name}'")
        values[name] = _coerce(name, value, types[name], "command line")
    settings = Settings(**values)
    _validate(settings)
    return settings


def _line_of(text: str, key: str) -> int | None:
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip().startswith(f"{key}") and "=" in line and line.split("=", 1)[0].strip() == key:
            return number
    return None


def _validate(settings: Settings) -> None:
    origin = settings.source_file or "settings"
    if settings.max_message_bytes < 1024:
        raise ConfigError(f"{origin}: field 'max_message_bytes' must be at least 1024")
    if settings.max_xml_attributes < 16 or settings.max_xml_elements < 100:
        raise ConfigError(f"{origin}: 'max_xml_attributes' must be at least 16 and 'max_xml_elements' at least 100")
    if bool(settings.tls_certfile) != bool(settings.tls_keyfile):
        raise ConfigError(f"{origin}: set both 'tls_certfile' and 'tls_keyfile' (or neither)")
    if settings.tls_require_client_cert and not settings.tls_client_ca:
        raise ConfigError(f"{origin}: 'tls_require_client_cert' needs 'tls_client_ca'")
    if settings.proxy_cert_header and not settings.trusted_proxies:
        raise ConfigError(f"{origin}: 'proxy_cert_header' needs 'trusted_proxies' (the proxies' addresses)")
    if settings.seal_every_records < 1 or settings.seal_interval_ms < 1:
        raise ConfigError(f"{origin}: fields 'seal_every_records' and 'seal_interval_ms' must be at least 1")
    if bool(settings.signing_cert) != bool(settings.signing_key):
        raise ConfigError(f"{origin}: set both 'signing_cert' and 'signing_key', or neither")
    if settings.wss_max_age < 1 or settings.wss_clock_skew < 0 or settings.viss_freshness < 0:
        raise ConfigError(f"{origin}: 'wss_max_age' must be at least 1, 'wss_clock_skew' and 'viss_freshness' "
                          f"at least 0")
    if bool(settings.platform_cert) != bool(settings.platform_key):
        raise ConfigError(f"{origin}: set both 'platform_cert' and 'platform_key' (or neither)")
    if settings.workers < 1:
        raise ConfigError(f"{origin}: field 'workers' must be at least 1")
    if not 0 <= settings.keepalive_linger_ms <= 100:  # longer, a thread waits on one consumer while others queue
        raise ConfigError(f"{origin}: field 'keepalive_linger_ms' must be between 0 and 100, "
                          f"got {settings.keepalive_linger_ms:g}")
    if not settings.provider.startswith(settings.xroad_instance + "/") or len(settings.provider.split("/")) not in (3, 4):
        raise ConfigError(
            f"{origin}: field 'provider' must be {settings.xroad_instance}/CLASS/CODE[/SUBSYSTEM], got {settings.provider!r}")


def replace(settings: Settings, **changes: Any) -> Settings:
    """A copy with some fields changed (used by ``demo`` and tests)."""
    return dataclasses.replace(settings, **changes)
