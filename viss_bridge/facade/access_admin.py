"""``/access``: the SOAP admin service for access requests and permissions (WSDL at ``/access?wsdl``).

The caller is a connection authenticated like any other (TLS client
certificate, trusted proxy, WS-Security; the ``caller`` header names it and
must match). A consumer requests access and lists its requests and
permissions; a data owner (the dataset manifest's ``owner``, or its member)
lists requests for its datasets, approves (possibly narrowing), rejects with
a reason, and revokes permissions. Every step is audited by the access package.
"""

from __future__ import annotations

import logging
from typing import Any, Callable

from spyne import Boolean, ComplexModel, DateTime, Integer64, ServiceBase, Unicode, rpc

from viss_bridge.access.audit import AuditFailed
from viss_bridge.access.identity import Authenticator, Caller
from viss_bridge.access.registry import AccessStoreUnavailable, Permission as PermissionRow, PermissionProblem
from viss_bridge.access.requests import AccessRequest as RequestRow, AccessRequests, Actor, NotAllowed
from viss_bridge.facade import faults
from viss_bridge.facade.callers import CALLER_ENV, read_caller_header, resolve_caller
from viss_bridge.facade.exchange import CallInfo
from viss_bridge.facade.faults import BridgeFault
from viss_bridge.facade.pipeline import HttpAnswer
from viss_bridge.facade.soap_runtime import (SpyneWsdl, SoapRequest, SoapResponse, bounded_int, make_spyne_wsgi,
                                             run_spyne)
from viss_bridge.xml import NS_SOAP11, local_name

log = logging.getLogger(__name__)

ACCESS_TNS = "http://vissbridge.gov.lv/access"
OPERATIONS = ("requestAccess", "listRequests", "approveRequest", "rejectRequest", "revokePermission",
              "listPermissions")

_req = {"min_occurs": 1, "nillable": False}
_opt = {"min_occurs": 0, "nillable": False}
_many = {"min_occurs": 0, "max_occurs": "unbounded", "nillable": False}


class CallerHeader(ComplexModel):
    __namespace__ = ACCESS_TNS
    __type_name__ = "caller"
    _type_info = [("client", Unicode(**_req)), ("userId", Unicode(**_opt))]


class AccessRequest(ComplexModel):
    __namespace__ = ACCESS_TNS
    _type_info = [("requestId", Unicode(**_req)), ("client", Unicode(**_req)), ("dataset", Unicode(**_req)),
                  ("allFields", Boolean(**_req)), ("field", Unicode.customize(**_many)),
                  ("purpose", Unicode(**_req)), ("legalBasis", Unicode(**_req)),
                  ("legalObligation", Boolean(**_req)), ("validTo", DateTime(**_opt)), ("quota", Integer64(**_opt)),
                  ("status", Unicode(**_req)), ("createdAt", DateTime(**_req)), ("decidedAt", DateTime(**_opt)),
                  ("decidedBy", Unicode(**_opt)), ("reason", Unicode(**_opt)), ("permission", Unicode(**_opt))]


class Permission(ComplexModel):
    __namespace__ = ACCESS_TNS
    _type_info = [("number", Unicode(**_req)), ("client", Unicode(**_req)), ("dataset", Unicode(**_req)),
                  ("purpose", Unicode(**_req)), ("legalBasis", Unicode(**_req)),
                  ("legalObligation", Boolean(**_req)), ("allFields", Boolean(**_req)),
                  ("field", Unicode.customize(**_many)), ("validFrom", DateTime(**_req)),
                  ("validTo", DateTime(**_opt)), ("quota", Integer64(**_opt)), ("used", Integer64(**_req)),
                  ("status", Unicode(**_req)), ("requestId", Unicode(**_opt)), ("revokedReason", Unicode(**_opt))]


def _request(r: RequestRow) -> AccessRequest:
    return AccessRequest(requestId=r.request_id, client=r.client_id, dataset=r.dataset, allFields=r.fields is None,
                         field=list(r.fields or []), purpose=r.purpose, legalBasis=r.legal_basis,
                         legalObligation=r.legal_obligation, validTo=r.valid_to, quota=r.quota, status=r.status,
                         createdAt=r.created_at, decidedAt=r.decided_at, decidedBy=r.decided_by, reason=r.reason,
                         permission=r.permission_number)


def _permission(p: PermissionRow) -> Permission:
    return Permission(number=p.number, client=p.client_id, dataset=p.dataset, purpose=p.purpose,
                      legalBasis=p.legal_basis, legalObligation=p.legal_obligation, allFields=p.fields is None,
                      field=list(p.fields or []), validFrom=p.valid_from, validTo=p.valid_to, quota=p.quota,
                      used=p.used, status=p.state(), requestId=p.request_id, revokedReason=p.revoked_reason)


class AccessAdminFacade:
    """Built once per process; ``requests`` resolves datasets against the current catalog."""

    def __init__(self, requests: AccessRequests, authenticator: Authenticator | None, base_url: str,
                 on_change: Callable[[str], None] | None = None, operator_clients: str = "") -> None:
        self.requests = requests
        # Operator rights come only from this configured list of authenticated connections, never from
        # how a caller's id is spelled.
        self.operator_clients = frozenset(c.strip() for c in operator_clients.split(",") if c.strip())
        self.authenticator = authenticator
        self.base_url = base_url.rstrip("/")
        self.on_change = on_change or (lambda _client: None)
        self.wsgi = make_spyne_wsgi([self._service_class()], ACCESS_TNS, "viss_bridge_access")
        self.wsdl_document = SpyneWsdl(self.wsgi, f"{self.base_url}/access")

    def _service_class(self) -> type[ServiceBase]:
        facade = self

        def actor(ctx: Any) -> Actor:
            caller: Caller | None = ctx.transport.req_env.get(CALLER_ENV)
            if caller is None or caller.anonymous:
                raise BridgeFault(faults.ACCESS_DENIED,
                                             "Request is not allowed: the access service needs an authenticated client")
            assert caller.client_id is not None
            return Actor(caller.client_id, operator=caller.client_id in facade.operator_clients)

        def run(step: Callable[[], Any]) -> Any:
            try:
                return step()
            except NotAllowed as exc:
                raise BridgeFault(faults.ACCESS_DENIED, f"Request is not allowed: {exc}") from None
            except PermissionProblem as exc:
                raise BridgeFault(faults.INVALID_REQUEST, str(exc)) from None
            except (AccessStoreUnavailable, AuditFailed) as exc:
                log.error("access store or audit unavailable: %s", exc)
                raise faults.service_failed("DatabaseError", "The access register is not available; "
                                                                        "nothing was changed") from None

        @rpc(Unicode(**_req), Unicode.customize(**_many), Unicode(**_req), Unicode(**_req), Boolean(**_opt),
             DateTime(**_opt), Integer64(**_opt),
             _args=("dataset", "field", "purpose", "legalBasis", "legalObligation", "validTo", "quota"),
             _returns=AccessRequest, _operation_name="requestAccess", _out_variable_name="request")
        def requestAccess(ctx: Any, dataset: str, field: list[str] | None, purpose: str, legalBasis: str,
                          legalObligation: bool | None, validTo: Any, quota: int | None) -> Any:
            who = actor(ctx)
            quota = _quota(quota)
            return _request(run(lambda: facade.requests.submit(
                who.name, dataset, purpose=purpose or "", legal_basis=legalBasis or "", fields=field or None,
                legal_obligation=bool(legalObligation), valid_to=validTo, quota=quota)))

        @rpc(Unicode(**_opt), Unicode(**_opt), _args=("status", "dataset"),
             _returns=AccessRequest.customize(**_many), _operation_name="listRequests", _out_variable_name="request")
        def listRequests(ctx: Any, status: str | None, dataset: str | None) -> Any:
            who = actor(ctx)
            return [_request(r) for r in run(lambda: facade.requests.list(actor=who, status=status, dataset=dataset))]

        @rpc(Unicode(**_req), Unicode.customize(**_many), DateTime(**_opt), DateTime(**_opt), Integer64(**_opt),
             Unicode(**_opt), _args=("requestId", "field", "validFrom", "validTo", "quota", "note"),
             _returns=Permission, _operation_name="approveRequest", _out_variable_name="permission")
        def approveRequest(ctx: Any, requestId: str, field: list[str] | None, validFrom: Any, validTo: Any,
                           quota: int | None, note: str | None) -> Any:
            who = actor(ctx)
            quota = _quota(quota)
            _, permission = run(lambda: facade.requests.approve(requestId, who, fields=field or None,
                                                                valid_from=validFrom, valid_to=validTo, quota=quota,
                                                                note=note or ""))
            facade.on_change(permission.client_id)
            return _permission(permission)

        @rpc(Unicode(**_req), Unicode(**_req), _args=("requestId", "reason"), _returns=AccessRequest,
             _operation_name="rejectRequest", _out_variable_name="request")
        def rejectRequest(ctx: Any, requestId: str, reason: str) -> Any:
            who = actor(ctx)
            return _request(run(lambda: facade.requests.reject(requestId, who, reason or "")))

        @rpc(Unicode(**_req), Unicode(**_opt), _args=("number", "reason"), _returns=Permission,
             _operation_name="revokePermission", _out_variable_name="permission")
        def revokePermission(ctx: Any, number: str, reason: str | None) -> Any:
            who = actor(ctx)
            permission = run(lambda: facade.requests.revoke(number, who, reason or ""))
            facade.on_change(permission.client_id)
            return _permission(permission)

        @rpc(Unicode(**_opt), _args=("dataset",), _returns=Permission.customize(**_many),
             _operation_name="listPermissions", _out_variable_name="permission")
        def listPermissions(ctx: Any, dataset: str | None) -> Any:
            who = actor(ctx)
            return [_permission(p) for p in run(lambda: facade.requests.permissions_visible_to(who, dataset))]

        body = {"__in_header__": CallerHeader, "requestAccess": requestAccess, "listRequests": listRequests,
                "approveRequest": approveRequest, "rejectRequest": rejectRequest,
                "revokePermission": revokePermission, "listPermissions": listPermissions}
        return type("AccessService", (ServiceBase,), body)

    name = "access"
    soap_ns = NS_SOAP11

    def handle(self, published: Any, request: SoapRequest, environ: dict[str, Any], info: CallInfo) -> SoapResponse:
        operation = local_name(request.body_element)
        info.service = info.operation = operation
        read_caller_header(request, ACCESS_TNS, info)
        if request.body_element.tag not in {f"{{{ACCESS_TNS}}}{op}" for op in OPERATIONS}:
            raise BridgeFault(faults.UNKNOWN_SERVICE, f"Unknown operation {request.body_element.tag}; this endpoint "
                                                      f"offers {', '.join(OPERATIONS)} in namespace {ACCESS_TNS}")
        caller = resolve_caller(environ, self.authenticator, (info.client or "").strip() or None, request)
        info.authenticated_by = caller.authenticated_by
        return run_spyne(self.wsgi, environ, request, info)

    def wsdl(self, published: Any, environ: dict[str, Any], query: dict[str, list[str]]) -> HttpAnswer:
        return HttpAnswer.xml(self.wsdl_document())



def _quota(quota: int | None) -> int | None:
    """A quota fits the store's 64-bit integers, or is Client.InvalidRequest naming it."""
    return bounded_int(quota, "quota", 0)
