"""Searches on the REST face: the answer's JSON and its OpenAPI parts (parameters, page schema).

``GET /rest/{dataset}?<index path>=<value>[&...]&page=&page_size=`` or ``&cursor=`` answers
``{"records": [...], "total": N, "page": P, "page_size": S, "next_cursor": C|null, "has_more": B}``
(docs/rest.md). The query parameters are the manifest's index paths as written
(``owners[].person_code``), so one name means one field on every face.
"""

from __future__ import annotations

from typing import Any

from viss_bridge.catalog.manifest import Dataset
from viss_bridge.catalog.search import SearchPage, SearchRequest, end_field
from viss_bridge.facade.rest_json import json_record, parameter_schema
from viss_bridge.facade.search_paging import DEFAULT_PAGE_SIZE, MAX_CURSOR_CHARS, MAX_PAGE, MAX_PAGE_SIZE, searchable


def search_page_json(view: Dataset, request: SearchRequest, found: SearchPage) -> dict[str, Any]:
    """One answered page; ``view`` is the dataset as the permission reads it."""
    document: dict[str, Any] = {"records": [json_record(view, r) for r in found.records], "total": found.total}
    if found.page is not None:
        document["page"] = found.page
    document.update(page_size=request.page_size, next_cursor=found.next_cursor,
                    has_more=found.next_cursor is not None)
    return document


def search_parameters(view: Dataset) -> list[dict[str, Any]]:
    """The optional query parameters of a search: each readable index, then the paging ones."""
    parameters = []
    for path in searchable(view):
        field = end_field(view, path)
        scalar = field.item_field if field.is_value_list else field
        schema = parameter_schema(scalar.model_copy(update={"nillable": False}))
        parameters.append({"name": path, "in": "query", "required": False, "schema": schema,
                           "description": f"search: records whose {path} equals this value"})
    parameters += [
        {"name": "page", "in": "query", "required": False, "description": "search: the page number (1-based)",
         "schema": {"type": "integer", "minimum": 1, "maximum": MAX_PAGE}},
        {"name": "page_size", "in": "query", "required": False, "description": "search: records per page",
         "schema": {"type": "integer", "minimum": 1, "maximum": MAX_PAGE_SIZE, "default": DEFAULT_PAGE_SIZE}},
        {"name": "cursor", "in": "query", "required": False,
         "description": "search: next_cursor of the previous page (instead of page)",
         "schema": {"type": "string", "minLength": 1, "maxLength": MAX_CURSOR_CHARS}}]
    return parameters


def search_page_schema(name: str) -> dict[str, Any]:
    return {"type": "object", "title": f"{name} search page", "additionalProperties": False,
            "required": ["records", "total", "page_size", "next_cursor", "has_more"],
            "properties": {
                "records": {"type": "array", "items": {"$ref": f"#/components/schemas/{name}_record"},
                            "description": "in record-key order"},
                "total": {"type": "integer", "minimum": 0,
                          "description": "every match the caller may see (withheld persons are not counted)"},
                "page": {"type": "integer", "minimum": 1, "description": "the page answered (page paging)"},
                "page_size": {"type": "integer", "minimum": 1, "maximum": MAX_PAGE_SIZE},
                "next_cursor": {"type": ["string", "null"], "description": "cursor of the next page; null on the last"},
                "has_more": {"type": "boolean"}}}
