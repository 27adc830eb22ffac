"""The access decision the facades ask for, and the bookkeeping after an answer.

Rules by the manifest's ``access`` level:
- ``open``: anyone, even an anonymous caller (open data);
- ``public``: any registered (authenticated) client;
- ``restricted`` and ``private``: only a client holding a usable permission
  (active, inside its validity window, under its quota).

With several usable permissions for one dataset, the one resting on a legal
obligation is used first, then the oldest, unless the caller names one by its
number (the REST face's ``X-DAGR-Permission``; a face may also insist on a
name when the choice is ambiguous, ``require_choice``). Its readable fields shape the
answer and the client's WSDL; its use is reserved (exactly, in the database)
when the answer is ready, and the reservation and the data tracker entries
become final only once the answer's message log records have committed
(:class:`PendingUse`): an answer refused with LoggingFailed is neither
counted nor tracked.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterable

from viss_bridge.access.batch import AccessWrites
from viss_bridge.access.identity import Caller
from viss_bridge.access.registry import AccessRegistry, Permission, UsageRow, now_utc
from viss_bridge.access.tracker import DataTracker, person_key

if TYPE_CHECKING:
    from viss_bridge.catalog.manifest import Dataset

# Why a decision refused (stable words; the facades turn them into fault texts).
NOT_AUTHENTICATED = "not-authenticated"
NO_PERMISSION = "no-permission"
NOT_HELD = "not-held"  # the named permission is not the caller's for this dataset
AMBIGUOUS = "ambiguous"  # several usable permissions and the face requires the caller to name one


@dataclass(frozen=True)
class Decision:
    allowed: bool
    dataset: str
    client_id: str | None
    permission: Permission | None = None
    refusal: str | None = None  # not-authenticated | no-permission | revoked | expired | exhausted | not-yet-valid
    message: str = ""

    @property
    def fields(self) -> tuple[str, ...] | None:
        """Readable top-level fields; None: all."""
        return self.permission.fields if self.permission is not None else None

    @property
    def legal_obligation(self) -> bool:
        return bool(self.permission and self.permission.legal_obligation)


def _as_caller(client: "Caller | str | None") -> Caller:
    if isinstance(client, Caller):
        return client
    return Caller(client, "header" if client else None)


class RegistryPolicy:
    """Answers from the database, with a short per-worker cache.

    ``ttl`` bounds how long one worker reuses what it read. A refusal is
    always re-checked in the database (so a permission approved a moment ago
    works at once), and revocation, expiry and quota are checked again in the
    database when a use is counted, so they take effect at once.
    """

    def __init__(self, registry: AccessRegistry, ttl: float = 1.0, tracker: DataTracker | None = None) -> None:
        self.registry = registry
        self.tracker = tracker or DataTracker(registry.engine, registry.audit)
        # Uses and tracker entries of concurrent answers share one transaction (exact: see access.batch).
        self.writes = AccessWrites(registry.engine)
        self.ttl = ttl
        self._cache: dict[str, tuple[float, bool, tuple[Permission, ...]]] = {}
        self._lock = threading.Lock()

    def _lookup(self, client: str, fresh: bool = False) -> tuple[bool, tuple[Permission, ...]]:
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(client)
            if hit and now - hit[0] < self.ttl and not fresh:
                return hit[1], hit[2]
        known = self.registry.client(client) is not None
        held = tuple(self.registry.permissions(client_id=client, include_revoked=True)) if known else ()
        with self._lock:
            self._cache[client] = (now, known, held)
        return known, held

    def forget(self, client: str | None = None) -> None:
        with self._lock:
            if client is None:
                self._cache.clear()
            else:
                self._cache.pop(client, None)

    def decide(self, client: "Caller | str | None", dataset: "Dataset", number: str | None = None, *,
               require_choice: bool = False) -> Decision:
        """The permission ``client`` reads ``dataset`` under.

        ``number``: the permission the caller chose (it must be the caller's, for this dataset, and
        usable now); without it the rule above picks one, or, with ``require_choice``, a caller holding
        several usable permissions is refused (``AMBIGUOUS``) so that its use is counted against
        the permission it meant.
        """
        decision = self._decide(client, dataset, False, number, require_choice)
        if not decision.allowed and decision.client_id is not None and decision.refusal != AMBIGUOUS:
            # A refusal is checked against the database, not the cache: a permission approved a
            # moment ago works at once, and the refusal names the current reason.
            decision = self._decide(client, dataset, True, number, require_choice)
        return decision

    def _decide(self, client: "Caller | str | None", dataset: "Dataset", fresh: bool, number: str | None = None,
                require_choice: bool = False) -> Decision:
        caller = _as_caller(client)
        level = dataset.access.value
        name = dataset.dataset
        if caller.anonymous:
            if level == "open":
                return Decision(True, name, None)
            return Decision(False, name, None, refusal=NOT_AUTHENTICATED,
                            message=f"Request is not allowed: an anonymous caller (not authenticated: present a "
                                    f"registered TLS client certificate or a WS-Security signature) may read only "
                                    f"open data, and {name} is not open data")
        assert caller.client_id is not None
        known, held = self._lookup(caller.client_id, fresh)
        now = now_utc()
        mine = [p for p in held if p.dataset == name]
        if number is not None:
            return self._chosen(caller.client_id, name, mine, number, now)
        usable = sorted((p for p in mine if p.usable(now)), key=lambda p: (not p.legal_obligation, p.created_at))
        if require_choice and len(usable) > 1:
            numbers = ", ".join(p.number for p in usable)
            return Decision(False, name, caller.client_id, refusal=AMBIGUOUS,
                            message=f"Request is not allowed: client {caller.client_id} holds {len(usable)} usable "
                                    f"permissions for {name} ({numbers}); name the one to use")
        if usable:
            return Decision(True, name, caller.client_id, usable[0])
        if level == "open" or (level == "public" and known):
            return Decision(True, name, caller.client_id)
        if mine:
            latest = max(mine, key=lambda p: p.created_at)
            return Decision(False, name, caller.client_id, latest, refusal=latest.state(now),
                            message=f"Request is not allowed: {latest.refusal(now)}")
        who = f"client {caller.client_id}" + ("" if known else " (not a registered connection)")
        return Decision(False, name, caller.client_id, refusal=NO_PERMISSION,
                        message=f"Request is not allowed: {who} has no permission for {name}")

    @staticmethod
    def _chosen(client: str, name: str, mine: list[Permission], number: str, now: dt.datetime) -> Decision:
        chosen = next((p for p in mine if p.number == number), None)
        if chosen is None:
            return Decision(False, name, client, refusal=NOT_HELD,
                            message=f"Request is not allowed: client {client} holds no permission {number} "
                                    f"for {name}")
        if not chosen.usable(now):
            return Decision(False, name, client, chosen, refusal=chosen.state(now),
                            message=f"Request is not allowed: {chosen.refusal(now)}")
        return Decision(True, name, client, chosen)

    # -- what the older facades call ------------------------------------------------

    def may_call(self, client: "Caller | str | None", dataset: "Dataset") -> bool:
        return self.decide(client, dataset).allowed

    def allowed(self, client: "Caller | str | None", datasets: list["Dataset"]) -> list["Dataset"]:
        return [d for d in datasets if self.may_call(client, d)]

    # -- after the answer is computed ------------------------------------------------

    def withheld(self, decision: Decision, dataset: "Dataset", persons: Iterable[str]) -> set[str]:
        """Persons whose records must be left out: they restrict the register the dataset publishes (whichever
        copy of it they named) and the permission is no legal obligation."""
        persons = [p for p in persons if p]
        if not dataset.subject or not persons or decision.legal_obligation:
            return set()
        return self.tracker.restricted(dataset, persons)

    def withheld_subjects(self, decision: Decision, dataset: "Dataset") -> Any:
        """The persons a search must leave out, as SQL the dataset store runs inside its query (so that
        neither a page nor its total reveals them); None when nobody is (no subject, legal obligation)."""
        if not dataset.subject or decision.legal_obligation:
            return None
        return self.tracker.restricting(dataset)

    def reserve_use(self, decision: Decision, dataset: "Dataset", persons: Iterable[str], *,
                    user_id: str | None = None, message_id: str | None = None) -> "PendingUse | None":
        """Reserve the use now (exact quota; raises UseRefused) and hold the tracker entries until the answer is logged.

        The caller settles the result: :meth:`PendingUse.commit` once the answer's log records have
        committed, :meth:`PendingUse.release` if the answer is not served.
        """
        permission = decision.permission
        client = decision.client_id or "anonymous"
        rows = [UsageRow(person=person_key(p), client_id=client, dataset=dataset.dataset,
                         purpose=permission.purpose if permission else None,
                         permission_number=permission.number if permission else None, user_id=user_id,
                         message_id=message_id) for p in dict.fromkeys(persons) if p]
        number = permission.number if permission is not None else None
        if number is None and not rows:
            return None
        counted_when_served = False
        if number is not None:
            try:
                # Unlimited: checked now, counted with the tracker entries once served; a quota: reserved now.
                counted_when_served = self.writes.unlimited(number)
                if not counted_when_served:
                    self.writes.reserve(number)
            except Exception:
                if decision.client_id:
                    self.forget(decision.client_id)  # let the next decision see why
                raise
        self._forget_count(decision)
        return PendingUse(self, decision, number, rows, counted_when_served=counted_when_served)

    def record_use(self, decision: Decision, dataset: "Dataset", persons: Iterable[str], *,
                   user_id: str | None = None, message_id: str | None = None) -> None:
        """Count the use and write the tracker entries at once (no message log involved, e.g. tools)."""
        pending = self.reserve_use(decision, dataset, persons, user_id=user_id, message_id=message_id)
        if pending is not None:
            pending.commit()

    def _forget_count(self, decision: Decision) -> None:
        permission = decision.permission
        if permission is not None and permission.quota is not None and decision.client_id:
            self.forget(decision.client_id)  # the cached use count is stale now


def commit_uses(uses: Iterable["PendingUse"]) -> None:
    """:meth:`PendingUse.commit` for the answers of one message log commit, one transaction per access store.

    Marks them settled first: if the write fails, the answers stay served (their records are in the
    log) and nothing is written twice; the error propagates to the caller, who reports it.
    """
    by_store: dict[int, tuple[AccessWrites, list[tuple[list[UsageRow], str | None]]]] = {}
    for use in uses:
        if use.settled:
            continue
        use.settled = True
        writes = use.policy.writes
        by_store.setdefault(id(writes), (writes, []))[1].append(use.served_write())
    for writes, answers in by_store.values():
        writes.track_many(answers)


@dataclass
class PendingUse:
    """One answer's reserved permission use and its tracker entries, not yet final.

    The facades collect these on the call (``CallInfo.uses``); the server settles them after the
    exchange went to the message log, so counting and tracking commit only with the answer's log records.
    """

    policy: RegistryPolicy
    decision: Decision
    number: str | None
    rows: list[UsageRow]
    counted_when_served: bool = False  # an unlimited permission: its use is counted here, with the entries
    settled: bool = False

    def served_write(self) -> tuple[list[UsageRow], str | None]:
        """What serving the answer writes: its tracker entries, and the unlimited permission whose use it counts
        (None: a quota's use was reserved already, or no permission)."""
        return self.rows, self.number if self.counted_when_served else None

    def commit(self) -> None:
        """The answer's log records committed: write its tracker entries (and count an unlimited permission's use;
        a quota's use was reserved already)."""
        if self.settled:
            return
        self.settled = True
        rows, count = self.served_write()
        self.policy.writes.track(rows, count=count)

    def release(self) -> None:
        """The answer was refused (or replaced by a fault): give the use back and write no tracker entry."""
        if self.settled:
            return
        self.settled = True
        if self.number is not None and not self.counted_when_served:
            self.policy.writes.release(self.number)
            self.policy._forget_count(self.decision)
