"""The access decision the facades ask for: may this client read this dataset?

Rules by the manifest's ``access`` level:
- ``open``: anyone, even an unregistered caller (open data);
- ``public``: any registered client;
- ``restricted`` and ``private``: only a client holding a permission for the dataset.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING

from viss_bridge.access.registry import AccessRegistry

if TYPE_CHECKING:
    from viss_bridge.catalog.manifest import Dataset


class RegistryPolicy:
    """Answers from the database, with a short cache so a lookup does not cost two queries.

    ``ttl`` bounds how long a revoked permission may still be honoured by one worker.
    """

    def __init__(self, registry: AccessRegistry, ttl: float = 1.0) -> None:
        self.registry = registry
        self.ttl = ttl
        self._cache: dict[str | None, tuple[float, bool, frozenset[str]]] = {}
        self._lock = threading.Lock()

    def _lookup(self, client: str | None) -> tuple[bool, frozenset[str]]:
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(client)
            if hit and now - hit[0] < self.ttl:
                return hit[1], hit[2]
        if client is None:
            known, allowed = False, frozenset()
        else:
            known = self.registry.client(client) is not None
            allowed = frozenset(self.registry.allowed_datasets(client)) if known else frozenset()
        with self._lock:
            self._cache[client] = (now, known, allowed)
        return known, allowed

    def may_call(self, client: str | None, dataset: "Dataset") -> bool:
        level = dataset.access.value
        if level == "open":
            return True
        known, allowed = self._lookup(client)
        if level == "public":
            return known
        return dataset.dataset in allowed

    def allowed(self, client: str | None, datasets: list["Dataset"]) -> list["Dataset"]:
        return [d for d in datasets if self.may_call(client, d)]
