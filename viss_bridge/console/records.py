"""Console steps on the message log: a support lookup or an owner's decision is an exchange like any other.

The step goes through :func:`viss_bridge.facade.exchange.record_exchange`, the one function every
face hands its exchanges to, so it lands on the node's signed chain (endpoint ``console``, client
``console:<account>``) before the page shows anything; if the log cannot be written the page shows
nothing (log before respond).
"""

from __future__ import annotations

import datetime as dt
import json
import time
from typing import Any, Iterable

from viss_bridge.facade.exchange import CallInfo, Exchange, record_exchange
from viss_bridge.facade.faults import BridgeFault


def record_step(node: Any, account: str, step: str, asked: dict[str, Any], answered: dict[str, Any], *,
                remote_addr: str | None = None, subjects: Iterable[str] = (), object_id: str | None = None,
                started: float | None = None) -> BridgeFault | None:
    """Log one console step (who, what, why, what was shown); None when logged, else the LoggingFailed fault."""
    def body(value: dict[str, Any]) -> bytes:
        return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str).encode()

    began = started if started is not None else time.perf_counter()
    info = CallInfo(client=f"console:{account}", service=f"console/{step}", operation=step, message_id=object_id,
                    user_id=account, subjects=list(subjects), authenticated_by="console")
    exchange = Exchange(endpoint="console", dialect="console", started_at=dt.datetime.now(dt.timezone.utc),
                        duration_ms=(time.perf_counter() - began) * 1000, request=body({"account": account, **asked}),
                        response=body(answered), status=200, info=info, remote_addr=remote_addr)
    return record_exchange(node.sinks, exchange)
