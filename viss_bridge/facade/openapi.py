"""The REST face's OpenAPI 3.1 document, generated from the manifests and narrowed to one caller.

A caller sees the datasets it may call, each with the fields its permission reads (as the
X-Road WSDL of an authenticated client does), so a client generated from the document reads
exactly what the face answers; ``additionalProperties: false`` makes a schema check catch a
field served beyond the permission. The record schemas come from :mod:`rest_json`, the one
mapping of manifest types to JSON.
"""

from __future__ import annotations

from typing import Any, Iterable

from viss_bridge.catalog.manifest import Dataset
from viss_bridge.facade.problems import PROBLEM_CONTENT_TYPE, PROBLEM_TYPE_PREFIX, problem_types
from viss_bridge.facade.rest_json import key_schema, parameter_schema, record_schema
from viss_bridge.facade.rest_search import search_page_schema, search_parameters
from viss_bridge.facade.search_paging import searchable

PERMISSION_HEADER = "X-DAGR-Permission"
MAX_PAGE = 1000
MAX_CURSOR = 2**63 - 1  # a change sequence number is a signed 64-bit integer
# Paths the face answers itself; a dataset of one of these names is reachable only by ?key=value.
META_PATHS = ("service_list", "current_user_permissions", "openapi.json")
FEED_SEGMENT = "changes"

_ERRORS = {"400": "Invalid request (bad key, paging or client identifier; a permission must be named)",
           "403": "Access denied, or withheld by the data subject's restriction",
           "404": "Unknown dataset or no record with this key", "500": "Internal error",
           "502": "The dataset's provider failed", "503": "A store, the message log or trusted time is unavailable",
           "504": "The dataset's provider did not answer in time"}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _responses(ok: dict[str, Any], codes: Iterable[str] = tuple(_ERRORS)) -> dict[str, Any]:
    result = {"200": ok}
    for code in codes:
        result[code] = {"description": _ERRORS[code],
                        "content": {PROBLEM_CONTENT_TYPE: {"schema": _ref("Problem")}}}
    return result


PERMISSION_PARAMETER = {
    "name": PERMISSION_HEADER, "in": "header", "required": False,
    "description": "Number of the permission to read under; required when the client holds several usable "
                   "permissions for the dataset",
    "schema": {"type": "string", "minLength": 1, "maxLength": 64, "pattern": "^[A-Za-z0-9._-]+$"}}


def _lookup_operations(dataset: Dataset) -> dict[str, Any]:
    name = dataset.dataset
    ok = _json(_ref(f"{name}_record"), f"The {name} record, with the fields the permission reads")
    paths: dict[str, Any] = {}
    query = [{"name": f.name, "in": "query", "required": True, "schema": parameter_schema(f)}
             for f in dataset.key_fields]
    paths[f"/rest/{name}"] = {"get": {
        "operationId": f"{name}_by_key", "summary": f"{dataset.title.en}: one record by key "
                                                    f"({', '.join(dataset.key)} as query parameters)",
        "tags": [name], "parameters": [*query, PERMISSION_PARAMETER], "responses": _responses(ok)}}
    if searchable(dataset):  # the same path searches: any other query than exactly the key (docs/rest.md)
        for parameter in query:
            parameter["required"] = False
        found = _json({"oneOf": [_ref(f"{name}_record"), _ref(f"{name}_search_page")]},
                      f"With exactly the key: the {name} record; otherwise a search page")
        paths[f"/rest/{name}"]["get"].update(
            operationId=f"{name}_by_key_or_search",
            summary=f"{dataset.title.en}: one record by key ({', '.join(dataset.key)}), or a search by "
                    f"{', '.join(searchable(dataset))} (paged)",
            parameters=[*query, *search_parameters(dataset), PERMISSION_PARAMETER], responses=_responses(found))
    if len(dataset.key) == 1:
        (field,) = dataset.key_fields
        schema = parameter_schema(field)
        # "changes" is the feed, never a key here; and a key is one path segment.
        schema["not"] = {"const": FEED_SEGMENT}
        if schema.get("type") == "string":
            schema["pattern"] = "^[^/?#%]+$"
        paths[f"/rest/{name}/{{{field.name}}}"] = {"get": {
            "operationId": f"{name}_get", "summary": f"{dataset.title.en}: one record by {field.name}",
            "tags": [name], "parameters": [{"name": field.name, "in": "path", "required": True, "schema": schema},
                                           PERMISSION_PARAMETER],
            "responses": _responses(ok)}}
    page = {"type": "object", "required": ["changes", "next_since", "has_more"], "additionalProperties": False,
            "properties": {
                "changes": {"type": "array", "items": {
                    "type": "object", "required": ["seq", "key", "changed_at", "deleted"],
                    "additionalProperties": False,
                    "properties": {"seq": {"type": "integer"}, "key": key_schema(dataset),
                                   "changed_at": {"type": "string", "format": "date-time"},
                                   "deleted": {"type": "boolean"},
                                   "record": _ref(f"{name}_record"),
                                   "withheld": {"type": "boolean", "description": "the record exists but its data "
                                                "subject restricted its distribution"}}}},
                "next_since": {"type": "integer", "description": "the cursor for the next page"},
                "has_more": {"type": "boolean"}}}
    paths[f"/rest/{name}/{FEED_SEGMENT}"] = {"get": {
        "operationId": f"{name}_changes", "summary": f"{dataset.title.en}: records changed after a cursor",
        "tags": [name], "parameters": [
            {"name": "since", "in": "query", "required": False,
             "schema": {"type": "integer", "minimum": 0, "maximum": MAX_CURSOR, "default": 0}},
            {"name": "limit", "in": "query", "required": False,
             "schema": {"type": "integer", "minimum": 1, "maximum": MAX_PAGE, "default": 100}},
            PERMISSION_PARAMETER],
        "responses": _responses(_json(page, "A page of changes, oldest first"))}}
    return paths


PROBLEM_SCHEMA = {
    "type": "object", "required": ["type", "title", "status", "detail", "instance", "fault_code"],
    "description": f"RFC 9457 problem details; type is {PROBLEM_TYPE_PREFIX}<kind>, instance the fault UUID "
                   "that finds the exchange in the message log",
    "properties": {"type": {"type": "string", "enum": sorted({k.type for k in problem_types()})},
                   "title": {"type": "string"}, "status": {"type": "integer"}, "detail": {"type": "string"},
                   "instance": {"type": "string", "pattern": "^urn:uuid:[0-9a-f-]{36}$"},
                   "fault_code": {"type": "string"}}}

TEXTS = {"type": "object", "properties": {"lv": {"type": "string"}, "en": {"type": "string"}}}

SERVICE_LIST_SCHEMA = {
    "type": "object", "required": ["services"], "properties": {"services": {"type": "array", "items": {
        "type": "object", "required": ["service_name", "version", "title", "owner", "access", "key", "allowed"],
        "properties": {"service_name": {"type": "string"}, "version": {"type": "string"}, "title": TEXTS,
                       "description": TEXTS, "owner": {"type": "string"},
                       "access": {"type": "string", "enum": ["open", "public", "restricted", "private"]},
                       "key": {"type": "array", "items": {"type": "string"}},
                       "subject": {"type": "string"}, "allowed": {"type": "boolean"},
                       "record_path": {"type": "string"}, "changes_path": {"type": "string"},
                       "search_by": {"type": "array", "items": {"type": "string"},
                                     "description": "index paths: GET /rest/{service_name}?<path>=<value>"}}}}}}

TREE_NODE = {"type": "object", "required": ["name", "type", "readable"],
             "properties": {"name": {"type": "string"}, "type": {"type": "string"}, "readable": {"type": "boolean"},
                            "properties": {"type": "array", "items": {"$ref": "#/components/schemas/AccessNode"}}}}

PERMISSIONS_SCHEMA = {
    "type": "object", "required": ["client", "permissions"],
    "properties": {"client": {"type": "string"}, "authenticated_by": {"type": ["string", "null"]},
                   "permissions": {"type": "array", "items": {
                       "type": "object",
                       "required": ["service_name", "permission_number", "purpose_of_use", "use_count",
                                    "use_count_quota", "valid_from", "valid_to", "access_control_tree"],
                       "properties": {
                           "service_name": {"type": "string"}, "permission_number": {"type": "string"},
                           "purpose_of_use": {"type": "string"}, "legal_basis": {"type": "string"},
                           "legal_obligation": {"type": "boolean"}, "use_count": {"type": "integer"},
                           "use_count_quota": {"type": ["integer", "null"]},
                           "valid_from": {"type": "string", "format": "date-time"},
                           "valid_to": {"type": ["string", "null"], "format": "date-time"},
                           "status": {"type": "string"},
                           "access_control_tree": {"oneOf": [{"type": "null"}, {
                               "type": "object", "required": ["service_name", "properties"],
                               "properties": {"service_name": {"type": "string"},
                                              "properties": {"type": "array",
                                                             "items": {"$ref": "#/components/schemas/AccessNode"}}}}]}}}}}}


def build_openapi(datasets: Iterable[Dataset], base_url: str, client: str | None) -> dict[str, Any]:
    """The document for a caller that may call ``datasets`` (each already narrowed to its readable fields)."""
    datasets = sorted(datasets, key=lambda d: d.dataset)
    meta_errors = ("400", "403", "500", "503")
    paths: dict[str, Any] = {
        "/rest/service_list": {"get": {"operationId": "service_list", "summary": "The published datasets",
                                       "responses": _responses(_json(_ref("ServiceList"), "Every published dataset, "
                                                               "and whether this client may call it"), meta_errors)}},
        "/rest/current_user_permissions": {"get": {
            "operationId": "current_user_permissions", "summary": "The calling client's permissions",
            "responses": _responses(_json(_ref("Permissions"), "The client's permissions"), meta_errors)}},
        "/rest/openapi.json": {"get": {"operationId": "openapi", "summary": "This document, for the caller",
                                       "responses": _responses(_json({"type": "object"}, "OpenAPI 3.1"),
                                                               meta_errors)}},
    }
    schemas: dict[str, Any] = {"Problem": PROBLEM_SCHEMA, "ServiceList": SERVICE_LIST_SCHEMA,
                               "Permissions": PERMISSIONS_SCHEMA, "AccessNode": TREE_NODE}
    for dataset in datasets:
        paths.update(_lookup_operations(dataset))
        schemas[f"{dataset.dataset}_record"] = record_schema(dataset)
        if searchable(dataset):
            schemas[f"{dataset.dataset}_search_page"] = search_page_schema(dataset.dataset)
    who = f"client {client}" if client else "an anonymous caller"
    return {
        "openapi": "3.1.0",
        "info": {"title": "viss-bridge REST face (DAGR style)", "version": "1",
                 "description": f"The datasets {who} may call, with the fields its permissions read. Errors are "
                                "RFC 9457 problem details. The caller is identified as on SOAP: TLS client "
                                "certificate or trusted proxy; in development the X-Road-Client header."},
        "servers": [{"url": base_url.rstrip("/")}],
        "paths": paths,
        "components": {"schemas": schemas, "securitySchemes": {
            "clientCertificate": {"type": "mutualTLS", "description": "a registered connection's certificate"},
            "developmentClient": {"type": "apiKey", "in": "header", "name": "X-Road-Client",
                                  "description": "INSTANCE/CLASS/MEMBER[/SUBSYSTEM]; believed only on a node in "
                                                 "development mode (trust_client_header)"}}},
        "security": [{}, {"clientCertificate": []}, {"developmentClient": []}],
    }
