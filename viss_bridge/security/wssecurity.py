"""WS-Security 1.1 X.509 signatures on SOAP envelopes, signed and verified safely.

Signing adds to the SOAP header a ``wsse:Security`` block holding the
signer's certificate (BinarySecurityToken), a ``wsu:Timestamp`` and a
``ds:Signature`` over the Body and the Timestamp (exclusive c14n, SHA-256).

Verification is written against signature wrapping rather than trusting
xmlsec's "some reference verified": the Body that will be processed is the
envelope's own Body (found by position, not by Id); it must carry an Id that
the signature references; every Id in the document must be unique; only
allow-listed algorithms and transforms pass; the certificate must chain to
the trust store; and the caller gets back that very Body element from the
verified tree, never a re-parse.
"""

from __future__ import annotations

import base64
import datetime as dt
import uuid
from dataclasses import dataclass

import xmlsec
from cryptography import x509
from lxml import etree

from viss_bridge.security.keys import SigningKey, verification_key
from viss_bridge.security.pki import CertificateError, TrustStore
from viss_bridge.security.xmldsig import (NS_DS, CertificateUntrusted, SecurityError, SignatureInvalid,
                                          SignatureMissing, TimestampInvalid, TimestampMissing, check_signed_info,
                                          restrict_context)
from viss_bridge.namespaces import (NS_WSSE as NS_WSSE, NS_WSU as NS_WSU, NS_SOAP11 as NS_SOAP11,
                                    NS_SOAP12 as NS_SOAP12)

X509V3 = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-x509-token-profile-1.0#X509v3"
BASE64 = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-soap-message-security-1.0#Base64Binary"

__all__ = ["CertificateUntrusted", "Freshness", "SecurityError", "SignatureInvalid", "SignatureMissing", "SigningKey",
           "TimestampInvalid", "TimestampMissing", "TrustStore", "VerifiedMessage", "sign_envelope", "verify_envelope"]


@dataclass(frozen=True)
class Freshness:
    """The one rule for how long a signed message is acceptable, and so how long its id must be remembered.

    A message is acceptable iff its ``Created`` is not later than now + ``clock_skew``, it is at
    most ``max_age`` seconds old counted from ``Created`` (whatever ``Expires`` says: a sender's
    far ``Expires`` must not stretch the replay window), and its ``Expires``, if present, has not
    passed (give or take the skew) and is not later than ``Created + max_age + clock_skew``.
    :meth:`remember_until` is the last moment such a message could still be accepted: a replay
    table that keeps each id until then catches every replay the rule would otherwise let in.
    """

    max_age: int = 300
    clock_skew: int = 60

    def check(self, created: dt.datetime | None, expires: dt.datetime | None, now: dt.datetime) -> None:
        """Raise TimestampInvalid unless a message with this Timestamp is acceptable at ``now``."""
        skew = dt.timedelta(seconds=self.clock_skew)
        age = dt.timedelta(seconds=self.max_age)
        if created is None:
            raise TimestampInvalid("the Timestamp has no Created time")
        if created - skew > now:
            raise TimestampInvalid(f"the Timestamp was created in the future ({_utc(created)})")
        if expires is not None and expires < created:
            raise TimestampInvalid(f"the Timestamp expires ({_utc(expires)}) before it was created ({_utc(created)})")
        if expires is not None and expires > created + age + skew:
            raise TimestampInvalid(f"Expires beyond the allowed maximum: {_utc(expires)} is more than {self.max_age} s "
                                   f"(+{self.clock_skew} s clock skew) after Created {_utc(created)}")
        if expires is not None and expires + skew < now:
            raise TimestampInvalid(f"the message expired at {_utc(expires)}")
        if now - created > age:
            raise TimestampInvalid(f"the message was created at {_utc(created)}, more than {self.max_age} s ago")

    def remember_until(self, created: dt.datetime) -> dt.datetime:
        """The last moment a message created at ``created`` could be accepted (keep its id at least that long)."""
        return created + dt.timedelta(seconds=self.max_age + self.clock_skew)


@dataclass(frozen=True)
class VerifiedMessage:
    certificate: x509.Certificate
    body: etree._Element
    signed_ids: frozenset[str]
    created: dt.datetime | None
    expires: dt.datetime | None
    signature_value: bytes


def _utc(moment: dt.datetime) -> str:
    return moment.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _parse_time(text: str | None) -> dt.datetime | None:
    if not text:
        return None
    try:
        value = dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise TimestampInvalid(f"timestamp '{text}' is not an xs:dateTime") from None
    return value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)


def _ensure_id(element: etree._Element, prefix: str) -> str:
    existing = element.get(f"{{{NS_WSU}}}Id")
    if existing:
        return existing
    value = f"{prefix}-{uuid.uuid4().hex}"
    element.set(f"{{{NS_WSU}}}Id", value)
    return value


def sign_envelope(envelope: etree._Element, key: SigningKey, *, soap_ns: str = NS_SOAP11, ttl_seconds: int = 300,
                  sign_headers: tuple[str, ...] = (), now: dt.datetime | None = None,
                  with_timestamp: bool = True) -> etree._Element:
    """Sign ``envelope`` in place (Body, Timestamp and the named header elements, by Clark tag).

    ``with_timestamp=False`` leaves the Timestamp out (only to show receivers refuse such messages).
    """
    header = envelope.find(f"{{{soap_ns}}}Header")
    if header is None:
        header = etree.Element(f"{{{soap_ns}}}Header")
        envelope.insert(0, header)
    body = envelope.find(f"{{{soap_ns}}}Body")
    if body is None:
        raise ValueError("the envelope has no Body")
    security = etree.SubElement(header, f"{{{NS_WSSE}}}Security", nsmap={"wsse": NS_WSSE, "wsu": NS_WSU})
    security.set(f"{{{soap_ns}}}mustUnderstand", "1" if soap_ns == NS_SOAP11 else "true")
    token = etree.SubElement(security, f"{{{NS_WSSE}}}BinarySecurityToken", ValueType=X509V3, EncodingType=BASE64)
    token_id = _ensure_id(token, "X509")
    token.text = base64.b64encode(key.certificate_der).decode()
    created = (now or dt.datetime.now(dt.timezone.utc))
    targets = [body]
    if with_timestamp:
        timestamp = etree.SubElement(security, f"{{{NS_WSU}}}Timestamp")
        etree.SubElement(timestamp, f"{{{NS_WSU}}}Created").text = _utc(created)
        etree.SubElement(timestamp, f"{{{NS_WSU}}}Expires").text = _utc(created + dt.timedelta(seconds=ttl_seconds))
        targets.append(timestamp)
    targets += [e for tag in sign_headers for e in header.findall(tag)]
    ids = [_ensure_id(body, "Body")] + [_ensure_id(e, "TS" if e.tag == f"{{{NS_WSU}}}Timestamp" else "H")
                                        for e in targets[1:]]

    signature = xmlsec.template.create(envelope, xmlsec.constants.TransformExclC14N, key.signature_transform, ns="ds")
    security.append(signature)
    for target_id in ids:
        reference = xmlsec.template.add_reference(signature, xmlsec.constants.TransformSha256, uri=f"#{target_id}")
        xmlsec.template.add_transform(reference, xmlsec.constants.TransformExclC14N)
    key_info = xmlsec.template.ensure_key_info(signature)
    token_ref = etree.SubElement(key_info, f"{{{NS_WSSE}}}SecurityTokenReference")
    etree.SubElement(token_ref, f"{{{NS_WSSE}}}Reference", URI=f"#{token_id}", ValueType=X509V3)
    ctx = xmlsec.SignatureContext()
    ctx.key = key.xmlsec_key()
    for element in envelope.iter():
        if isinstance(element.tag, str) and element.get(f"{{{NS_WSU}}}Id"):
            ctx.register_id(element, "Id", NS_WSU)
    ctx.sign(signature)
    return envelope


def _all_ids(envelope: etree._Element) -> dict[str, etree._Element]:
    """Every Id-like attribute in the document; a duplicate is an attack, not an accident."""
    found: dict[str, etree._Element] = {}
    for element in envelope.iter():
        if not isinstance(element.tag, str):
            continue
        for name in (f"{{{NS_WSU}}}Id", "Id", "ID", "id"):
            value = element.get(name)
            if value is None:
                continue
            if value in found and found[value] is not element:
                raise SignatureInvalid(f"the Id '{value}' appears more than once (signature wrapping?)")
            found[value] = element
    return found


def verify_envelope(envelope: etree._Element, trust: TrustStore, *, soap_ns: str = NS_SOAP11,
                    freshness: Freshness | None = None, require_timestamp: bool = True,
                    now: dt.datetime | None = None, required_headers: tuple[str, ...] = ()) -> VerifiedMessage:
    """Verify a WS-Security signed envelope; return what was verified or raise a SecurityError.

    The Timestamp (when present; required unless ``require_timestamp`` is false) must pass
    ``freshness`` (default: :class:`Freshness` defaults, 300 s max age and 60 s clock skew).
    """
    if envelope.tag != f"{{{soap_ns}}}Envelope":
        raise SignatureInvalid("not a SOAP envelope of the expected version")
    headers = envelope.findall(f"{{{soap_ns}}}Header")
    bodies = envelope.findall(f"{{{soap_ns}}}Body")
    if len(bodies) != 1 or len(headers) > 1:
        raise SignatureInvalid("the envelope must have exactly one Body and at most one Header")
    body = bodies[0]
    header = headers[0] if headers else None
    securities = header.findall(f"{{{NS_WSSE}}}Security") if header is not None else []
    if not securities:
        raise SignatureMissing("the message carries no WS-Security header")
    if len(securities) > 1:
        raise SignatureInvalid("more than one WS-Security header")
    security = securities[0]
    signatures = security.findall(f"{{{NS_DS}}}Signature")
    if len(signatures) != 1:
        raise SignatureMissing("the WS-Security header must hold exactly one signature")
    if len(envelope.findall(f".//{{{NS_DS}}}Signature")) != 1:
        raise SignatureInvalid("unexpected extra signatures in the message")
    signature = signatures[0]
    ids = _all_ids(envelope)
    references = check_signed_info(signature, allow_enveloped=False)
    signed_ids: set[str] = set()
    for reference in references:
        uri = reference.get("URI") or ""
        if not uri.startswith("#") or len(uri) < 2:
            raise SignatureInvalid(f"reference URI '{uri}' is not a same-document Id reference")
        if uri[1:] not in ids:
            raise SignatureInvalid(f"reference {uri} points at nothing")
        signed_ids.add(uri[1:])

    body_id = body.get(f"{{{NS_WSU}}}Id") or body.get("Id")
    if not body_id or body_id not in signed_ids or ids.get(body_id) is not body:
        raise SignatureInvalid("the SOAP Body is not covered by the signature")
    for tag in required_headers:
        for element in header.findall(tag) if header is not None else []:
            element_id = element.get(f"{{{NS_WSU}}}Id")
            if not element_id or element_id not in signed_ids:
                raise SignatureInvalid(f"header {tag} is not covered by the signature")

    created = expires = None
    timestamps = security.findall(f"{{{NS_WSU}}}Timestamp")
    if len(timestamps) > 1:
        raise SignatureInvalid("more than one Timestamp")
    if timestamps:
        timestamp = timestamps[0]
        ts_id = timestamp.get(f"{{{NS_WSU}}}Id")
        if not ts_id or ts_id not in signed_ids:
            raise SignatureInvalid("the Timestamp is not covered by the signature")
        created = _parse_time(timestamp.findtext(f"{{{NS_WSU}}}Created"))
        expires = _parse_time(timestamp.findtext(f"{{{NS_WSU}}}Expires"))
    elif require_timestamp:
        raise TimestampMissing("the message has no WS-Security Timestamp")

    certificate = _signer_certificate(signature, security, ids)
    try:
        trust.validate(certificate)
    except CertificateError as exc:
        raise CertificateUntrusted(str(exc)) from None

    ctx = xmlsec.SignatureContext()
    restrict_context(ctx)
    ctx.key = verification_key(certificate)
    for element in ids.values():
        if element.get(f"{{{NS_WSU}}}Id"):
            ctx.register_id(element, "Id", NS_WSU)
    try:
        ctx.verify(signature)
    except xmlsec.Error as exc:
        raise SignatureInvalid(f"the signature does not match the message: {exc}") from None

    if timestamps:
        (freshness or Freshness()).check(created, expires, now or dt.datetime.now(dt.timezone.utc))
    value = base64.b64decode("".join((signature.findtext(f"{{{NS_DS}}}SignatureValue") or "").split()))
    return VerifiedMessage(certificate=certificate, body=body, signed_ids=frozenset(signed_ids), created=created,
                           expires=expires, signature_value=value)


def _signer_certificate(signature: etree._Element, security: etree._Element,
                        ids: dict[str, etree._Element]) -> x509.Certificate:
    key_info = signature.find(f"{{{NS_DS}}}KeyInfo")
    if key_info is None:
        raise SignatureInvalid("the signature has no KeyInfo")
    reference = key_info.find(f"{{{NS_WSSE}}}SecurityTokenReference/{{{NS_WSSE}}}Reference")
    if reference is not None:
        uri = reference.get("URI") or ""
        token = ids.get(uri[1:]) if uri.startswith("#") else None
        if token is None or token.tag != f"{{{NS_WSSE}}}BinarySecurityToken" or token.getparent() is not security:
            raise SignatureInvalid("the signature's token reference does not point at a token in its Security header")
        data = token.text or ""
    else:
        cert_element = key_info.find(f"{{{NS_DS}}}X509Data/{{{NS_DS}}}X509Certificate")
        if cert_element is None:
            raise SignatureInvalid("the signature does not identify its certificate")
        data = cert_element.text or ""
    try:
        return x509.load_der_x509_certificate(base64.b64decode("".join(data.split())))
    except ValueError:
        raise SignatureInvalid("the signer's certificate cannot be read") from None
