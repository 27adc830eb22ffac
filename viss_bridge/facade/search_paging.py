"""The paging rule of every search face (X-Road, catalog-native, REST), written once.

A search answers one page: by number (``page``, 1-based, offset paging) or after a cursor
(``cursor``, keyset paging: stable while records are added), never both. ``page_size``
defaults to :data:`DEFAULT_PAGE_SIZE`; a page size above :data:`MAX_PAGE_SIZE` is refused
(``Client.InvalidRequest`` naming the maximum), not silently capped, so that a consumer never
believes it read everything when it did not (docs/endpoints.md).
"""

from __future__ import annotations

from typing import Any

from viss_bridge.catalog.manifest import Dataset
from viss_bridge.catalog.search import SearchRequest, path_steps
from viss_bridge.facade import faults
from viss_bridge.facade.faults import BridgeFault

DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100
MAX_PAGE = 1_000_000  # an offset beyond this is no paging a person does; refused rather than scanned
MAX_CURSOR_CHARS = 700  # a cursor is a record key (at most 512 characters) in base64


def search_request(criteria: dict[str, Any], page: int | None, page_size: int | None, cursor: str | None, *,
                   names: tuple[str, str, str] = ("page", "page_size", "cursor")) -> SearchRequest:
    """A checked :class:`SearchRequest`; ``names`` are the face's own words for the three paging inputs."""
    page_name, size_name, cursor_name = names
    if cursor is not None and page is not None:
        raise BridgeFault(faults.INVALID_REQUEST, f"Give {page_name} or {cursor_name}, not both")
    if cursor is not None and (not cursor.strip() or len(cursor) > MAX_CURSOR_CHARS):
        raise BridgeFault(faults.INVALID_REQUEST, f"{cursor_name} is not one this service gave out")
    if page is not None and not 1 <= page <= MAX_PAGE:
        raise BridgeFault(faults.INVALID_REQUEST, f"{page_name} must be between 1 and {MAX_PAGE}, not {page}")
    size = DEFAULT_PAGE_SIZE if page_size is None else page_size
    if not 1 <= size <= MAX_PAGE_SIZE:
        raise BridgeFault(faults.INVALID_REQUEST, f"{size_name} must be between 1 and {MAX_PAGE_SIZE} "
                                                  f"(the maximum page size), not {size}")
    if cursor is None and page is None:
        page = 1
    return SearchRequest(criteria=dict(criteria), page_size=size, page=page, cursor=cursor.strip() if cursor else None)


def searchable(view: Dataset) -> list[str]:
    """The index paths a caller reading ``view``'s fields (a narrowed dataset) may search by: a field
    it may not read is no criterion either, so WSDLs and OpenAPI list only these."""
    readable = {f.name for f in view.fields}
    return [path for path in view.indexes if path_steps(path)[0][0] in readable]
