"""Certificates, private keys, the trust store, and the throw-away development PKI.

Production uses the agency's own keys and trust anchors, configured by path.
For the demo and tests, :func:`init_dev_pki` makes a complete small PKI
(root CA, node signing, time-stamping, TLS server, demo consumers and
providers) under ``certs/``; those keys are generated on the machine and never
committed.

A certificate's client identity is its subject CN, written as the X-Road
identifier (``LV/GOV/90000069281/VID-EDS``), so a verified signature or TLS
peer maps to exactly one client.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey

# Demo identities: consumers match viss_bridge/demo/seed.py, providers the demo owners.
DEMO_CONSUMERS = ("LV/GOV/90000069281/VID-EDS", "LV/GOV/90000022399/IZM-VIIS", "LV/GOV/90000056357/RIGA-DOME",
                  "LV/COM/40003000001/BANK-KYC")
DEMO_PROVIDERS = ("LV/GOV/90000100015/FPR", "LV/GOV/90000300036/VAR")


class CertificateError(ValueError):
    """A certificate that is not trusted for the use asked, with the reason."""


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def load_certificate(path: str | Path) -> x509.Certificate:
    data = Path(path).read_bytes()
    try:
        return x509.load_pem_x509_certificate(data)
    except ValueError:
        return x509.load_der_x509_certificate(data)


def load_certificates(path: str | Path) -> list[x509.Certificate]:
    """Every PEM certificate in a file (a bundle)."""
    return x509.load_pem_x509_certificates(Path(path).read_bytes())


def load_private_key(path: str | Path, password: bytes | None = None) -> PrivateKey:
    key = serialization.load_pem_private_key(Path(path).read_bytes(), password=password)
    if not isinstance(key, (rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey)):
        raise ValueError(f"{path}: only RSA and EC keys are supported")
    return key


def certificate_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def subject_cn(cert: x509.Certificate) -> str | None:
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(names[0].value) if names else None


def fingerprint(cert: x509.Certificate) -> str:
    return cert.fingerprint(hashes.SHA256()).hex()


@dataclass
class TrustStore:
    """Trust anchors (CAs) plus intermediates; answers "is this end-entity certificate trusted?".

    The check is deliberately strict: the certificate must chain to an anchor
    by signature, every certificate on the path must be within its validity
    period, CA certificates must be marked as CAs, and the end entity must not be one.
    """

    anchors: list[x509.Certificate]
    intermediates: list[x509.Certificate] = field(default_factory=list)

    @classmethod
    def from_files(cls, *paths: str | Path) -> "TrustStore":
        anchors: list[x509.Certificate] = []
        for path in paths:
            anchors.extend(load_certificates(path))
        if not anchors:
            raise CertificateError("the trust store is empty")
        return cls(anchors)

    def validate(self, cert: x509.Certificate, at: dt.datetime | None = None,
                 extra_chain: Iterable[x509.Certificate] = ()) -> list[x509.Certificate]:
        """Return the chain (end entity first) or raise CertificateError saying why not."""
        at = at or _now()
        _check_period(cert, at)
        if _is_ca(cert):
            raise CertificateError(f"'{cert.subject.rfc4514_string()}' is a CA certificate, not an end entity")
        chain = [cert]
        pool = list(self.intermediates) + list(extra_chain)
        current = cert
        for _ in range(8):
            for anchor in self.anchors:
                if _issued_by(current, anchor):
                    _check_period(anchor, at)
                    chain.append(anchor)
                    return chain
            issuer = next((c for c in pool if _issued_by(current, c) and _is_ca(c)), None)
            if issuer is None:
                break
            _check_period(issuer, at)
            chain.append(issuer)
            current = issuer
        raise CertificateError(f"'{cert.subject.rfc4514_string()}' does not chain to a trusted CA")


def _issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    if cert.issuer != issuer.subject:
        return False
    try:
        cert.verify_directly_issued_by(issuer)
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False


def _check_period(cert: x509.Certificate, at: dt.datetime) -> None:
    if at < cert.not_valid_before_utc or at > cert.not_valid_after_utc:
        raise CertificateError(f"'{cert.subject.rfc4514_string()}' is not valid at {at.isoformat()} "
                               f"(valid {cert.not_valid_before_utc.isoformat()} to {cert.not_valid_after_utc.isoformat()})")


# -- development PKI ---------------------------------------------------------------


@dataclass(frozen=True)
class Identity:
    cert: Path
    key: Path


@dataclass(frozen=True)
class DevPki:
    folder: Path
    ca_cert: Path
    ca_key: Path
    node: Identity
    tsa: Identity
    tls: Identity
    consumers: dict[str, Identity]
    providers: dict[str, Identity]

    def identity(self, client_id: str) -> Identity:
        return self.consumers.get(client_id) or self.providers[client_id]


def _slug(identifier: str) -> str:
    return identifier.replace("/", "_")


def _new_key(kind: str) -> PrivateKey:
    return ec.generate_private_key(ec.SECP256R1()) if kind == "ec" else rsa.generate_private_key(65537, 2048)


def _write_key(path: Path, key: PrivateKey) -> None:
    data = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())
    path.write_bytes(data)
    os.chmod(path, 0o600)


def _name(common_name: str, organisation: str = "viss-bridge development PKI (not for production)") -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "LV"),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, organisation),
                      x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def issue_certificate(ca_cert: x509.Certificate, ca_key: PrivateKey, common_name: str, key: PrivateKey, *,
                      days: int = 365, usages: tuple[str, ...] = ("digital_signature",),
                      extended: tuple[x509.ObjectIdentifier, ...] = (), dns: tuple[str, ...] = (),
                      ips: tuple[str, ...] = (), not_before: dt.datetime | None = None) -> x509.Certificate:
    """Issue an end-entity certificate; exposed so tests can make expired or foreign ones."""
    start = not_before or (_now() - dt.timedelta(minutes=5))
    flags = {name: name in usages for name in ("digital_signature", "content_commitment", "key_encipherment",
                                                "data_encipherment", "key_agreement", "key_cert_sign", "crl_sign",
                                                "encipher_only", "decipher_only")}
    builder = (x509.CertificateBuilder().subject_name(_name(common_name)).issuer_name(ca_cert.subject)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(start).not_valid_after(start + dt.timedelta(days=days))
               .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
               .add_extension(x509.KeyUsage(**flags), critical=True)
               .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
               .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False))
    if extended:
        # RFC 3161 requires the timeStamping EKU to be the only one and critical.
        critical = ExtendedKeyUsageOID.TIME_STAMPING in extended
        builder = builder.add_extension(x509.ExtendedKeyUsage(list(extended)), critical=critical)
    if dns or ips:
        names: list[x509.GeneralName] = [x509.DNSName(d) for d in dns]
        names += [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    return builder.sign(ca_key, hashes.SHA256())


def _self_signed_ca(key: PrivateKey, common_name: str, days: int) -> x509.Certificate:
    start = _now() - dt.timedelta(minutes=5)
    name = _name(common_name)
    return (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(start)
            .not_valid_after(start + dt.timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                         crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256()))


def dev_pki_paths(folder: str | Path) -> DevPki:
    folder = Path(folder)

    def ident(name: str) -> Identity:
        return Identity(folder / f"{name}.pem", folder / f"{name}.key")

    return DevPki(folder=folder, ca_cert=folder / "ca.pem", ca_key=folder / "ca.key", node=ident("node-signing"),
                  tsa=ident("tsa"), tls=ident("tls-server"),
                  consumers={c: ident("consumer-" + _slug(c)) for c in DEMO_CONSUMERS},
                  providers={p: ident("provider-" + _slug(p)) for p in DEMO_PROVIDERS})


def init_dev_pki(folder: str | Path = "certs", *, force: bool = False) -> DevPki:
    """Create the development PKI under ``folder`` (idempotent unless ``force``)."""
    paths = dev_pki_paths(folder)
    if paths.ca_cert.exists() and paths.node.cert.exists() and not force:
        return paths
    paths.folder.mkdir(parents=True, exist_ok=True)
    os.chmod(paths.folder, 0o700)
    # EU validation policies (ETSI TS 119 312, EU DSS) stop accepting RSA below 3072 bits after 2026: the
    # root, the node signing key (seals, evidence, responses) and the TSA sign with ECDSA P-256.
    ca_key = _new_key("ec")
    ca = _self_signed_ca(ca_key, "viss-bridge development root CA", days=3650)
    _write_key(paths.ca_key, ca_key)
    paths.ca_cert.write_bytes(certificate_pem(ca))

    def make(identity: Identity, cn: str, kind: str = "rsa", **kwargs: object) -> None:
        key = _new_key(kind)
        cert = issue_certificate(ca, ca_key, cn, key, **kwargs)  # type: ignore[arg-type]
        _write_key(identity.key, key)
        identity.cert.write_bytes(certificate_pem(cert))

    make(paths.node, "viss-bridge node signing (node-1)", kind="ec", usages=("digital_signature", "content_commitment"),
         days=730)
    make(paths.tsa, "viss-bridge development TSA", kind="ec", usages=("digital_signature", "content_commitment"),
         extended=(ExtendedKeyUsageOID.TIME_STAMPING,), days=730)
    make(paths.tls, "localhost", usages=("digital_signature", "key_encipherment"),
         extended=(ExtendedKeyUsageOID.SERVER_AUTH,), dns=("localhost",), ips=("127.0.0.1", "::1"), days=365)
    for index, client in enumerate(DEMO_CONSUMERS):
        # One consumer signs with ECDSA P-256, the rest with RSA-2048: both must work everywhere.
        make(paths.consumers[client], client, kind="ec" if index == 1 else "rsa",
             usages=("digital_signature", "content_commitment"), extended=(ExtendedKeyUsageOID.CLIENT_AUTH,))
    for provider in DEMO_PROVIDERS:
        make(paths.providers[provider], provider, usages=("digital_signature", "content_commitment", "key_encipherment"),
             extended=(ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH))
    return paths
