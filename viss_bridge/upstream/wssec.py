"""WS-Security on the provider leg: sign requests, verify signed responses with our own verifier.

This module is the only place the upstream package touches the security API
(``viss_bridge.security``: ``sign_envelope``, ``verify_envelope``,
``SigningKey.from_files``, ``TrustStore``).

zeep's own WS-Security plugin is not used: it signs with SHA-1 by default, adds
no Timestamp and verifies responses in a way that accepts signature wrapping.
Instead the transport signs the exact bytes it sends, and verifies the exact
bytes it receives, then gives zeep a fresh envelope holding only the verified
Body, so what zeep processes is what was signed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from lxml import etree

from viss_bridge.catalog.legacy_source import LegacySoapSource
from viss_bridge.upstream import errors
from viss_bridge.upstream.errors import UpstreamError
from viss_bridge.xml import NS_SOAP11, XmlRejected, parse_untrusted
from viss_bridge.namespaces import NS_WSSE as NS_WSSE



def provider_security_hooks(source: LegacySoapSource, base_dir: Path
                            ) -> tuple[Callable[[bytes], bytes] | None, Callable[[bytes], bytes] | None]:
    name = source.provider
    from viss_bridge.security import pki, wssecurity
    from viss_bridge.security.keys import SigningKey

    security = source.security

    sign: Callable[[bytes], bytes] | None = None
    if security.sign is not None:
        try:
            key = SigningKey.from_files(base_dir / security.sign.cert, base_dir / security.sign.key)
        except Exception as exc:
            raise UpstreamError(errors.PROVIDER_CONFIG, name, f"signing key of provider {name}: {exc}",
                                called=False) from exc

        def sign(message: bytes) -> bytes:
            envelope = parse_untrusted(message)
            signed = wssecurity.sign_envelope(envelope, key, soap_ns=NS_SOAP11)
            return etree.tostring(signed, xml_declaration=True, encoding="UTF-8")

    verify: Callable[[bytes], bytes] | None = None
    if security.trusted or security.require_signed_response:
        if not security.trusted:
            raise UpstreamError(errors.PROVIDER_CONFIG, name,
                                f"provider {name} requires signed responses but no trusted certificates are configured",
                                called=False)
        try:
            trust = pki.TrustStore.from_files(*[base_dir / path for path in security.trusted])
            pinned = {pki.fingerprint(cert) for path in security.pinned for cert in pki.load_certificates(base_dir / path)}
        except Exception as exc:
            raise UpstreamError(errors.PROVIDER_CONFIG, name, f"trusted certificates of provider {name}: {exc}",
                                called=False) from exc

        def verify(content: bytes) -> bytes:
            try:
                envelope = parse_untrusted(content)
            except XmlRejected as exc:
                raise UpstreamError(errors.INVALID_RESPONSE, name, f"provider {name}: {exc}") from exc
            header = envelope.find(f"{{{NS_SOAP11}}}Header")
            signed = header is not None and header.find(f"{{{NS_WSSE}}}Security") is not None
            fault = envelope.find(f"{{{NS_SOAP11}}}Body/{{{NS_SOAP11}}}Fault")
            if not signed:
                if fault is not None and not security.require_signed_response:
                    return content
                raise UpstreamError(errors.PROVIDER_SECURITY, name, f"provider {name} sent an unsigned response")
            try:
                verified = wssecurity.verify_envelope(envelope, trust, soap_ns=NS_SOAP11)
            except Exception as exc:  # SecurityError subclasses carry .reason
                reason = getattr(exc, "reason", None) or str(exc)
                raise UpstreamError(errors.PROVIDER_SECURITY, name,
                                    f"the response signature of provider {name} is not acceptable: {reason}") from exc
            if pinned and pki.fingerprint(verified.certificate) not in pinned:
                raise UpstreamError(errors.PROVIDER_SECURITY, name,
                                    f"the response of provider {name} is signed by a certificate that is not pinned "
                                    f"for it ({verified.certificate.subject.rfc4514_string()})")
            clean = etree.Element(f"{{{NS_SOAP11}}}Envelope", nsmap={"soap": NS_SOAP11})
            clean.append(verified.body)
            return etree.tostring(clean, xml_declaration=True, encoding="UTF-8")

    return sign, verify
