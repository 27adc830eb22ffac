"""Who a SOAP request is served for: the proven identity checked against the message's client.

The server establishes the transport identity (TLS client certificate or a
certificate forwarded by a trusted proxy) before any facade runs and leaves
it in the environ. A WS-Security signature is message-level, so it is checked
here, on the parsed envelope. Disagreements become the X-Road faults:
``Client.InconsistentHeaders`` (a known connection naming another client) or
``Server.ServerProxy.AccessDenied`` (an unknown or invalid certificate).
"""

from __future__ import annotations

import logging
from typing import Any

from viss_bridge.access.identity import (IDENTITY_ENV, WS_SECURITY, Authenticator, Caller, CertificateInfo, Identity,
                                         IdentityProblem)
from viss_bridge.facade import faults
from viss_bridge.facade.faults import BridgeFault
from viss_bridge.facade.soap_runtime import SoapRequest
from viss_bridge.xml import NS_SOAP11

log = logging.getLogger(__name__)

NS_WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
CALLER_ENV = "viss_bridge.caller"


def resolve_caller(environ: dict[str, Any], authenticator: Authenticator | None, claimed: str | None,
                   request: SoapRequest | None = None, soap_ns: str = NS_SOAP11) -> Caller:
    """The caller for this request; raises BridgeFault when proof and message disagree."""
    if authenticator is None:  # a facade used without a server (unit use): the header is all there is
        caller = Caller(claimed, "header" if claimed else None)
        environ[CALLER_ENV] = caller
        return caller
    identity: Identity | None = environ.get(IDENTITY_ENV)
    if request is not None and request.header is not None and request.header.find(f"{{{NS_WSSE}}}Security") is not None:
        signed = wss_identity(request, authenticator, soap_ns)
        if identity is not None and identity.client_id != signed.client_id:
            raise BridgeFault(faults.INCONSISTENT_HEADERS,
                              f"The TLS client certificate ({identity.client_id or 'unregistered'}) and the "
                              f"WS-Security signature ({signed.client_id or 'unregistered'}) name different connections")
        identity = signed
    try:
        caller = authenticator.caller(identity, claimed)
    except IdentityProblem as problem:
        code = faults.INCONSISTENT_HEADERS if problem.kind == "inconsistent" else faults.ACCESS_DENIED
        raise BridgeFault(code, problem.message) from None
    environ[CALLER_ENV] = caller
    return caller


# -- WS-Security ------------------------------------------------------------------------
# SEAM(issue-5/WSS): viss_bridge.security (the lead's package) provides
# wssecurity.verify_envelope(envelope, trust, soap_ns=..., ...) -> VerifiedMessage
# (.certificate, .body, .signed_ids) and TrustStore. Until it is merged, a
# signed message is refused with AccessDenied ("cannot be verified on this
# node") rather than believed. Adapt _trust_store() if TrustStore's loader differs.

_trust_cache: dict[str, Any] = {}


def _trust_store(security: Any, path: str) -> Any:
    store = _trust_cache.get(path)
    if store is None:
        trust_cls = security.TrustStore
        for loader in ("from_pem_file", "from_file", "load"):
            if hasattr(trust_cls, loader):
                store = getattr(trust_cls, loader)(path)
                break
        else:
            store = trust_cls(path)
        _trust_cache[path] = store
    return store


def wss_identity(request: SoapRequest, authenticator: Authenticator, soap_ns: str) -> Identity:
    """Verify the message's WS-Security signature; the signer's certificate is the identity."""
    trust_path = getattr(authenticator, "wss_trust_ca", "")
    try:
        from viss_bridge.security import wssecurity  # type: ignore[attr-defined]
        from viss_bridge.security import pki  # noqa: F401  (TrustStore may live in either module)
    except ImportError:
        raise BridgeFault(faults.ACCESS_DENIED, "The message is signed with WS-Security, but WS-Security signatures "
                                                "cannot be verified on this node yet; use a TLS client certificate") from None
    if not trust_path:
        raise BridgeFault(faults.ACCESS_DENIED, "The message is signed with WS-Security, but this node has no "
                                                "WS-Security trust store configured (wss_trust_ca)")
    security = wssecurity if hasattr(wssecurity, "TrustStore") else pki
    try:
        verified = wssecurity.verify_envelope(request.envelope, _trust_store(security, trust_path), soap_ns=soap_ns)
    except getattr(wssecurity, "SecurityError", Exception) as exc:
        reason = getattr(exc, "reason", None) or str(exc)
        raise BridgeFault(faults.ACCESS_DENIED, f"The WS-Security signature was not accepted: {reason}") from None
    body = verified.body
    children = [c for c in body if isinstance(c.tag, str)] if body is not None else []
    if len(children) != 1 or children[0] is not request.body_element:
        # Only the verified Body may be processed (signature wrapping defence).
        raise BridgeFault(faults.ACCESS_DENIED, "The WS-Security signature does not cover the Body being served")
    from cryptography.hazmat.primitives import serialization

    der = verified.certificate.public_bytes(serialization.Encoding.DER)
    return authenticator.from_certificate(CertificateInfo.from_der(der), WS_SECURITY)

