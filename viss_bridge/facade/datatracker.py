"""The data tracker in the X-Road dialect: a person sees who read their data and restricts it.

Modelled on Estonia's data tracker protocol: the person's portal (a client
holding the ``datatracker`` permission) calls these services on the bridge's
own provider identifier (setting ``provider``) with the **person as the
``userId`` header** (``LV`` + personal code, or the bare code). Services:

- ``findUsage(offset, limit)``: the person's usage entries, newest first;
- ``restrictDistribution(dataset, reason)`` / ``liftRestriction(dataset)``;
- ``listRestrictions()``: the person's restrictions in force.

The WSDL is at ``GET /tracker?wsdl``; the services are called at ``/xroad``.
"""

from __future__ import annotations

import logging
from typing import Any, Callable

from spyne import Boolean, ComplexModel, DateTime, Integer, Integer64, ServiceBase, Unicode, rpc

from viss_bridge.access.registry import AccessRegistry, AccessStoreUnavailable, PermissionProblem
from viss_bridge.access.tracker import DataTracker, person_key
from viss_bridge.facade import faults
from viss_bridge.facade.faults import BridgeFault
from viss_bridge.facade.soap_runtime import (SpyneWsdl, REQUEST_CONTEXT, SoapRequest, SoapResponse, bounded_int,
                                             make_spyne_wsgi, run_spyne)
from viss_bridge.facade.xroad_wsdl import add_xroad_headers

log = logging.getLogger(__name__)

TRACKER_TNS = "http://vissbridge.gov.lv/xroad/datatracker"
TRACKER_PERMISSION = "datatracker"  # the "dataset" a person portal is granted to call these services
OPERATIONS = ("findUsage", "restrictDistribution", "liftRestriction", "listRestrictions")
MAX_LIMIT = 1000

_req = {"min_occurs": 1, "nillable": False}
_opt = {"min_occurs": 0, "nillable": False}


class Usage(ComplexModel):
    __namespace__ = TRACKER_TNS
    _type_info = [("logTime", DateTime(**_req)), ("receiver", Unicode(**_req)), ("dataset", Unicode(**_req)),
                  ("purpose", Unicode(**_opt)), ("permission", Unicode(**_opt)), ("userId", Unicode(**_opt)),
                  ("messageId", Unicode(**_opt))]


class UsagePage(ComplexModel):
    __namespace__ = TRACKER_TNS
    _type_info = [("usage", Usage.customize(max_occurs="unbounded", **_opt)), ("total", Integer64(**_req)),
                  ("offset", Integer(**_req))]


class Restriction(ComplexModel):
    __namespace__ = TRACKER_TNS
    _type_info = [("dataset", Unicode(**_req)), ("since", DateTime(**_req)), ("reason", Unicode(**_opt)),
                  ("active", Boolean(**_req)), ("register", Unicode(**_opt))]


def _restriction(r: Any) -> Restriction:
    """The register says what the restriction covers: every dataset publishing it, not only ``dataset``."""
    return Restriction(dataset=r.dataset, since=r.created_at, reason=r.reason, active=r.active, register=r.register)


class DataTrackerService:
    def __init__(self, registry: AccessRegistry, tracker: DataTracker, provider: str,
                 personal_dataset: Callable[[str], Any], base_url: str) -> None:
        self.registry = registry
        self.tracker = tracker
        self.provider = provider
        self.personal_dataset = personal_dataset  # name -> the Dataset if it has personal data (a subject), else None
        self.base_url = base_url.rstrip("/")
        self.wsgi = make_spyne_wsgi([self._service_class()], TRACKER_TNS, "viss_bridge_datatracker", echo_header=True)
        location = f"{self.base_url}/xroad"
        self.wsdl = SpyneWsdl(self.wsgi, location, lambda body: add_xroad_headers(body, {}, location))

    def can_handle(self, call: Any) -> bool:
        """The tracker's services, addressed to the bridge's own provider id (an X-Road handler)."""
        service = call.header.service
        return service.provider == self.provider and self.serves(service.service_code)

    def serves(self, service_code: str | None) -> bool:
        return service_code in OPERATIONS

    def _service_class(self) -> type[ServiceBase]:
        service = self

        def person_of(ctx: Any) -> str:
            return ctx.transport.req_env[REQUEST_CONTEXT].person

        def unavailable(exc: Exception) -> BridgeFault:
            log.error("tracker store unavailable: %s", exc)
            return faults.service_failed("DatabaseError", "The data tracker is not available")

        @rpc(Integer(**_opt), Integer(**_opt), _args=("offset", "limit"), _returns=UsagePage,
             _operation_name="findUsage", _out_variable_name="usages")
        def findUsage(ctx: Any, offset: int | None, limit: int | None) -> Any:
            # an absent limit is 100; limit=0 is refused, never silently 100
            offset = bounded_int(offset, "offset", 0, default=0)
            limit = bounded_int(limit, "limit", 1, MAX_LIMIT, default=100)
            try:
                entries, total = service.tracker.usage(person_of(ctx), offset, limit)
            except AccessStoreUnavailable as exc:
                raise unavailable(exc) from None
            return UsagePage(usage=[Usage(logTime=u.at, receiver=u.client_id, dataset=u.dataset, purpose=u.purpose,
                                          permission=u.permission_number, userId=u.user_id, messageId=u.message_id)
                                    for u in entries], total=total, offset=offset)

        @rpc(Unicode(**_req), Unicode(**_opt), _args=("dataset", "reason"), _returns=Restriction,
             _operation_name="restrictDistribution", _out_variable_name="restriction")
        def restrictDistribution(ctx: Any, dataset: str, reason: str | None) -> Any:
            d = service.personal_dataset(dataset)
            if d is None:
                raise BridgeFault(faults.INVALID_REQUEST, f"Unknown dataset, or one without personal data: {dataset}")
            call = ctx.transport.req_env[REQUEST_CONTEXT]
            r = service.tracker.restrict(person_of(ctx), d, reason or "", actor=f"person:{call.person} via {call.client}")
            return _restriction(r)

        @rpc(Unicode(**_req), _args=("dataset",), _returns=Restriction,
             _operation_name="liftRestriction", _out_variable_name="restriction")
        def liftRestriction(ctx: Any, dataset: str) -> Any:
            call = ctx.transport.req_env[REQUEST_CONTEXT]
            try:
                r = service.tracker.lift(person_of(ctx), service.personal_dataset(dataset) or dataset,
                                         actor=f"person:{call.person} via {call.client}")
            except PermissionProblem as exc:
                raise BridgeFault(faults.INVALID_REQUEST, str(exc)) from None
            return _restriction(r)

        @rpc(_returns=Restriction.customize(max_occurs="unbounded", **_opt), _operation_name="listRestrictions",
             _out_variable_name="restriction")
        def listRestrictions(ctx: Any) -> Any:
            return [_restriction(r) for r in service.tracker.restrictions(person_of(ctx))]

        return type("DataTracker", (ServiceBase,), {"findUsage": findUsage, "restrictDistribution": restrictDistribution,
                                                   "liftRestriction": liftRestriction,
                                                   "listRestrictions": listRestrictions})

    def handle(self, call: Any, request: SoapRequest, environ: dict[str, Any]) -> SoapResponse:
        """``call`` is the X-Road facade's XRoadCall (header checked, caller resolved)."""
        code = call.header.service.service_code
        if request.body_element.tag != f"{{{TRACKER_TNS}}}{code}":
            raise BridgeFault(faults.INVALID_REQUEST, f"The body of {code} must be in namespace {TRACKER_TNS}")
        caller = call.caller
        if caller is None or caller.anonymous:
            raise BridgeFault(faults.ACCESS_DENIED, "Request is not allowed: the data tracker needs an authenticated client")
        if TRACKER_PERMISSION not in self.registry.allowed_datasets(caller.client_id):
            raise BridgeFault(faults.ACCESS_DENIED, f"Request is not allowed: client {caller.client_id} has no "
                                                    f"permission for the data tracker ({TRACKER_PERMISSION})")
        if not call.header.user_id:
            raise BridgeFault(faults.MISSING_HEADER, "Required field 'userId' (the person) is missing from the SOAP header")
        call.person = person_key(call.header.user_id)
        call.client = caller.client_id
        return run_spyne(self.wsgi, environ, request, call)

