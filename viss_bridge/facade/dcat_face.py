"""``GET /dcat``: the DCAT-AP catalogue of this node, answered over HTTP (graph: catalog/dcat.py).

The graph needs two things the catalog package may not know: which legacy
contracts are served (and for which datasets), and the node's public URL and
provider. This module gathers them, so the endpoint and ``viss-bridge catalog
dcat`` build one and the same graph.
"""

from __future__ import annotations

from typing import Any

from viss_bridge.catalog.catalog import Catalog
from viss_bridge.catalog.dcat import FORMATS, Faces, build_catalog, negotiate, serialize
from viss_bridge.catalog.manifest import ManifestError
from viss_bridge.config import Settings
from viss_bridge.facade.legacy_contract import LegacyContracts

# /rest and /rest/openapi.json are served by this bridge (facade/rest.py)
REST_MOUNTED = True
XROAD_REST_MOUNTED = True  # /r1 (facade/xroad_rest.py)


def dcat_graph(settings: Settings, catalog: Catalog, contracts: LegacyContracts) -> Any:
    """The DCAT-AP graph of what this node serves, with URLs from the public URL."""
    legacy: dict[str, list[str]] = {}
    for name in contracts.names():
        try:  # a contract that is broken or does not fit the catalog is not served, so it is not listed
            contract = contracts.get(name)
            if contract is not None:
                contract.check_against(catalog)
                legacy[name] = [op.mapping.dataset for op in contract.operations.values()]
        except ManifestError:
            continue
    return build_catalog(catalog, Faces(settings.base_url, settings.provider, legacy, rest=REST_MOUNTED,
                                         xroad_rest=XROAD_REST_MOUNTED))


def dcat_answer(settings: Settings, catalog: Catalog, contracts: LegacyContracts,
                accept: str | None) -> tuple[int, str, bytes]:
    """(status, content type, body) for a GET with this ``Accept``: Turtle, JSON-LD, or 406 naming both."""
    fmt = negotiate(accept)
    if fmt is None:
        offered = ", ".join(media for _, media in FORMATS.values())
        return 406, "text/plain; charset=utf-8", f"not acceptable; offered: {offered}\n".encode()
    body = serialize(dcat_graph(settings, catalog, contracts), fmt)
    return 200, f"{FORMATS[fmt][1]}; charset=utf-8", body
