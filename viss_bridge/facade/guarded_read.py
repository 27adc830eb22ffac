"""The one guarded read every face calls: decide, read, withhold, count, narrow.

Every face that serves records (X-Road, catalog-native, VISS, legacy contracts, and any face
added later) goes through :class:`GuardedRead`, so an access rule is written once and a face
cannot be weaker than another:

1. **decide**: the caller's permission for the dataset (:meth:`GuardedRead.decide`);
2. **read**: the record(s) from the store or, for a live legacy dataset, from the provider;
3. **withhold**: records whose data subject restricted the dataset's register are refused
   (a lookup) or left out (a feed, whose total does not reveal them) unless the permission's
   legal basis overrides the restriction;
4. **count**: the permission use is reserved (exact quotas) and the data-tracker entries of the
   persons in the answer are held on the call; both are settled only after the exchange is in
   the message log (``exchange.settle_uses``), so a refused answer spends nothing;
5. **narrow**: only the fields the permission reads (key fields always stay).

It raises only the project's own :class:`~viss_bridge.facade.faults.BridgeFault`; the Spyne glue
(``soap_runtime``) is the one place where those become Spyne faults.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Protocol, Sequence

from viss_bridge.access.identity import Caller
from viss_bridge.access.policy import AMBIGUOUS, Decision
from viss_bridge.access.registry import AccessStoreUnavailable, UseRefused
from viss_bridge.catalog.manifest import Dataset
from viss_bridge.catalog.search import SearchPage, SearchProblem, SearchRequest, path_steps
from viss_bridge.catalog.store import Change, StoreUnavailable
from viss_bridge.catalog.values import ValueProblem
from viss_bridge.facade import faults
from viss_bridge.facade.exchange import CallInfo
from viss_bridge.facade.faults import BridgeFault

log = logging.getLogger(__name__)


class Permissions(Protocol):
    """What the faces need to know about access; ``viss_bridge.access.policy`` implements it."""

    def may_call(self, client: Caller | str | None, dataset: Dataset) -> bool: ...

    def allowed(self, client: Caller | str | None, datasets: list[Dataset]) -> list[Dataset]: ...

    def decide(self, client: Caller | str | None, dataset: Dataset, number: str | None = None, *,
               require_choice: bool = False) -> Decision: ...

    def withheld(self, decision: Decision, dataset: Dataset, persons: Any) -> set[str]: ...

    def reserve_use(self, decision: Decision, dataset: Dataset, persons: Any, *, user_id: str | None = None,
                    message_id: str | None = None) -> Any: ...

    def withheld_subjects(self, decision: Decision, dataset: Dataset) -> Any: ...


# -- the narrowing rule and the data subject, once ------------------------------------------------

def readable_names(dataset: Dataset, fields: Sequence[str] | None) -> set[str] | None:
    """The field names a permission reading ``fields`` sees (None: all); key fields always stay."""
    return None if fields is None else set(fields) | set(dataset.key)


def narrowed(dataset: Dataset, fields: Sequence[str] | None) -> Dataset:
    """The dataset as a permission with readable ``fields`` sees it (for its WSDL and record types)."""
    keep = readable_names(dataset, fields)
    if keep is None:
        return dataset
    return dataset.model_copy(update={"fields": tuple(f for f in dataset.fields if f.name in keep)})


def narrow_record(dataset: Dataset, fields: Sequence[str] | None, record: dict[str, Any]) -> dict[str, Any]:
    keep = readable_names(dataset, fields)
    return record if keep is None else {k: v for k, v in record.items() if k in keep}


def subject_of(dataset: Dataset, record: dict[str, Any] | None) -> str | None:
    """Whose personal data ``record`` is (the manifest's ``subject`` field), if anyone's."""
    if record is None or not dataset.subject:
        return None
    value = record.get(dataset.subject)
    return str(value) if value not in (None, "") else None


def subjects_of(dataset: Dataset, records: Iterable[dict[str, Any] | None]) -> list[str]:
    return [person for person in (subject_of(dataset, r) for r in records) if person is not None]


def refuse_unreadable_criteria(dataset: Dataset, fields: Sequence[str] | None, paths: Iterable[str]) -> None:
    """AccessDenied naming the field when a criterion is a field the permission does not read (a search by
    it would tell its value); every search face asks this, through :meth:`GuardedRead.search` or before."""
    readable = readable_names(dataset, fields)
    for path in paths:
        top = path_steps(path)[0][0]
        if readable is not None and top not in readable:
            raise BridgeFault(faults.ACCESS_DENIED, f"Request is not allowed: your permission does not read "
                                                    f"'{top}', so it may not search by '{path}'")


# -- answers ----------------------------------------------------------------------------------------

def withheld_fault(dataset: Dataset) -> BridgeFault:
    """The answer to a lookup whose record its data subject restricted (docs/access.md).

    A fault, not an empty answer: a consumer that does not know restrictions must not read
    "withheld" as "no such person", and the service's contract (its WSDL, generated stubs)
    stays exactly as it was.
    """
    return BridgeFault(faults.ACCESS_DENIED_RESTRICTED,
                       f"The data subject has restricted the distribution of this {dataset.dataset} record; "
                       "your permission does not rest on a legal obligation that overrides the restriction")


@dataclass
class FeedItem:
    """One change of a feed as the caller may see it: ``record`` narrowed, or None when deleted or withheld."""

    change: Change
    record: dict[str, Any] | None
    withheld: bool = False


class GuardedRead:
    """Reads records for a caller with every access rule applied; shared by all faces of one catalog version."""

    def __init__(self, store: Any, permissions: Permissions) -> None:
        self.store = store  # DatasetStore, or SourceRouter (live legacy datasets go to their provider)
        self.permissions = permissions

    def decide(self, caller: Caller | str | None, dataset: Dataset, permission: str | None = None, *,
               require_choice: bool = False) -> Decision:
        """The caller's permission for ``dataset``, or ``AccessDenied`` saying why not.

        ``permission``: the number the caller chose (REST ``X-DAGR-Permission``); ``require_choice``:
        refuse a caller holding several usable permissions that named none (``PermissionRequired``).
        """
        try:
            decision = self.permissions.decide(caller, dataset, permission, require_choice=require_choice)
        except AccessStoreUnavailable as exc:
            log.error("permission store unavailable: %s", exc)
            raise faults.service_failed("DatabaseError", "The permission store is not available; "
                                                         "the request was not served") from None
        if not decision.allowed:
            code = faults.PERMISSION_REQUIRED if decision.refusal == AMBIGUOUS else faults.ACCESS_DENIED
            raise BridgeFault(code, decision.message)
        return decision

    def lookup(self, decision: Decision, dataset: Dataset, key_values: dict[str, Any], info: CallInfo, *,
               empty_key_finds_nothing: bool = False) -> dict[str, Any] | None:
        """One record by key, as the permission may see it; None when there is none.

        ``empty_key_finds_nothing``: an old contract whose provider answered an empty key with its
        not-found answer (not a fault) keeps doing so, after the same access decision.
        """
        if empty_key_finds_nothing and any(str(v).strip() == "" for v in key_values.values()):
            record = None
        else:
            record = self._read(dataset, lambda: self.store.get(dataset, key_values))
        persons = subjects_of(dataset, [record])
        if persons and self._withheld(decision, dataset, persons):
            raise withheld_fault(dataset)
        self._count(decision, dataset, persons, info)
        return narrow_record(dataset, decision.fields, record) if record is not None else None

    def feed(self, decision: Decision, dataset: Dataset, read: Callable[[int], list[Change]], limit: int,
             info: CallInfo) -> tuple[list[FeedItem], bool]:
        """A page of at most ``limit`` changes, and whether more follow.

        ``read(n)`` fetches up to ``n`` changes from the store (the face knows its cursor); the records
        of persons who restricted the register are left out (``withheld``), uncounted and untracked.
        """
        changes = self._read(dataset, lambda: read(limit + 1))
        more = len(changes) > limit
        changes = changes[:limit]
        persons = subjects_of(dataset, [c.record for c in changes])
        withheld = self._withheld(decision, dataset, persons) if persons else set()
        self._count(decision, dataset, [p for p in persons if p not in withheld], info)
        items = []
        for change in changes:
            hidden = bool(withheld) and subject_of(dataset, change.record) in withheld
            record = None if change.record is None or hidden else narrow_record(dataset, decision.fields, change.record)
            items.append(FeedItem(change, record, hidden))
        return items, more

    def search(self, decision: Decision, dataset: Dataset, request: SearchRequest, info: CallInfo) -> SearchPage:
        """A page of the records matching ``request``, as the permission may see them, and the total.

        The same rules as a lookup: a criterion must be a field the permission reads (a search by a
        field one may not read would reveal it); persons who restricted the register are left out of
        the page and the total (in SQL) unless the legal basis overrides it; one use per answer, an
        empty one too; a tracker entry per person in the page; records narrowed to readable fields.
        """
        source = dataset.source
        if getattr(source, "mode", None) == "live":  # a live legacy_soap or platform dataset
            raise BridgeFault(faults.INVALID_REQUEST, f"{dataset.dataset} is answered live by its provider and "
                                                      "cannot be searched; look records up by key")
        refuse_unreadable_criteria(dataset, decision.fields, request.criteria)
        exclude = self._guarded(lambda: self.permissions.withheld_subjects(decision, dataset), "restriction register")
        try:
            page = self._read(dataset, lambda: self.store.search(dataset, request, exclude_subjects=exclude))
        except SearchProblem as exc:
            raise BridgeFault(faults.INVALID_REQUEST, f"Invalid search: {exc}") from None
        persons = subjects_of(dataset, page.records)
        self._count(decision, dataset, persons, info)
        return SearchPage(records=[narrow_record(dataset, decision.fields, r) for r in page.records], total=page.total,
                          page=page.page, next_cursor=page.next_cursor)

    # -- the steps ------------------------------------------------------------------------------------

    def _guarded(self, ask: Callable[[], Any], what: str) -> Any:
        try:
            return ask()
        except AccessStoreUnavailable as exc:
            log.error("%s unavailable: %s", what, exc)
            raise faults.service_failed("DatabaseError", f"The {what} is not available; "
                                                         "the request was not served") from None

    def _read(self, dataset: Dataset, read: Callable[[], Any]) -> Any:
        try:
            return read()
        except ValueProblem as exc:
            raise BridgeFault(faults.INVALID_REQUEST, f"Invalid key: {exc}") from None
        except StoreUnavailable as exc:
            log.error("dataset store unavailable: %s", exc)
            raise faults.service_failed("DatabaseError", f"The dataset store is not available; the request for "
                                                         f"{dataset.dataset} was not served") from None

    def _withheld(self, decision: Decision, dataset: Dataset, persons: list[str]) -> set[str]:
        try:
            return set(self.permissions.withheld(decision, dataset, persons))
        except AccessStoreUnavailable as exc:
            log.error("restriction store unavailable: %s", exc)
            raise faults.service_failed("DatabaseError", "The restriction register is not available; "
                                                         "the request was not served") from None

    def _count(self, decision: Decision, dataset: Dataset, persons: list[str], info: CallInfo) -> None:
        """Reserve the use and hold the tracker entries on the call (settled after the log commit)."""
        try:
            pending = self.permissions.reserve_use(decision, dataset, persons, user_id=info.user_id,
                                                   message_id=info.message_id)
        except UseRefused as exc:
            raise BridgeFault(faults.ACCESS_DENIED, f"Request is not allowed: {exc}") from None
        except AccessStoreUnavailable as exc:
            log.error("permission store unavailable: %s", exc)
            raise faults.service_failed("DatabaseError", "The permission store is not available; "
                                                         "the request was not served") from None
        if pending is not None:
            info.uses.append(pending)
        info.permission = decision.permission.number if decision.permission else None
        info.subjects.extend(persons)
