"""RFC 3161 time-stamps: a client, an offline verifier and a small development TSA.

Implemented with asn1crypto (ASN.1) and cryptography (signatures). The
development TSA (``viss-bridge tsa serve``) answers ``application/timestamp-query``
over HTTP with a real token signed by the development TSA certificate (which
carries the critical timeStamping extended key usage), including the ESS
signing-certificate-v2 attribute, so ``openssl ts -verify`` accepts it.

What the log time-stamps is a seal's SignatureValue (the decoded bytes);
the token's message imprint is SHA-256 of those bytes.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import requests
from asn1crypto import algos, cms, core, tsp
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID

from viss_bridge.security.pki import CertificateError, PrivateKey, TrustStore

CONTENT_TYPE_QUERY = "application/timestamp-query"
CONTENT_TYPE_REPLY = "application/timestamp-reply"
_HASHES: dict[str, type[hashes.SHA256] | type[hashes.SHA384] | type[hashes.SHA512]] = {"sha256": hashes.SHA256, "sha384": hashes.SHA384, "sha512": hashes.SHA512}


class TimestampError(Exception):
    """Time-stamping failed (client) or a token does not verify (verifier)."""


@dataclass(frozen=True)
class VerifiedTimestamp:
    gen_time: dt.datetime
    tsa: x509.Certificate
    serial: int
    policy: str


# -- client ------------------------------------------------------------------------------

def request_timestamp(url: str, data: bytes, timeout: float = 5.0) -> bytes:
    """Ask the TSA at ``url`` to time-stamp SHA-256(``data``); return the DER TimeStampResp (checked)."""
    digest = hashlib.sha256(data).digest()
    nonce = int.from_bytes(os.urandom(8), "big")
    request = tsp.TimeStampReq({
        "version": "v1",
        "message_imprint": {"hash_algorithm": {"algorithm": "sha256"}, "hashed_message": digest},
        "nonce": nonce, "cert_req": True,
    })
    try:
        answer = requests.post(url, data=request.dump(), headers={"Content-Type": CONTENT_TYPE_QUERY}, timeout=timeout)
    except requests.RequestException as exc:
        raise TimestampError(f"TSA {url} unreachable: {exc}") from None
    if answer.status_code != 200:
        raise TimestampError(f"TSA {url} answered HTTP {answer.status_code}")
    try:
        response = tsp.TimeStampResp.load(answer.content)
        status = response["status"]["status"].native
        if status not in ("granted", "granted_with_mods"):
            raise TimestampError(f"TSA refused: {status} {response['status']['status_string'].native}")
        info = _tst_info(response["time_stamp_token"])
        if info["message_imprint"]["hashed_message"].native != digest:
            raise TimestampError("the TSA time-stamped something else (imprint mismatch)")
        if info["nonce"].native != nonce:
            raise TimestampError("the TSA answer does not carry our nonce")
    except (ValueError, KeyError, TypeError) as exc:
        raise TimestampError(f"the TSA answer cannot be read: {exc}") from None
    return answer.content


def _tst_info(token: cms.ContentInfo) -> tsp.TSTInfo:
    if token["content_type"].native != "signed_data":
        raise TimestampError("the token is not CMS SignedData")
    encap = token["content"]["encap_content_info"]
    if encap["content_type"].native != "tst_info":
        raise TimestampError("the token does not hold a TSTInfo")
    return encap["content"].parsed


def token_of(tsr_der: bytes) -> cms.ContentInfo:
    """The TimeStampToken of a DER TimeStampResp (or a bare token)."""
    try:
        response = tsp.TimeStampResp.load(tsr_der)
        token = response["time_stamp_token"]
        if not isinstance(token, cms.ContentInfo) or token.contents is None:
            raise ValueError("no token")
        return token
    except (ValueError, TypeError, KeyError):
        try:
            return cms.ContentInfo.load(tsr_der)
        except (ValueError, TypeError) as exc:
            raise TimestampError(f"not a time-stamp response or token: {exc}") from None


# -- verifier ----------------------------------------------------------------------------------

def verify_timestamp(tsr_der: bytes, data: bytes, trust: TrustStore) -> VerifiedTimestamp:
    """Verify a TimeStampResp (or token) over ``data`` against the trust store, offline."""
    try:
        token = token_of(tsr_der)
        signed = token["content"]
        info = _tst_info(token)
        algorithm = info["message_imprint"]["hash_algorithm"]["algorithm"].native
        if algorithm not in _HASHES:
            raise TimestampError(f"imprint hash {algorithm} is not allowed")
        expected = hashlib.new(algorithm, data).digest()
        if info["message_imprint"]["hashed_message"].native != expected:
            raise TimestampError("the time-stamp is over different data (message imprint mismatch)")
        signers = signed["signer_infos"]
        if len(signers) != 1:
            raise TimestampError("the token must have exactly one signer")
        signer = signers[0]
        received = signer["signed_attrs"].dump()  # before reading them: asn1crypto re-encodes what it has parsed
        certs = [x509.load_der_x509_certificate(c.chosen.dump()) for c in signed["certificates"] or []
                 if c.name == "certificate"]
        tsa_cert = _signer_cert(signer, certs)
        # The signed attributes: content type, message digest over the TSTInfo, signing certificate.
        attrs = {a["type"].native: a["values"] for a in signer["signed_attrs"]}
        if attrs.get("content_type") is None or attrs["content_type"][0].native != "tst_info":
            raise TimestampError("signed content-type attribute is not TSTInfo")
        digest_alg = signer["digest_algorithm"]["algorithm"].native
        if digest_alg not in _HASHES:
            raise TimestampError(f"digest algorithm {digest_alg} is not allowed")
        content = signed["encap_content_info"]["content"].contents
        if attrs.get("message_digest") is None or attrs["message_digest"][0].native != hashlib.new(digest_alg, content).digest():
            raise TimestampError("the token's message-digest attribute does not match its TSTInfo")
        # ESS signing-certificate(-v2) binds the signer's certificate into what is signed (RFC 5816 / RFC 2634).
        cert_der = tsa_cert.public_bytes(serialization.Encoding.DER)
        if attrs.get("signing_certificate_v2") is not None:
            ids = attrs["signing_certificate_v2"][0]["certs"]
            ess_ok = any(hashlib.new(c["hash_algorithm"]["algorithm"].native or "sha256", cert_der).digest()
                         == c["cert_hash"].native for c in ids)
        elif attrs.get("signing_certificate") is not None:  # v1: SHA-1, still issued by some TSAs
            ess_ok = any(hashlib.sha1(cert_der).digest() == c["cert_hash"].native
                         for c in attrs["signing_certificate"][0]["certs"])
        else:
            raise TimestampError("the token lacks the ESS signing-certificate attribute")
        if not ess_ok:
            raise TimestampError("the ESS signing certificate does not match the signer")
        # The signature is over the signed attributes with the [0] IMPLICIT tag read as SET OF (RFC 5652 5.4).
        # The bytes as received serve when the TSA encoded them in DER (all do); re-encoding them (asn1crypto's
        # dump(force=True), ~17 ms a token, most of `log verify`'s seal time) is the fallback for one that did not.
        try:
            _check_signature(tsa_cert, signer, b"\x31" + received[1:], digest_alg)
        except TimestampError:
            signed_attrs = signer["signed_attrs"].untag().dump(force=True)
            if signed_attrs[0] != 0x31:
                signed_attrs = b"\x31" + signed_attrs[1:]
            if signed_attrs[1:] == received[1:]:
                raise
            _check_signature(tsa_cert, signer, signed_attrs, digest_alg)
        gen_time = info["gen_time"].native
    except TimestampError:
        raise
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise TimestampError(f"the time-stamp token cannot be read: {exc}") from None
    try:
        eku = tsa_cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage)
    except x509.ExtensionNotFound:
        raise TimestampError("the TSA certificate has no extended key usage") from None
    if not eku.critical or list(eku.value) != [ExtendedKeyUsageOID.TIME_STAMPING]:
        raise TimestampError("the TSA certificate's extended key usage must be timeStamping only, and critical")
    try:
        trust.validate(tsa_cert, at=gen_time, extra_chain=[c for c in certs if c != tsa_cert])
    except CertificateError as exc:
        raise TimestampError(f"TSA certificate not trusted: {exc}") from None
    return VerifiedTimestamp(gen_time=gen_time, tsa=tsa_cert, serial=info["serial_number"].native,
                             policy=info["policy"].dotted)


def _signer_cert(signer: cms.SignerInfo, certs: list[x509.Certificate]) -> x509.Certificate:
    sid = signer["sid"]
    for cert in certs:
        if sid.name == "issuer_and_serial_number":
            if (cert.serial_number == sid.chosen["serial_number"].native
                    and cert.issuer.public_bytes() == sid.chosen["issuer"].dump()):
                return cert
        else:
            try:
                ski = cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
            except x509.ExtensionNotFound:
                continue
            if ski == sid.chosen.native:
                return cert
    raise TimestampError("the token does not include its signer's certificate")


def _check_signature(cert: x509.Certificate, signer: cms.SignerInfo, data: bytes, digest_alg: str) -> None:
    public_key = cert.public_key()
    signature = signer["signature"].native
    algorithm = _HASHES[digest_alg]()
    sig_alg = signer["signature_algorithm"]["algorithm"].native
    try:
        if isinstance(public_key, rsa.RSAPublicKey):
            if sig_alg == "rsassa_pss":
                public_key.verify(signature, data, padding.PSS(padding.MGF1(algorithm), padding.PSS.AUTO), algorithm)
            else:
                public_key.verify(signature, data, padding.PKCS1v15(), algorithm)
        elif isinstance(public_key, ec.EllipticCurvePublicKey):
            public_key.verify(signature, data, ec.ECDSA(algorithm))
        else:
            raise TimestampError("unsupported TSA key type")
    except InvalidSignature:
        raise TimestampError("the time-stamp token's signature is invalid") from None


# -- development TSA ---------------------------------------------------------------------------

DEV_POLICY = "1.3.6.1.4.1.99999.3161.1"  # a private-arc policy OID for the development TSA


def _now_ms() -> dt.datetime:
    now = dt.datetime.now(dt.timezone.utc)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


class DevTsa:
    """Builds RFC 3161 responses signed by a TSA key (used by the HTTP server and tests)."""

    def __init__(self, cert: x509.Certificate, key: PrivateKey, policy: str = DEV_POLICY) -> None:
        self.cert = cert
        self.key = key
        self.policy = policy
        self._asn1_cert = asn1_x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER))
        self._serial = int.from_bytes(os.urandom(8), "big")
        self._lock = threading.Lock()

    def _next_serial(self) -> int:
        with self._lock:
            self._serial += 1
            return self._serial

    def reply(self, query_der: bytes) -> bytes:
        try:
            query = tsp.TimeStampReq.load(query_der)
            imprint = query["message_imprint"]
            algorithm = imprint["hash_algorithm"]["algorithm"].native
            if algorithm not in _HASHES or len(imprint["hashed_message"].native) != _HASHES[algorithm].digest_size:
                return self._refusal("bad_alg", f"hash algorithm {algorithm} not accepted")
            nonce = query["nonce"].native
            cert_req = bool(query["cert_req"].native)
        except (ValueError, TypeError, KeyError):
            return self._refusal("bad_data_format", "the request cannot be read")
        info = tsp.TSTInfo({
            "version": "v1", "policy": self.policy,
            "message_imprint": {"hash_algorithm": {"algorithm": algorithm},
                                "hashed_message": imprint["hashed_message"].native},
            "serial_number": self._next_serial(),
            "gen_time": _now_ms(),
            "accuracy": {"seconds": 1}, "ordering": False,
            **({"nonce": nonce} if nonce is not None else {}),
        })
        content = info.dump()
        cert_hash = hashlib.sha256(self._asn1_cert.dump()).digest()
        signed_attrs = cms.CMSAttributes([
            cms.CMSAttribute({"type": "content_type", "values": ["tst_info"]}),
            cms.CMSAttribute({"type": "signing_time", "values": [cms.Time({"utc_time": dt.datetime.now(dt.timezone.utc)})]}),
            cms.CMSAttribute({"type": "message_digest", "values": [hashlib.sha256(content).digest()]}),
            cms.CMSAttribute({"type": "signing_certificate_v2", "values": [{
                "certs": [{"cert_hash": cert_hash, "issuer_serial": {
                    "issuer": [asn1_x509.GeneralName({"directory_name": self._asn1_cert.issuer})],
                    "serial_number": self._asn1_cert.serial_number}}]}]}),
        ])
        to_sign = signed_attrs.dump()
        if isinstance(self.key, rsa.RSAPrivateKey):
            signature = self.key.sign(to_sign, padding.PKCS1v15(), hashes.SHA256())
            sig_alg = "sha256_rsa"
        else:
            signature = self.key.sign(to_sign, ec.ECDSA(hashes.SHA256()))
            sig_alg = "sha256_ecdsa"
        signer = cms.SignerInfo({
            "version": "v1",
            "sid": cms.SignerIdentifier({"issuer_and_serial_number": {
                "issuer": self._asn1_cert.issuer, "serial_number": self._asn1_cert.serial_number}}),
            "digest_algorithm": algos.DigestAlgorithm({"algorithm": "sha256"}),
            "signed_attrs": signed_attrs,
            "signature_algorithm": algos.SignedDigestAlgorithm({"algorithm": sig_alg}),
            "signature": signature,
        })
        signed_data = cms.SignedData({
            "version": "v3",
            "digest_algorithms": [algos.DigestAlgorithm({"algorithm": "sha256"})],
            "encap_content_info": {"content_type": "tst_info", "content": core.ParsableOctetString(content)},
            "certificates": [self._asn1_cert] if cert_req else [],
            "signer_infos": [signer],
        })
        token = cms.ContentInfo({"content_type": "signed_data", "content": signed_data})
        response: bytes = tsp.TimeStampResp({"status": {"status": "granted"}, "time_stamp_token": token}).dump()
        return response

    def _refusal(self, failure: str, text: str) -> bytes:
        response: bytes = tsp.TimeStampResp({"status": {"status": "rejection", "status_string": [text],
                                                        "fail_info": tsp.PKIFailureInfo({failure})}}).dump()
        return response


def make_server(tsa: DevTsa, host: str = "127.0.0.1", port: int = 0) -> ThreadingHTTPServer:
    """An HTTP server answering RFC 3161 queries (POST, application/timestamp-query) on ``host:port``."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            length = int(self.headers.get("Content-Length") or 0)
            if self.headers.get("Content-Type", "").split(";")[0].strip() != CONTENT_TYPE_QUERY or not 0 < length < 65536:
                self.send_error(415, "POST an application/timestamp-query")
                return
            body = tsa.reply(self.rfile.read(length))
            self.send_response(200)
            self.send_header("Content-Type", CONTENT_TYPE_REPLY)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:  # noqa: N802
            body = b"viss-bridge development TSA: POST application/timestamp-query\n"
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    return server
