"""XAdES (ETSI EN 319 132-1) detached signatures for ASiC-E containers (ETSI EN 319 162-1).

The container's signature, ``META-INF/signatures0.xml``, is an
``asic:XAdESSignatures`` document holding one ``ds:Signature`` whose
References point at the container's data files by relative URI (raw bytes,
no transform), each with an ``Id`` and a ``DataObjectFormat`` naming the same
media type as the manifest, plus one Reference of Type
``http://uri.etsi.org/01903#SignedProperties`` (SigningTime and
SigningCertificateV2). Level XAdES-T adds a ``SignatureTimeStamp``: an RFC 3161
token over the exclusive c14n of ``ds:SignatureValue``. These are exactly the
rules libdigidocpp (DigiDoc4, eParaksts) enforces.

Why not ``xmlsec.SignatureContext.sign``: python-xmlsec resolves detached URIs
only through process-global IO callbacks, which would reach into every other
xmlsec user of the bridge. The digests here are SHA-256 of bytes, the
SignedProperties and SignedInfo are canonicalised by libxml2 (lxml, exclusive
c14n), and the signature is made by ``cryptography``; ``xmlsec1 --verify`` and
libdigidocpp check the result independently in the test suite.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
from dataclasses import dataclass
from typing import Callable

from asn1crypto import tsp
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature
from lxml import etree

from viss_bridge.security.keys import SigningKey

NS_ASIC = "http://uri.etsi.org/02918/v1.2.1#"
NS_DS = "http://www.w3.org/2000/09/xmldsig#"
NS_XADES = "http://uri.etsi.org/01903/v1.3.2#"
NS_XADES141 = "http://uri.etsi.org/01903/v1.4.1#"
EXC_C14N = "http://www.w3.org/2001/10/xml-exc-c14n#"
SHA256 = "http://www.w3.org/2001/04/xmlenc#sha256"
SIGNED_PROPERTIES_TYPE = "http://uri.etsi.org/01903#SignedProperties"
METHODS = {"ec": "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256",
           "rsa": "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"}
SIGNATURE_FILE = "META-INF/signatures0.xml"


class XadesError(Exception):
    """The XAdES signature does not verify; the message names what."""


def _ds(name: str) -> str:
    return f"{{{NS_DS}}}{name}"


def _xa(name: str) -> str:
    return f"{{{NS_XADES}}}{name}"


def _algorithm(parent: etree._Element, tag: str) -> str | None:
    """The Algorithm attribute of ``parent``'s child ``tag``; None when the child is missing, so the caller's
    comparison with the one allowed algorithm fails and names what is wrong."""
    child = parent.find(tag)
    return None if child is None else child.get("Algorithm")


def _required(parent: etree._Element, path: str, what: str) -> etree._Element:
    """The element at ``path``; a document without it is refused, not dereferenced as None."""
    element = parent.find(path)
    if element is None:
        raise XadesError(f"no {what}")
    return element


def c14n(element: etree._Element) -> bytes:
    """Exclusive XML canonicalisation of ``element`` in its document (what is digested and signed)."""
    return etree.tostring(element, method="c14n", exclusive=True, with_comments=False)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def issuer_serial_v2(cert: x509.Certificate) -> bytes:
    """DER IssuerSerial (RFC 5035) of ``cert``: the content of XAdES IssuerSerialV2."""
    parsed = asn1_x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER))
    der: bytes = tsp.IssuerSerial({"issuer": [asn1_x509.GeneralName({"directory_name": parsed.issuer})],
                                   "serial_number": parsed.serial_number}).dump()
    return der


def _signature_bytes(key: SigningKey, data: bytes) -> bytes:
    private = key.private_key
    if isinstance(private, ec.EllipticCurvePrivateKey):
        r, s = decode_dss_signature(private.sign(data, ec.ECDSA(hashes.SHA256())))
        size = (private.curve.key_size + 7) // 8
        return r.to_bytes(size, "big") + s.to_bytes(size, "big")  # XML-DSig: r || s, not DER
    return private.sign(data, padding.PKCS1v15(), hashes.SHA256())


@dataclass(frozen=True)
class DataFile:
    name: str
    media_type: str
    data: bytes


def sign_container_files(files: list[DataFile], key: SigningKey, timestamp: Callable[[bytes], bytes] | None = None,
                         signing_time: dt.datetime | None = None) -> bytes:
    """The ``META-INF/signatures0.xml`` bytes: one XAdES signature over every data file.

    ``timestamp`` is a callable taking the bytes to time-stamp and returning a
    DER TimeStampToken (XAdES-T); without it the signature is XAdES-B."""
    moment = (signing_time or dt.datetime.now(dt.timezone.utc)).astimezone(dt.timezone.utc)
    root = etree.Element(f"{{{NS_ASIC}}}XAdESSignatures", nsmap={"asic": NS_ASIC, "ds": NS_DS, "xades": NS_XADES})
    signature = etree.SubElement(root, _ds("Signature"), Id="S0")
    signed_info = etree.SubElement(signature, _ds("SignedInfo"))
    etree.SubElement(signed_info, _ds("CanonicalizationMethod"), Algorithm=EXC_C14N)
    kind = "ec" if isinstance(key.private_key, ec.EllipticCurvePrivateKey) else "rsa"
    etree.SubElement(signed_info, _ds("SignatureMethod"), Algorithm=METHODS[kind])
    for index, item in enumerate(files):
        reference = etree.SubElement(signed_info, _ds("Reference"), Id=f"S0-RefId{index}", URI=_uri(item.name))
        etree.SubElement(reference, _ds("DigestMethod"), Algorithm=SHA256)
        etree.SubElement(reference, _ds("DigestValue")).text = _b64(hashlib.sha256(item.data).digest())
    sp_reference = etree.SubElement(signed_info, _ds("Reference"), Id="S0-RefId-SP", Type=SIGNED_PROPERTIES_TYPE,
                                    URI="#S0-SignedProperties")
    transforms = etree.SubElement(sp_reference, _ds("Transforms"))
    etree.SubElement(transforms, _ds("Transform"), Algorithm=EXC_C14N)
    etree.SubElement(sp_reference, _ds("DigestMethod"), Algorithm=SHA256)
    sp_digest = etree.SubElement(sp_reference, _ds("DigestValue"))
    signature_value = etree.SubElement(signature, _ds("SignatureValue"), Id="S0-SIG")
    key_info = etree.SubElement(signature, _ds("KeyInfo"))
    etree.SubElement(etree.SubElement(key_info, _ds("X509Data")), _ds("X509Certificate")).text = _b64(key.certificate_der)
    obj = etree.SubElement(signature, _ds("Object"))
    qualifying = etree.SubElement(obj, _xa("QualifyingProperties"), Target="#S0")
    signed_props = etree.SubElement(qualifying, _xa("SignedProperties"), Id="S0-SignedProperties")
    ssp = etree.SubElement(signed_props, _xa("SignedSignatureProperties"))
    etree.SubElement(ssp, _xa("SigningTime")).text = moment.strftime("%Y-%m-%dT%H:%M:%SZ")
    cert_v2 = etree.SubElement(etree.SubElement(ssp, _xa("SigningCertificateV2")), _xa("Cert"))
    cert_digest = etree.SubElement(cert_v2, _xa("CertDigest"))
    etree.SubElement(cert_digest, _ds("DigestMethod"), Algorithm=SHA256)
    etree.SubElement(cert_digest, _ds("DigestValue")).text = _b64(hashlib.sha256(key.certificate_der).digest())
    etree.SubElement(cert_v2, _xa("IssuerSerialV2")).text = _b64(issuer_serial_v2(key.certificate))
    sdop = etree.SubElement(signed_props, _xa("SignedDataObjectProperties"))
    for index, item in enumerate(files):
        dof = etree.SubElement(sdop, _xa("DataObjectFormat"), ObjectReference=f"#S0-RefId{index}")
        etree.SubElement(dof, _xa("MimeType")).text = item.media_type
    sp_digest.text = _b64(hashlib.sha256(c14n(signed_props)).digest())
    signature_value.text = _b64(_signature_bytes(key, c14n(signed_info)))
    if timestamp is not None:
        token = timestamp(c14n(signature_value))
        usp = etree.SubElement(etree.SubElement(qualifying, _xa("UnsignedProperties")),
                               _xa("UnsignedSignatureProperties"))
        stamp = etree.SubElement(usp, _xa("SignatureTimeStamp"), Id="S0-T0")
        etree.SubElement(stamp, _ds("CanonicalizationMethod"), Algorithm=EXC_C14N)
        etree.SubElement(stamp, _xa("EncapsulatedTimeStamp"), Id="S0-T0-token").text = _b64(token)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", standalone=False)


def _uri(name: str) -> str:
    from urllib.parse import quote

    return quote(name, safe="/-._~")


# -- verification ---------------------------------------------------------------------------------

@dataclass
class XadesResult:
    signer: x509.Certificate
    signing_time: str
    covered: dict[str, str]      # data file name -> media type (DataObjectFormat)
    timestamp_token: bytes | None
    timestamped_bytes: bytes      # exclusive c14n of ds:SignatureValue
    archive_tokens: list[tuple[bytes, bytes]]  # (token, the bytes it covers) of each ArchiveTimeStamp


def verify_signature_document(document: bytes, files: dict[str, bytes],
                              parse: Callable[[bytes], etree._Element]) -> XadesResult:
    """Check the signature's own integrity: every Reference digest, SignedProperties, SigningCertificateV2, the
    SignatureValue. Certificate trust and the time-stamp are the caller's (they need the trust store)."""
    from urllib.parse import unquote

    root = parse(document)
    if root.tag != f"{{{NS_ASIC}}}XAdESSignatures":
        raise XadesError("the signature document's root is not asic:XAdESSignatures")
    signatures = root.findall(_ds("Signature"))
    if len(signatures) != 1:
        raise XadesError(f"expected one ds:Signature, found {len(signatures)}")
    signature = signatures[0]
    signed_info = signature.find(_ds("SignedInfo"))
    if signed_info is None:
        raise XadesError("no SignedInfo")
    if _algorithm(signed_info, _ds("CanonicalizationMethod")) != EXC_C14N:
        raise XadesError("SignedInfo must use exclusive c14n")
    method = _algorithm(signed_info, _ds("SignatureMethod"))
    if method not in METHODS.values():
        raise XadesError(f"signature method {method} is not allowed")
    ids = {e.get("Id"): e for e in root.iter() if isinstance(e.tag, str) and e.get("Id")}
    if len(ids) != sum(1 for e in root.iter() if isinstance(e.tag, str) and e.get("Id")):
        raise XadesError("an Id is used twice (signature wrapping?)")
    signed_props = signature.find(f"{_ds('Object')}/{_xa('QualifyingProperties')}/{_xa('SignedProperties')}")
    if signed_props is None:
        raise XadesError("no xades:SignedProperties")
    covered: dict[str, str] = {}
    formats = {d.get("ObjectReference"): d.findtext(_xa("MimeType")) for d in signed_props.iter(_xa("DataObjectFormat"))}
    sp_seen = False
    changed: list[str] = []  # every changed file is named, not only the first
    for reference in signed_info.findall(_ds("Reference")):
        if _algorithm(reference, _ds("DigestMethod")) != SHA256:
            raise XadesError("digest method must be SHA-256")
        expected = base64.b64decode(reference.findtext(_ds("DigestValue")) or "")
        uri = reference.get("URI") or ""
        if reference.get("Type") == SIGNED_PROPERTIES_TYPE:
            if uri != f"#{signed_props.get('Id')}" or sp_seen:
                raise XadesError("the SignedProperties reference does not point at this signature's SignedProperties")
            transforms = [t.get("Algorithm") for t in reference.iter(_ds("Transform"))]
            if transforms != [EXC_C14N]:
                raise XadesError("the SignedProperties reference must use exclusive c14n")
            if hashlib.sha256(c14n(signed_props)).digest() != expected:
                raise XadesError("SignedProperties (signing time, certificate, data formats) were changed")
            sp_seen = True
            continue
        name = unquote(uri)
        if uri.startswith(("/", "#")) or ":" in uri or reference.find(_ds("Transforms")) is not None:
            raise XadesError(f"reference {uri!r} is not a plain relative data file URI")
        if name not in files:
            raise XadesError(f"the signature covers {name}, which the container lacks")
        if name in covered:
            raise XadesError(f"{name} is referenced twice")
        if hashlib.sha256(files[name]).digest() != expected:
            changed.append(f"data file {name} was changed after signing (digest mismatch)")
        covered[name] = formats.get(f"#{reference.get('Id')}") or ""
        if not covered[name]:
            raise XadesError(f"{name} has no DataObjectFormat")
    if changed:
        raise XadesError("; ".join(changed))
    if not sp_seen:
        raise XadesError("no SignedProperties reference")
    certs = signature.findall(f"{_ds('KeyInfo')}/{_ds('X509Data')}/{_ds('X509Certificate')}")
    if not certs:
        raise XadesError("KeyInfo carries no certificate")
    signer = x509.load_der_x509_certificate(base64.b64decode("".join((certs[0].text or "").split())))
    signer_der = signer.public_bytes(serialization.Encoding.DER)
    cert_v2 = signed_props.find(f"{_xa('SignedSignatureProperties')}/{_xa('SigningCertificateV2')}/{_xa('Cert')}")
    if cert_v2 is None:
        raise XadesError("no SigningCertificateV2")
    if (base64.b64decode(cert_v2.findtext(f"{_xa('CertDigest')}/{_ds('DigestValue')}") or "")
            != hashlib.sha256(signer_der).digest()
            or base64.b64decode(cert_v2.findtext(_xa("IssuerSerialV2")) or "") != issuer_serial_v2(signer)):
        raise XadesError("SigningCertificateV2 does not match the KeyInfo certificate")
    value_element = _required(signature, _ds("SignatureValue"), "SignatureValue")
    value = base64.b64decode("".join((value_element.text or "").split()))
    public = signer.public_key()
    try:
        if isinstance(public, ec.EllipticCurvePublicKey) and method == METHODS["ec"]:
            size = len(value) // 2
            der = encode_dss_signature(int.from_bytes(value[:size], "big"), int.from_bytes(value[size:], "big"))
            public.verify(der, c14n(signed_info), ec.ECDSA(hashes.SHA256()))
        elif isinstance(public, rsa.RSAPublicKey) and method == METHODS["rsa"]:
            public.verify(value, c14n(signed_info), padding.PKCS1v15(), hashes.SHA256())
        else:
            raise XadesError("the signature method does not fit the certificate's key")
    except InvalidSignature:
        raise XadesError("SignatureValue does not match SignedInfo (the signature was changed)") from None
    usp = signature.find(f"{_ds('Object')}/{_xa('QualifyingProperties')}/{_xa('UnsignedProperties')}/"
                         f"{_xa('UnsignedSignatureProperties')}")
    token = None
    archives: list[tuple[bytes, bytes]] = []
    if usp is not None:
        stamps = usp.findall(_xa("SignatureTimeStamp"))
        if len(stamps) > 1:
            raise XadesError("more than one SignatureTimeStamp")
        if stamps:
            if _algorithm(stamps[0], _ds("CanonicalizationMethod")) != EXC_C14N:
                raise XadesError("SignatureTimeStamp must use exclusive c14n")
            token = base64.b64decode("".join((stamps[0].findtext(_xa("EncapsulatedTimeStamp")) or "").split()))
        for archive in usp.findall(f"{{{NS_XADES141}}}ArchiveTimeStamp"):
            archives.append((base64.b64decode("".join((archive.findtext(_xa("EncapsulatedTimeStamp")) or "").split())),
                             archive_input(signature, files, archive)))
    return XadesResult(signer=signer, signing_time=signed_props.findtext(f".//{_xa('SigningTime')}") or "",
                       covered=covered, timestamp_token=token, timestamped_bytes=c14n(value_element),
                       archive_tokens=archives)


def archive_input(signature: etree._Element, files: dict[str, bytes], before: etree._Element | None) -> bytes:
    """What an ArchiveTimeStamp covers (ETSI EN 319 132-1 5.5.2.2, references and c14n simplified to one
    method): the referenced data files' bytes, then the c14n of SignedInfo, SignatureValue, KeyInfo, and every
    unsigned signature property before this archive time-stamp."""
    from urllib.parse import unquote

    parts: list[bytes] = []
    signed_info = _required(signature, _ds("SignedInfo"), "SignedInfo")
    for reference in signed_info.findall(_ds("Reference")):
        if reference.get("Type") == SIGNED_PROPERTIES_TYPE:
            parts.append(c14n(_required(signature, f".//{_xa('SignedProperties')}", "xades:SignedProperties")))
        else:
            parts.append(files.get(unquote(reference.get("URI") or ""), b""))
    parts += [c14n(signed_info), c14n(_required(signature, _ds("SignatureValue"), "SignatureValue")),
              c14n(_required(signature, _ds("KeyInfo"), "KeyInfo"))]
    usp = signature.find(f".//{_xa('UnsignedSignatureProperties')}")
    if usp is not None:
        for child in usp:
            if child is before:
                break
            parts.append(c14n(child))
    return b"".join(parts)


def add_archive_timestamp(document: bytes, files: dict[str, bytes], timestamp: Callable[[bytes], bytes],
                          parse: Callable[[bytes], etree._Element]) -> bytes:
    """Append an ArchiveTimeStamp (XAdES-A) to the signature document, over everything it holds so far."""
    root = parse(document)
    signature = root.find(_ds("Signature"))
    if signature is None:
        raise XadesError("the signature document has no ds:Signature")
    usp = signature.find(f".//{_xa('UnsignedSignatureProperties')}")
    if usp is None:
        raise XadesError("the signature has no SignatureTimeStamp yet (XAdES-T needed before XAdES-A)")
    count = len(usp.findall(f"{{{NS_XADES141}}}ArchiveTimeStamp"))
    token = timestamp(archive_input(signature, files, None))
    archive = etree.SubElement(usp, f"{{{NS_XADES141}}}ArchiveTimeStamp", Id=f"S0-A{count}",
                               nsmap={"xades141": NS_XADES141})
    etree.SubElement(archive, _ds("CanonicalizationMethod"), Algorithm=EXC_C14N)
    etree.SubElement(archive, _xa("EncapsulatedTimeStamp"), Id=f"S0-A{count}-token").text = _b64(token)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", standalone=False)
