"""Who is calling, proven: certificates, authenticated identities and the header check.

A caller proves its identity with an X.509 certificate, by one of:

- ``tls``: the bridge terminates TLS and the client presented a certificate
  that chains to the configured CA (the gunicorn worker puts the peer
  certificate into the WSGI environ under :data:`PEER_CERT_ENV`);
- ``proxy``: a reverse proxy in front terminated TLS and forwarded the client
  certificate in a configured header; honoured only from configured proxy
  addresses;
- ``ws-security``: the message carries a WS-Security signature verified against
  the trust store (the facade does this; it needs the parsed envelope).

The certificate is then looked up by its SHA-256 fingerprint among the
registered connections. The client named in the message must be that
connection: a different client is ``Client.InconsistentHeaders``, an unknown
certificate ``Server.ServerProxy.AccessDenied``. Only with
``trust_client_header = true`` (development) is a message's client header
believed without a certificate.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import logging
import re
import time
from dataclasses import dataclass
from typing import Any, Callable
from urllib.parse import unquote

from cryptography import x509
from cryptography.hazmat.primitives import serialization

log = logging.getLogger(__name__)

PEER_CERT_ENV = "viss_bridge.peer_cert_der"  # DER bytes of the TLS client certificate (set by the worker)
IDENTITY_ENV = "viss_bridge.identity"  # the Identity the server established for this request

TLS, PROXY, WS_SECURITY, HEADER = "tls", "proxy", "ws-security", "header"

# X-Road message protocol 4.0, section 2.7 (Identifier Character Restrictions): every part of an
# identifier uses only these characters. "/" is not among them, so the joined form
# INSTANCE/CLASS/CODE[/SUBSYSTEM] of checked parts is a one-to-one key of the structured identifier:
# no part can carry a separator and join into another client's identity.
IDENTIFIER_PART = re.compile(r"[A-Za-z0-9'()+,\-.=?]{1,255}")
# serviceCode and serviceVersion may also use "_": the bridge's serviceCodes are its dataset names
# (manifest ``dataset``, ``[a-z0-9_]``), which are not X-Road's to choose. "_" is no separator.
SERVICE_PART = re.compile(r"[A-Za-z0-9'()+,\-.=?_]{1,255}")
CLIENT_PARTS = ("xRoadInstance", "memberClass", "memberCode", "subsystemCode")


class InvalidIdentifier(ValueError):
    """An X-Road identifier with a missing part or a character X-Road does not allow."""


def check_part(name: str, value: str, service: bool = False) -> str:
    """``value`` if it is a valid identifier part, else InvalidIdentifier naming the part."""
    pattern = SERVICE_PART if service else IDENTIFIER_PART
    if not pattern.fullmatch(value):
        allowed = "A-Z a-z 0-9 ' ( ) + , - . = ?" + (" _" if service else "")
        raise InvalidIdentifier(f"{name} '{value}' is not a valid X-Road identifier part (allowed characters: "
                                f"{allowed}, 1 to 255 of them)")
    return value


def client_key(text: str) -> str:
    """The registry key of a client identifier ``INSTANCE/CLASS/CODE[/SUBSYSTEM]``: each part checked,
    joined again. Raises InvalidIdentifier; connections, permissions and requests are keyed by it."""
    parts = text.strip().split("/")
    if len(parts) not in (3, 4):
        raise InvalidIdentifier(f"'{text}' is not INSTANCE/CLASS/CODE[/SUBSYSTEM]")
    for name, value in zip(CLIENT_PARTS, parts):
        check_part(name, value)
    return "/".join(parts)


class CertificateError(ValueError):
    """Bytes that are not a usable X.509 certificate."""


@dataclass(frozen=True)
class CertificateInfo:
    fingerprint: str  # SHA-256 of the DER encoding, lowercase hex
    subject: str
    issuer: str
    serial: str
    not_before: dt.datetime
    not_after: dt.datetime
    pem: str

    @classmethod
    def from_x509(cls, cert: x509.Certificate) -> "CertificateInfo":
        der = cert.public_bytes(serialization.Encoding.DER)
        return cls(fingerprint=hashlib.sha256(der).hexdigest(), subject=cert.subject.rfc4514_string(),
                   issuer=cert.issuer.rfc4514_string(), serial=format(cert.serial_number, "x"),
                   not_before=cert.not_valid_before_utc, not_after=cert.not_valid_after_utc,
                   pem=cert.public_bytes(serialization.Encoding.PEM).decode())

    @classmethod
    def from_der(cls, der: bytes) -> "CertificateInfo":
        try:
            return cls.from_x509(x509.load_der_x509_certificate(der))
        except ValueError as exc:
            raise CertificateError(f"not a DER certificate: {exc}") from None

    @classmethod
    def from_pem(cls, pem: bytes | str) -> "CertificateInfo":
        data = pem.encode() if isinstance(pem, str) else pem
        try:
            return cls.from_x509(x509.load_pem_x509_certificate(data))
        except ValueError as exc:
            raise CertificateError(f"not a PEM certificate: {exc}") from None

    def valid_at(self, when: dt.datetime) -> bool:
        return self.not_before <= when <= self.not_after


def certificate_from_header(value: str) -> CertificateInfo:
    """A certificate forwarded by a proxy: URL-escaped PEM (nginx ``$ssl_client_escaped_cert``),
    PEM with its newlines replaced by spaces (Apache, some load balancers) or plain base64 DER."""
    text = unquote(value.strip()) if "%" in value else value.strip()
    if "-----BEGIN CERTIFICATE-----" in text:
        body = text.split("-----BEGIN CERTIFICATE-----", 1)[1].split("-----END CERTIFICATE-----", 1)[0]
        body = "".join(body.split())
        pem = "-----BEGIN CERTIFICATE-----\n" + "\n".join(body[i:i + 64] for i in range(0, len(body), 64)) \
            + "\n-----END CERTIFICATE-----\n"
        return CertificateInfo.from_pem(pem)
    import base64
    import binascii

    try:
        return CertificateInfo.from_der(base64.b64decode("".join(text.split()), validate=True))
    except (binascii.Error, ValueError) as exc:
        raise CertificateError(f"the forwarded certificate header is neither PEM nor base64 DER: {exc}") from None


@dataclass(frozen=True)
class Identity:
    """What the transport or the message proved about the caller."""

    method: str  # tls | proxy | ws-security
    certificate: CertificateInfo
    client_id: str | None  # the registered connection holding this certificate; None: unknown certificate


@dataclass(frozen=True)
class Caller:
    """The client a request is served for, after the header check."""

    client_id: str | None  # None: anonymous (open data only)
    authenticated_by: str | None  # tls | proxy | ws-security | header (development) | None
    certificate: str | None = None  # fingerprint

    @property
    def anonymous(self) -> bool:
        return self.client_id is None


class IdentityProblem(Exception):
    """The caller's proof and the message disagree. ``kind``: ``inconsistent``, ``denied`` or ``invalid``
    (the message's client is no valid X-Road identifier)."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


def parse_networks(text: str) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    networks = []
    for part in (p.strip() for p in text.replace(";", ",").split(",")):
        if part:
            networks.append(ipaddress.ip_network(part, strict=False))
    return networks


class Authenticator:
    """Turns a request's transport evidence into an :class:`Identity` (or None)."""

    def __init__(self, lookup: Callable[[str], str | None], *, trust_client_header: bool = False,
                 proxy_cert_header: str = "", trusted_proxies: str = "", wss_trust_ca: str = "",
                 wss_max_age: int = 300, wss_clock_skew: int = 60, cache_seconds: float = 0.0) -> None:
        self._lookup = lookup
        self.cache_seconds = cache_seconds
        self._cache: dict[str, tuple[float, str | None]] = {}
        self.wss_trust_ca = wss_trust_ca
        # WS-Security Timestamp freshness (seconds) for signed messages (settings wss_max_age, wss_clock_skew).
        self.wss_max_age = wss_max_age
        self.wss_clock_skew = wss_clock_skew
        self.trust_client_header = trust_client_header
        self.proxy_env_key = ("HTTP_" + proxy_cert_header.upper().replace("-", "_")) if proxy_cert_header else ""
        self.trusted_proxies = parse_networks(trusted_proxies)

    def identify(self, environ: dict[str, Any]) -> Identity | None:
        """The identity proven by TLS or a trusted proxy; None if the transport proved nothing."""
        der = environ.get(PEER_CERT_ENV)
        if der:
            return self.from_certificate(CertificateInfo.from_der(der), TLS)
        if self.proxy_env_key and environ.get(self.proxy_env_key):
            if not self._from_trusted_proxy(environ.get("REMOTE_ADDR")):
                log.warning("ignoring a forwarded client certificate from an untrusted address",
                            extra={"remote_addr": environ.get("REMOTE_ADDR")})
                return None
            return self.from_certificate(certificate_from_header(environ[self.proxy_env_key]), PROXY)
        return None

    def _from_trusted_proxy(self, address: str | None) -> bool:
        if not address or not self.trusted_proxies:
            return False
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in network for network in self.trusted_proxies)

    def lookup(self, fingerprint: str) -> str | None:
        """The connection holding a certificate; remembered for ``cache_seconds`` (a removal takes that long)."""
        if self.cache_seconds <= 0:
            return self._lookup(fingerprint)
        now = time.monotonic()
        hit = self._cache.get(fingerprint)
        if hit is not None and now - hit[0] < self.cache_seconds:
            return hit[1]
        client = self._lookup(fingerprint)
        if client is not None:  # unknown certificates are looked up again: a new registration works at once
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[fingerprint] = (now, client)
        return client

    def from_certificate(self, certificate: CertificateInfo, method: str) -> Identity:
        return Identity(method=method, certificate=certificate, client_id=self.lookup(certificate.fingerprint))

    def caller(self, identity: Identity | None, claimed: str | None) -> Caller:
        """Check the message's client against the proven identity; raise IdentityProblem if they disagree."""
        if claimed is not None:
            try:
                claimed = client_key(claimed)
            except InvalidIdentifier as exc:
                raise IdentityProblem("invalid", f"The client in the message is invalid: {exc}") from None
        if identity is not None:
            fingerprint = identity.certificate.fingerprint
            if identity.client_id is None:
                raise IdentityProblem("denied", f"The certificate presented ({identity.method}, subject "
                                      f"{identity.certificate.subject}, SHA-256 {fingerprint}) is not registered "
                                      "to any connection")
            now = dt.datetime.now(dt.timezone.utc)
            if not identity.certificate.valid_at(now):
                raise IdentityProblem("denied", f"The certificate presented (SHA-256 {fingerprint}) is not valid now")
            if claimed is not None and claimed != identity.client_id:
                raise IdentityProblem("inconsistent", f"The client in the message ({claimed}) is not the "
                                      f"authenticated connection ({identity.client_id})")
            return Caller(identity.client_id, identity.method, fingerprint)
        if self.trust_client_header and claimed:
            return Caller(claimed, HEADER)
        return Caller(None, None)
