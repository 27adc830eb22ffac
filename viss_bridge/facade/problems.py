"""The bridge's faults as RFC 9457 problem details (``application/problem+json``) for the REST face.

A REST consumer gets the same fault as a SOAP consumer, in HTTP's words: an HTTP status, a
``type`` URI per kind of problem (so a client can tell a restricted person from a missing
permission without parsing text), the fault's message as ``detail``, and the fault UUID as
``instance`` (``urn:uuid:...``) plus the bridge's own ``fault_code``: the UUID finds the
exchange in the message log (``viss-bridge log find --fault-id``), as a SOAP ``faultDetail`` does.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from viss_bridge.facade import faults
from viss_bridge.facade.faults import BridgeFault

PROBLEM_TYPE_PREFIX = "urn:viss-bridge:problem:"
PROBLEM_CONTENT_TYPE = "application/problem+json"

# Codes only the REST face answers with (the SOAP faces answer a missing record with an empty answer).
NOT_FOUND = "Client.NotFound"
METHOD_NOT_ALLOWED = "Client.MethodNotAllowed"


@dataclass(frozen=True)
class ProblemKind:
    status: int
    slug: str
    title: str

    @property
    def type(self) -> str:
        return PROBLEM_TYPE_PREFIX + self.slug


# Exact codes first; then ServiceFailed causes; then the Client./Server. prefix decides (problem_kind).
KINDS: dict[str, ProblemKind] = {
    faults.UNKNOWN_SERVICE: ProblemKind(404, "unknown-service", "Unknown dataset"),
    faults.UNKNOWN_MEMBER: ProblemKind(404, "unknown-member", "Unknown provider"),
    NOT_FOUND: ProblemKind(404, "not-found", "No record with this key"),
    faults.ACCESS_DENIED: ProblemKind(403, "access-denied", "Access denied"),
    faults.ACCESS_DENIED_RESTRICTED: ProblemKind(403, "subject-restriction",
                                                 "Withheld: the data subject restricted its distribution"),
    faults.PERMISSION_REQUIRED: ProblemKind(400, "permission-required",
                                            "Name the permission to use in X-DAGR-Permission"),
    faults.INVALID_REQUEST: ProblemKind(400, "invalid-request", "Invalid request"),
    faults.INCONSISTENT_HEADERS: ProblemKind(400, "inconsistent-client", "The client named is not the one proven"),
    faults.INVALID_CLIENT_IDENTIFIER: ProblemKind(400, "invalid-client", "Invalid client identifier"),
    faults.MESSAGE_TOO_LARGE: ProblemKind(413, "too-large", "Request too large"),
    faults.REQUEST_TIMEOUT: ProblemKind(408, "request-timeout", "Request not received in time"),
    METHOD_NOT_ALLOWED: ProblemKind(405, "method-not-allowed", "Method not allowed"),
    faults.LOGGING_FAILED: ProblemKind(503, "logging-failed", "The message log could not be written"),
    faults.TIMESTAMPING_FAILED: ProblemKind(503, "timestamping-failed", "Trusted time is unavailable"),
}
# Server.ServerProxy.ServiceFailed.<cause>: our own store is 503 (try again), a provider's failure 502/504.
SERVICE_FAILED: dict[str, ProblemKind] = {
    "DatabaseError": ProblemKind(503, "store-unavailable", "A store of the bridge is not available"),
    "InternalError": ProblemKind(500, "internal-error", "Internal error"),
    "SigningFailed": ProblemKind(500, "internal-error", "Internal error"),
    "ProviderTimeout": ProblemKind(504, "provider-timeout", "The dataset's provider did not answer in time"),
    "ProviderBusy": ProblemKind(503, "provider-busy", "The dataset's provider is busy"),
}
PROVIDER_FAILED = ProblemKind(502, "provider-failed", "The dataset's provider failed")
CLIENT_ERROR = ProblemKind(400, "invalid-request", "Invalid request")
SERVER_ERROR = ProblemKind(500, "internal-error", "Internal error")


def problem_kind(code: str) -> ProblemKind:
    """The HTTP status and problem type of a fault code."""
    if code in KINDS:
        return KINDS[code]
    if code.startswith(faults.SERVICE_FAILED + "."):
        return SERVICE_FAILED.get(code.removeprefix(faults.SERVICE_FAILED + "."), PROVIDER_FAILED)
    return CLIENT_ERROR if code.startswith("Client.") else SERVER_ERROR


def problem_json(fault: BridgeFault) -> tuple[int, dict[str, Any]]:
    """The HTTP status and problem document of ``fault``."""
    kind = problem_kind(fault.code)
    return kind.status, {"type": kind.type, "title": kind.title, "status": kind.status, "detail": fault.message,
                         "instance": f"urn:uuid:{fault.fault_id}", "fault_code": fault.code}


def problem_body(fault: BridgeFault) -> tuple[int, bytes]:
    status, document = problem_json(fault)
    return status, json.dumps(document, ensure_ascii=False).encode()


def problem_types() -> list[ProblemKind]:
    """Every problem kind the face can answer with (docs/rest.md lists them)."""
    seen: dict[str, ProblemKind] = {}
    for kind in (*KINDS.values(), *SERVICE_FAILED.values(), PROVIDER_FAILED, CLIENT_ERROR, SERVER_ERROR):
        seen.setdefault(kind.slug + str(kind.status), kind)
    return list(seen.values())
