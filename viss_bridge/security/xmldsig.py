"""XML-DSig: the allow-listed algorithms and enveloped signatures over whole documents.

Used for the message log's seals: a seal is a small XML document signed with
an enveloped signature carrying the signer's certificate in X509Data, so a
security officer can check it with ``xmlsec1 --verify --trusted-pem ca.pem``
without any of this code.
"""

from __future__ import annotations

import base64
import datetime as dt

import xmlsec
from cryptography import x509
from lxml import etree

from viss_bridge.security.keys import SigningKey, verification_key
from viss_bridge.security.pki import CertificateError, TrustStore
from viss_bridge.namespaces import NS_DS as NS_DS

EXC_C14N = "http://www.w3.org/2001/10/xml-exc-c14n#"
ENVELOPED = "http://www.w3.org/2000/09/xmldsig#enveloped-signature"
SIGNATURE_METHODS = {
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256", "http://www.w3.org/2001/04/xmldsig-more#rsa-sha384",
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512", "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256",
    "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha384", "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha512",
}
DIGEST_METHODS = {"http://www.w3.org/2001/04/xmlenc#sha256", "http://www.w3.org/2001/04/xmldsig-more#sha384",
                  "http://www.w3.org/2001/04/xmlenc#sha512"}


class SecurityError(Exception):
    """A signature check that failed; ``reason`` is one word a fault code can be built from."""

    reason = "InvalidSignature"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class SignatureMissing(SecurityError):
    reason = "SignatureMissing"


class SignatureInvalid(SecurityError):
    reason = "InvalidSignature"


class CertificateUntrusted(SecurityError):
    reason = "UntrustedCertificate"


class TimestampInvalid(SecurityError):
    reason = "TimestampExpired"


class TimestampMissing(TimestampInvalid):
    """A signed message without the ``wsu:Timestamp`` its receiver requires (no freshness, no replay window)."""

    reason = "TimestampMissing"


def check_signed_info(signature: etree._Element, *, allow_enveloped: bool) -> list[etree._Element]:
    """Refuse anything but SHA-256+ algorithms and exclusive c14n; return the References."""
    signed_info = signature.find(f"{{{NS_DS}}}SignedInfo")
    if signed_info is None:
        raise SignatureInvalid("the signature has no SignedInfo")
    c14n = signed_info.find(f"{{{NS_DS}}}CanonicalizationMethod")
    if c14n is None or c14n.get("Algorithm") != EXC_C14N:
        raise SignatureInvalid("SignedInfo must use exclusive canonicalisation")
    method = signed_info.find(f"{{{NS_DS}}}SignatureMethod")
    if method is None or method.get("Algorithm") not in SIGNATURE_METHODS:
        raise SignatureInvalid(f"signature algorithm {method.get('Algorithm') if method is not None else None} "
                               "is not allowed (RSA or ECDSA with SHA-256 or better only)")
    references = signed_info.findall(f"{{{NS_DS}}}Reference")
    if not references:
        raise SignatureInvalid("the signature references nothing")
    allowed = {EXC_C14N, ENVELOPED} if allow_enveloped else {EXC_C14N}
    for reference in references:
        digest = reference.find(f"{{{NS_DS}}}DigestMethod")
        if digest is None or digest.get("Algorithm") not in DIGEST_METHODS:
            raise SignatureInvalid("digest algorithm is not allowed (SHA-256 or better only)")
        for transform in reference.iterfind(f"{{{NS_DS}}}Transforms/{{{NS_DS}}}Transform"):
            if transform.get("Algorithm") not in allowed:
                raise SignatureInvalid(f"transform {transform.get('Algorithm')} is not allowed")
    return references


def restrict_context(ctx: xmlsec.SignatureContext) -> None:
    """Let libxmlsec itself refuse anything outside the allow-list too (defence in depth)."""
    c = xmlsec.constants
    for transform in (c.TransformExclC14N, c.TransformEnveloped, c.TransformSha256, c.TransformSha384,
                      c.TransformSha512):
        ctx.enable_reference_transform(transform)
    for transform in (c.TransformExclC14N, c.TransformRsaSha256, c.TransformRsaSha384, c.TransformRsaSha512,
                      c.TransformEcdsaSha256, c.TransformEcdsaSha384, c.TransformEcdsaSha512):
        ctx.enable_signature_transform(transform)


def sign_enveloped(root: etree._Element, key: SigningKey) -> etree._Element:
    """Append an enveloped signature over the whole document (URI ""), with the certificate."""
    signature = xmlsec.template.create(root, xmlsec.constants.TransformExclC14N, key.signature_transform, ns="ds")
    root.append(signature)
    reference = xmlsec.template.add_reference(signature, xmlsec.constants.TransformSha256, uri="")
    xmlsec.template.add_transform(reference, xmlsec.constants.TransformEnveloped)
    xmlsec.template.add_transform(reference, xmlsec.constants.TransformExclC14N)
    key_info = xmlsec.template.ensure_key_info(signature)
    x509_data = etree.SubElement(key_info, f"{{{NS_DS}}}X509Data")
    etree.SubElement(x509_data, f"{{{NS_DS}}}X509Certificate").text = base64.b64encode(key.certificate_der).decode()
    ctx = xmlsec.SignatureContext()
    ctx.key = key.xmlsec_key()
    ctx.sign(signature)
    return root


def embedded_certificates(signature: etree._Element) -> list[x509.Certificate]:
    certs = []
    for element in signature.iterfind(f"{{{NS_DS}}}KeyInfo/{{{NS_DS}}}X509Data/{{{NS_DS}}}X509Certificate"):
        try:
            certs.append(x509.load_der_x509_certificate(base64.b64decode("".join((element.text or "").split()))))
        except ValueError:
            raise SignatureInvalid("an X509Certificate in the signature cannot be read") from None
    return certs


def verify_enveloped(root: etree._Element, trust: TrustStore, at: dt.datetime | None = None) -> x509.Certificate:
    """Verify a document signed by :func:`sign_enveloped`; return the signer's (trusted) certificate.

    ``at`` is the moment the certificate must have been valid (default: now); a verifier that holds a
    trusted time-stamp over the signature passes the time-stamp's time, so old seals stay verifiable
    after the signing certificate expires."""
    signatures = root.findall(f".//{{{NS_DS}}}Signature")
    if not signatures:
        raise SignatureMissing("the document is not signed")
    if len(signatures) > 1 or signatures[0].getparent() is not root:
        raise SignatureInvalid("exactly one signature, directly inside the document element, is expected")
    signature = signatures[0]
    references = check_signed_info(signature, allow_enveloped=True)
    if len(references) != 1 or references[0].get("URI") != "":
        raise SignatureInvalid('an enveloped signature must have exactly one Reference with URI ""')
    transforms = [t.get("Algorithm") for t in references[0].iterfind(f"{{{NS_DS}}}Transforms/{{{NS_DS}}}Transform")]
    if transforms != [ENVELOPED, EXC_C14N]:
        raise SignatureInvalid("the reference must use the enveloped transform then exclusive c14n")
    certs = embedded_certificates(signature)
    if not certs:
        raise SignatureInvalid("the signature carries no certificate")
    try:
        trust.validate(certs[0], at=at, extra_chain=certs[1:])
    except CertificateError as exc:
        raise CertificateUntrusted(str(exc)) from None
    ctx = xmlsec.SignatureContext()
    restrict_context(ctx)
    ctx.key = verification_key(certs[0])
    try:
        ctx.verify(signature)
    except xmlsec.Error as exc:
        raise SignatureInvalid(f"the signature does not match the document: {exc}") from None
    return certs[0]
