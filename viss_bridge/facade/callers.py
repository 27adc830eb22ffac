"""Who a SOAP request is served for: the proven identity checked against the message's client.

The server establishes the transport identity (TLS client certificate or a
certificate forwarded by a trusted proxy) before any facade runs and leaves
it in the environ. A WS-Security signature is message-level, so it is checked
here, on the parsed envelope, with its Timestamp (the one freshness rule,
``Freshness``) and, where the endpoint names a signed message id, the shared
replay table. Disagreements become the X-Road faults:
``Client.InconsistentHeaders`` (a known connection naming another client),
``Server.ServerProxy.AccessDenied`` (an unknown or invalid certificate),
``Client.Security.MessageExpired`` (a stale Timestamp, or one whose Expires is
beyond the allowed maximum) and ``Client.Security.Replay`` (an id seen before).
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from cryptography.hazmat.primitives import serialization

from viss_bridge.access.identity import (IDENTITY_ENV, WS_SECURITY, Authenticator, Caller, CertificateInfo, Identity,
                                         IdentityProblem)
from viss_bridge.facade import faults
from viss_bridge.facade.faults import BridgeFault
from viss_bridge.facade.replay import ReplayTable, TooLateToRemember
from viss_bridge.facade.soap_runtime import SoapRequest
from viss_bridge.security.pki import CertificateError as PkiCertificateError, TrustStore
from viss_bridge.security.wssecurity import (NS_WSSE, Freshness, SecurityError, TimestampInvalid, TimestampMissing,
                                             VerifiedMessage, verify_envelope)
from viss_bridge.xml import NS_SOAP11

log = logging.getLogger(__name__)

CALLER_ENV = "viss_bridge.caller"


def read_caller_header(request: SoapRequest, namespace: str, info: Any) -> None:
    """Fill ``info.client`` and ``info.user_id`` from a ``caller`` SOAP header in ``namespace``.

    The catalog-native and access endpoints name their caller this way; what is read here is only
    a claim until :func:`resolve_caller` checks it against the authenticated identity.
    """
    if request.header is not None:
        info.client = request.header.findtext(f"{{{namespace}}}caller/{{{namespace}}}client")
        info.user_id = request.header.findtext(f"{{{namespace}}}caller/{{{namespace}}}userId")


def resolve_caller(environ: dict[str, Any], authenticator: Authenticator | None, claimed: str | None,
                   request: SoapRequest | None = None, soap_ns: str = NS_SOAP11,
                   signed_headers: tuple[str, ...] = (), replay: ReplayTable | None = None,
                   message_id: str | None = None, scope: str = "xroad") -> Caller:
    """The caller for this request; raises BridgeFault when proof and message disagree.

    With ``replay`` and a ``message_id`` (a header that ``signed_headers`` makes the signature
    cover, e.g. X-Road ``id``), a WS-Security signed message is accepted once per signing
    connection: the id is remembered in the shared table for as long as the message could
    pass its freshness check, so a copy sent later, or to another worker, is a replay.
    """
    if authenticator is None:  # a facade used without a server (unit use): the header is all there is
        caller = Caller(claimed, "header" if claimed else None)
        environ[CALLER_ENV] = caller
        return caller
    identity: Identity | None = environ.get(IDENTITY_ENV)
    verified: VerifiedMessage | None = None
    if request is not None and request.header is not None and request.header.find(f"{{{NS_WSSE}}}Security") is not None:
        signed, verified = wss_identity(request, authenticator, soap_ns, signed_headers)
        if identity is not None and identity.client_id != signed.client_id:
            raise BridgeFault(faults.INCONSISTENT_HEADERS,
                              f"The TLS client certificate ({identity.client_id or 'unregistered'}) and the "
                              f"WS-Security signature ({signed.client_id or 'unregistered'}) name different connections")
        identity = signed
    try:
        caller = authenticator.caller(identity, claimed)
    except IdentityProblem as problem:
        code = {"inconsistent": faults.INCONSISTENT_HEADERS,
                "invalid": faults.INVALID_CLIENT_IDENTIFIER}.get(problem.kind, faults.ACCESS_DENIED)
        raise BridgeFault(code, problem.message) from None
    if verified is not None and replay is not None and message_id:
        _refuse_replay(replay, scope, caller.client_id or caller.certificate or "", message_id,
                       verified, freshness(authenticator))
    environ[CALLER_ENV] = caller
    return caller


def freshness(authenticator: Authenticator) -> Freshness:
    """The node's WS-Security freshness rule (settings ``wss_max_age``, ``wss_clock_skew``)."""
    return Freshness(authenticator.wss_max_age, authenticator.wss_clock_skew)


def _refuse_replay(replay: ReplayTable, scope: str, client: str, message_id: str, verified: VerifiedMessage,
                   rule: Freshness) -> None:
    if verified.created is None:  # not reached: a signed request must carry a Timestamp (wss_identity)
        raise BridgeFault(faults.MESSAGE_EXPIRED, "The signed message has no Timestamp Created time")
    try:
        first = replay.first_sighting(scope, client, message_id, rule.remember_until(verified.created))
    except TooLateToRemember as exc:
        raise BridgeFault(faults.MESSAGE_EXPIRED, f"The signed message is not fresh: {exc}") from None
    if not first:
        raise BridgeFault(faults.REPLAY, f"Message {message_id} was already received from {client}; "
                                         f"a signed message is accepted once")


# -- WS-Security ------------------------------------------------------------------------

_trust_lock = threading.Lock()
_trust_stores: dict[str, TrustStore] = {}


def _trust_store(path: str) -> TrustStore:
    with _trust_lock:
        store = _trust_stores.get(path)
        if store is None:
            store = _trust_stores[path] = TrustStore.from_files(path)
        return store


def wss_identity(request: SoapRequest, authenticator: Authenticator, soap_ns: str,
                 signed_headers: tuple[str, ...] = ()) -> tuple[Identity, VerifiedMessage]:
    """Verify the message's WS-Security signature; the signer's certificate is the identity.

    The message must carry a signed ``wsu:Timestamp`` that passes the node's freshness rule:
    without one a signed message could be replayed forever (``AccessDenied``, reason
    ``TimestampMissing``); a stale one, or one whose Expires is beyond ``wss_max_age`` after
    Created, is ``Client.Security.MessageExpired``.

    ``signed_headers`` (Clark tags): header elements that, when present, must be signed too
    (for X-Road: client, service, id, userId, issue), so a signed message cannot be replayed
    under another official's userId or message id.

    The verifier checks the Body it returns is the envelope's own Body and is signed; the
    facade then serves that very element (``request.body_element`` is its child in the same
    tree), so a wrapped or unsigned Body is never served.
    """
    trust_path = authenticator.wss_trust_ca
    if not trust_path:
        raise BridgeFault(faults.ACCESS_DENIED, "The message is signed with WS-Security, but this node has no "
                                                "WS-Security trust store configured (wss_trust_ca)")
    try:
        trust = _trust_store(trust_path)
    except (OSError, PkiCertificateError) as exc:
        log.error("WS-Security trust store unusable: %s", exc)
        raise faults.service_failed("InternalError", "The WS-Security trust store cannot be read") from None
    try:
        verified = verify_envelope(request.envelope, trust, soap_ns=soap_ns, required_headers=signed_headers,
                                   freshness=freshness(authenticator), require_timestamp=True)
    except TimestampInvalid as exc:
        if isinstance(exc, TimestampMissing):
            raise BridgeFault(faults.ACCESS_DENIED, f"The WS-Security signature was not accepted ({exc.reason}): "
                                                    f"{exc}") from None
        raise BridgeFault(faults.MESSAGE_EXPIRED, f"The signed message is not fresh: {exc}") from None
    except SecurityError as exc:
        raise BridgeFault(faults.ACCESS_DENIED,
                          f"The WS-Security signature was not accepted ({exc.reason}): {exc}") from None
    children = [c for c in verified.body if isinstance(c.tag, str)]
    if len(children) != 1 or children[0] is not request.body_element:
        raise BridgeFault(faults.ACCESS_DENIED, "The WS-Security signature does not cover the Body being served")
    der = verified.certificate.public_bytes(serialization.Encoding.DER)
    return authenticator.from_certificate(CertificateInfo.from_der(der), WS_SECURITY), verified


def believed_caller(environ: dict[str, Any], claimed: str | None, authenticator: Authenticator,
                    trust_client_header: bool) -> Caller:
    """The caller of a request that carries no message proof (a GET, a REST call).

    The proven identity (TLS certificate, trusted proxy) decides; a client named by the request
    (``?client=``, ``X-Road-Client``) is believed alone only in development mode. Raises
    IdentityProblem when the name and the proof disagree or the name is not a client id.
    """
    from viss_bridge.access.identity import IDENTITY_ENV

    identity = environ.get(IDENTITY_ENV)
    if identity is None and not trust_client_header:
        claimed = None
    return authenticator.caller(identity, claimed)


def plain_get_caller(environ: dict[str, Any], query: dict[str, list[str]], authenticator: Authenticator,
                     trust_client_header: bool) -> Caller | str:
    """The caller of a plain GET (a WSDL, a page), named by ``?client=``; a message if refused."""
    from viss_bridge.access.identity import IdentityProblem

    try:
        return believed_caller(environ, (query.get("client") or [None])[0], authenticator, trust_client_header)
    except IdentityProblem as problem:
        return problem.message + "\n"
