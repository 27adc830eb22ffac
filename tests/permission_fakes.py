"""A permission policy for tests of the guarded read and the faces above it: allows or refuses everyone,
narrows to ``fields``, withholds the persons in ``restricted``, can refuse a use or have its registry down,
and remembers every reservation."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from viss_bridge.access.policy import Decision
from viss_bridge.access.registry import AccessStoreUnavailable, UseRefused
from viss_bridge.catalog.manifest import Dataset


@dataclass
class FakePermission:
    number: str = "P-1"
    fields: tuple[str, ...] | None = None


@dataclass
class FakePermissions:
    allowed: bool = True
    fields: tuple[str, ...] | None = None
    restricted: set[str] = field(default_factory=set)
    refuse_use: bool = False
    registry_down: bool = False
    reserved: list[list[str]] = field(default_factory=list)

    def decide(self, caller: Any, dataset: Dataset, number: str | None = None, **_: Any) -> Decision:
        if not self.allowed:
            return Decision(False, dataset.dataset, caller, refusal="no-permission", message="no permission for you")
        return Decision(True, dataset.dataset, caller, permission=FakePermission(fields=self.fields))  # type: ignore[arg-type]

    def withheld(self, decision: Decision, dataset: Dataset, persons: Any) -> set[str]:
        if self.registry_down:
            raise AccessStoreUnavailable("restrictions down")
        return {p for p in persons if p in self.restricted}

    def reserve_use(self, decision: Decision, dataset: Dataset, persons: Any, **_: Any) -> Any:
        if self.refuse_use:
            raise UseRefused(None, "quota of 5 uses is spent")
        self.reserved.append(list(persons))
        return ("pending", tuple(persons))
