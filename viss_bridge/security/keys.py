"""A signing identity (private key + certificate) loaded once and reused.

zeep's WS-Security re-reads PEM files on every call; the bridge signs every
message, so keys are read once, and an xmlsec key object is kept per thread
(xmlsec contexts and keys must not be shared between threads).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import xmlsec
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from viss_bridge.security.pki import Identity, PrivateKey, certificate_pem, load_certificate, load_private_key

if TYPE_CHECKING:
    # xmlsec's stubs name the transform type only privately (the runtime xmlsec.Transform class holds the
    # same objects as xmlsec.constants.Transform*).
    from xmlsec.constants import __Transform as XmlsecTransform


@dataclass
class SigningKey:
    certificate: x509.Certificate
    private_key: PrivateKey
    _local: threading.local = field(default_factory=threading.local, repr=False)

    @classmethod
    def from_files(cls, cert: str | Path, key: str | Path, password: bytes | None = None) -> "SigningKey":
        return cls(load_certificate(cert), load_private_key(key, password))

    @classmethod
    def from_identity(cls, identity: Identity) -> "SigningKey":
        return cls.from_files(identity.cert, identity.key)

    @property
    def certificate_pem(self) -> bytes:
        return certificate_pem(self.certificate)

    @property
    def certificate_der(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.DER)

    @property
    def signature_transform(self) -> XmlsecTransform:
        """RSA-SHA256 or ECDSA-SHA256: never SHA-1."""
        if isinstance(self.private_key, ec.EllipticCurvePrivateKey):
            return xmlsec.constants.TransformEcdsaSha256
        if isinstance(self.private_key, rsa.RSAPrivateKey):
            return xmlsec.constants.TransformRsaSha256
        raise TypeError("unsupported key type")

    def xmlsec_key(self) -> xmlsec.Key:
        key = getattr(self._local, "key", None)
        if key is None:
            pem = self.private_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                 serialization.NoEncryption())
            key = xmlsec.Key.from_memory(pem, xmlsec.constants.KeyDataFormatPem)
            self._local.key = key
        return key


def verification_key(cert: x509.Certificate) -> xmlsec.Key:
    return xmlsec.Key.from_memory(certificate_pem(cert), xmlsec.constants.KeyDataFormatCertPem)
