"""One request/response exchange as the message log and the metrics see it.

Every SOAP endpoint produces an :class:`Exchange` after computing its answer
and before sending it. Sinks (the message log) get it first; if a sink
fails, the consumer gets ``Server.ServerProxy.IOError.LoggingFailed``
instead of the answer, so nothing is served unlogged.
"""

from __future__ import annotations

import datetime as dt
import os
import time
import uuid
from dataclasses import dataclass, field, replace
import logging
from typing import Any, Protocol

from viss_bridge.access.policy import commit_uses
from viss_bridge.facade import faults

log = logging.getLogger(__name__)


def time_ordered_uuid() -> str:
    """A new UUID of version 7 (RFC 9562): 48 bits of Unix time in milliseconds, then 74 random bits.

    Why not version 4: the message log indexes every record by its exchange id, and a random id lands
    on a random leaf of that index, so each exchange dirtied a page of its own in the commit that every
    worker waits for (about 3 of 25 pages per commit, issue 12). Ids of one moment sort together, so
    concurrent exchanges share the index's newest pages. Still unique (74 random bits per millisecond)
    and still a plain UUID to anyone who only compares them.
    """
    value = (time.time_ns() // 1_000_000 & (1 << 48) - 1) << 80 | int.from_bytes(os.urandom(10), "big")
    value = value & ~(0xF << 76) | 0x7 << 76  # version 7
    value = value & ~(0x3 << 62) | 0x2 << 62  # the RFC 4122/9562 variant
    return str(uuid.UUID(int=value))


@dataclass
class CallInfo:
    """What a facade learned about the caller and the call (filled in as far as parsing got)."""

    client: str | None = None
    service: str | None = None  # full identifier, e.g. LV/GOV/90000100015/FPR/fpr_person/v1
    operation: str | None = None  # short name for metrics: serviceCode or operation name
    message_id: str | None = None
    user_id: str | None = None
    subjects: list[str] = field(default_factory=list)
    authenticated_by: str | None = None  # tls | proxy | ws-security | header (development) | None
    permission: str | None = None  # number of the permission the answer was served under
    # Permission uses reserved while answering (access.policy.PendingUse): final only once the answer is logged.
    uses: list[Any] = field(default_factory=list)
    # Ties every logged message of this call together (consumer and provider legs); see docs/message-log.md.
    exchange_id: str = field(default_factory=time_ordered_uuid)


@dataclass
class Exchange:
    endpoint: str
    dialect: str
    started_at: dt.datetime
    duration_ms: float
    request: bytes
    response: bytes
    status: int
    info: CallInfo
    fault_code: str | None = None
    fault_id: str | None = None
    remote_addr: str | None = None
    # "consumer": a consumer called the bridge (request in, response out);
    # "provider": the bridge called a legacy provider (request out, response in).
    leg: str = "consumer"
    peer: str | None = None  # provider name and address on the provider leg
    error: str | None = None  # provider leg: why no (usable) answer came, e.g. a timeout
    # The answer's reserved uses (access.policy.PendingUse), to be made final by the last sink once it has
    # recorded the exchange (the message log, in the thread that committed it: :func:`settle_logged`);
    # whatever is still unsettled afterwards, settle_uses settles.
    settle: list[Any] = field(default_factory=list)


class ExchangeSink(Protocol):
    """Receives every exchange before its response leaves; raising blocks the response."""

    def record(self, exchange: Exchange) -> None: ...


def settle_uses(info: CallInfo, served: bool) -> None:
    """Make the call's reserved uses final (answer logged and served) or give them back (refused, faulted).

    Runs after the sinks: the tracker entries are written only once the answer's log records have
    committed. Giving back never fails the answer. If writing the entries fails after the log committed,
    the answer is still served (the log already holds it); the log's records carry the subjects and the
    exchange id, from which the entries can be restored, and the error line names the exchange.
    """
    uses, info.uses = info.uses, []
    for use in uses:
        try:
            use.commit() if served else use.release()
        except Exception as exc:
            log.error("settling a permission use failed", exc_info=exc,
                      extra={"exchange_id": info.exchange_id, "served": served,
                             "permission": getattr(use, "number", None)})


def settle_logged(batches: list[tuple[str, list[Any]]]) -> None:
    """Make final the uses of answers whose records have just committed (``MessageLog.on_commit``).

    One call per log commit, from the thread that committed it, with each exchange's id and ``settle`` list:
    the tracker entries of every answer in the commit go into one access-store transaction, instead of
    each answer's thread waiting for a second group commit of its own (issue 12). A failure is reported
    per exchange, as :func:`settle_uses` does; the answers stay served.
    """
    try:
        commit_uses([use for _exchange_id, uses in batches for use in uses])
    except Exception as exc:
        for exchange_id, uses in batches:
            for use in uses:
                log.error("settling a permission use failed", exc_info=exc,
                          extra={"exchange_id": exchange_id, "served": True, "permission": getattr(use, "number", None)})


def record_exchange(sinks: "list[ExchangeSink]", exchange: Exchange) -> faults.BridgeFault | None:
    """Hand ``exchange`` to every sink before its response leaves (log before respond).

    Returns None when every sink took it, else the ``LoggingFailed`` BridgeFault the face must answer
    with instead of the data (its id is in the error line). Every face calls this one function, so a
    face cannot serve what the message log refused. Only the last sink sees ``exchange.settle``: uses
    are made final only once every sink has taken the exchange.
    """
    earlier = replace(exchange, settle=[]) if exchange.settle and len(sinks) > 1 else exchange
    for position, sink in enumerate(sinks):
        try:
            sink.record(exchange if position == len(sinks) - 1 else earlier)
        except Exception as exc:
            fault = faults.BridgeFault(faults.LOGGING_FAILED,
                                       "The message log could not be written; the request was not served")
            log.error("message log write failed", exc_info=exc,
                      extra={"fault_id": fault.fault_id, "endpoint": exchange.endpoint})
            return fault
    return None
