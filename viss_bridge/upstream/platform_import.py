"""``viss-bridge catalog import-platform URL``: draft manifests from a platform's service list and OpenAPI.

"Configured, not developed": a dataset configured on the platform becomes a SOAP service here by
writing one manifest, and this drafts it. From ``GET {url}/service_list`` each dataset's name,
titles, owner, access level, key and subject; from ``GET {url}/openapi.json`` (where the platform
has one) its record schema, typed back into manifest fields, nested objects and lists included
(the inverse of facade/rest_json.py's mapping: a decimal is a string with the decimal pattern or
``x-manifest-type: decimal``, or a JSON number); from ``GET {url}/current_user_permissions`` the
permission number this bridge's connection reads each dataset under. Only the datasets the
connection may call are drafted. ``TODO(decide)`` marks what a person must decide (owner, access,
the generation-II contracts, a choice between several permissions); everything else is written
so that the draft loads with ``viss-bridge catalog validate`` as it is.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import yaml

from viss_bridge.catalog.manifest import NAME_PATTERN, ManifestError, parse_manifest
from viss_bridge.upstream import errors
from viss_bridge.upstream.errors import UpstreamError

DECIMAL_PATTERN = r"^-?[0-9]+(\.[0-9]+)?$"  # as facade/rest_json.py publishes decimals
SCALARS = {"string", "integer", "decimal", "boolean", "date", "datetime"}


@dataclass
class Draft:
    name: str  # the dataset name here (prefix + the platform's name)
    remote: str
    text: str
    notes: list[str] = field(default_factory=list)


@dataclass
class ImportResult:
    drafts: list[Draft]
    skipped: list[str]  # "name: why"
    written: list[Path] = field(default_factory=list)


# -- OpenAPI schema -> manifest fields -----------------------------------------------------------

class _Schemas:
    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document

    def resolve(self, schema: Any, depth: int = 0) -> dict[str, Any]:
        while isinstance(schema, dict) and "$ref" in schema and depth < 20:
            ref = str(schema["$ref"])
            if not ref.startswith("#/"):
                return {}
            node: Any = self.document
            for part in ref[2:].split("/"):
                node = node.get(part.replace("~1", "/").replace("~0", "~"), {}) if isinstance(node, dict) else {}
            schema, depth = node, depth + 1
        return schema if isinstance(schema, dict) else {}

    def record_schema(self, remote: str) -> dict[str, Any] | None:
        """The schema of the record ``GET .../{remote}?key=`` answers, else ``components.schemas.{remote}_record``."""
        for path, item in (self.document.get("paths") or {}).items():
            if str(path).rstrip("/").split("/")[-1] != remote or not isinstance(item, dict):
                continue
            ok = ((item.get("get") or {}).get("responses") or {}).get("200") or {}
            schema = self.resolve(((self.resolve(ok).get("content") or {}).get("application/json") or {}).get("schema"))
            if schema.get("properties"):
                return schema
        schema = self.resolve(((self.document.get("components") or {}).get("schemas") or {}).get(f"{remote}_record"))
        return schema or None

    def fields(self, schema: dict[str, Any], where: str, notes: list[str]) -> list[dict[str, Any]]:
        result = []
        for name, prop in (schema.get("properties") or {}).items():
            path = f"{where}.{name}" if where else str(name)
            if not re.match(NAME_PATTERN, str(name)):
                notes.append(f"field {path}: the name is no manifest field name ({NAME_PATTERN}); left out")
                continue
            drafted = self.field(str(name), self.resolve(prop), path, notes)
            if drafted is not None:
                result.append(drafted)
        return result

    def field(self, name: str, schema: dict[str, Any], path: str, notes: list[str]) -> dict[str, Any] | None:
        kinds = schema.get("type")
        kinds = [kinds] if isinstance(kinds, str) else list(kinds or [])
        nillable = "null" in kinds
        kinds = [k for k in kinds if k != "null"]
        kind = kinds[0] if len(kinds) == 1 else None
        drafted: dict[str, Any] = {"name": name}
        if kind == "object" or (kind is None and schema.get("properties")):
            children = self.fields(schema, path, notes)
            if not children:
                notes.append(f"field {path}: an object without typed properties; left out")
                return None
            drafted.update(type="object", fields=children)
        elif kind == "array":
            items = self.resolve(schema.get("items"))
            item = self.field(name, items, f"{path}[]", notes) if items else None
            if item is None:
                notes.append(f"field {path}: a list whose items have no manifest type; left out")
                return None
            if item["type"] == "object":
                drafted.update(type="list", fields=item["fields"])
            elif item["type"] == "list":
                notes.append(f"field {path}: a list of lists has no manifest type; left out")
                return None
            else:
                drafted.update(type="list", items=item["type"])
                drafted.update({k: item[k] for k in ("max_length", "enum") if k in item})
        else:
            scalar = _scalar_type(kind, schema)
            if scalar is None:
                notes.append(f"field {path}: type {schema.get('type')!r} has no manifest type; left out")
                return None
            drafted["type"] = scalar
            if scalar == "string" and isinstance(schema.get("maxLength"), int) and schema["maxLength"] > 0:
                drafted["max_length"] = schema["maxLength"]
            enum = [v for v in schema.get("enum") or [] if v is not None]
            if enum and scalar in ("string", "integer"):
                drafted["enum"] = enum
            if nillable:
                drafted["nillable"] = True
        if schema.get("description"):
            drafted["description"] = str(schema["description"])
        if nillable and drafted["type"] == "object":
            drafted["nillable"] = True
        return drafted


def _scalar_type(kind: str | None, schema: dict[str, Any]) -> str | None:
    if kind == "string":
        if schema.get("x-manifest-type") == "decimal" or schema.get("pattern") == DECIMAL_PATTERN:
            return "decimal"
        return {"date": "date", "date-time": "datetime"}.get(str(schema.get("format")), "string")
    return {"integer": "integer", "number": "decimal", "boolean": "boolean"}.get(str(kind))


# -- one draft ------------------------------------------------------------------------------------

def draft_manifest(service: dict[str, Any], openapi: dict[str, Any] | None, url: str, *, prefix: str = "",
                   permissions: list[str] | None = None, mode: str = "live", today: dt.date | None = None) -> Draft:
    """The manifest text for one entry of the platform's service list. ValueError if it cannot be drafted."""
    remote = str(service.get("service_name") or "")
    name = prefix + remote
    if not re.match(NAME_PATTERN, name):
        raise ValueError(f"'{name}' is no dataset name here ({NAME_PATTERN}); use --prefix or rename it")
    key = [str(k) for k in service.get("key") or []]
    if not key:
        raise ValueError("the service list names no key")
    notes: list[str] = []
    schemas = _Schemas(openapi or {})
    schema = schemas.record_schema(remote) if openapi else None
    fields = schemas.fields(schema, "", notes) if schema else []
    by_name = {f["name"]: f for f in fields}
    untyped_keys = []
    for k in key:  # key fields: scalars, required, never nillable
        known = by_name.get(k)
        if known is None or known["type"] not in SCALARS:
            notes.append(f"key field {k}: not typed as a value by the OpenAPI document; drafted as a string")
            known = {"name": k, "type": "string"}
            if k not in by_name:
                untyped_keys.append(k)
        rest = {x: v for x, v in known.items() if x not in ("name", "type", "required", "nillable")}
        by_name[k] = {"name": k, "type": known["type"], "required": True, **rest}
    fields = [by_name[k] for k in untyped_keys] + [by_name[f["name"]] for f in fields]
    if schema is None:
        notes.append("the platform has no OpenAPI record schema for it: only the key is drafted; add the fields")
    given = service.get("title")
    title: dict[str, Any] = given if isinstance(given, dict) else {}
    manifest: dict[str, Any] = {
        "dataset": name, "version": str(service.get("version") or "v1"),
        "title": {"lv": str(title.get("lv") or remote), "en": str(title.get("en") or remote)}}
    description = service.get("description")
    if isinstance(description, dict) and description.get("lv") and description.get("en"):
        manifest["description"] = {"lv": str(description["lv"]), "en": str(description["en"])}
    manifest["owner"] = str(service.get("owner") or "LV/GOV/00000000000/TODO")
    manifest["key"] = key
    subject = service.get("subject")
    if isinstance(subject, str) and subject in {f["name"] for f in fields}:
        manifest["subject"] = subject
    access = str(service.get("access") or "restricted")
    manifest["access"] = access if access in ("open", "public", "restricted", "private") else "restricted"
    manifest["fields"] = fields
    source: dict[str, Any] = {"kind": "platform", "mode": mode, "url": url.rstrip("/"), "dataset": remote}
    permissions = permissions or []
    if len(permissions) == 1:
        source["permission"] = permissions[0]
    manifest["source"] = source

    text = yaml.safe_dump(manifest, allow_unicode=True, sort_keys=False, width=120)
    lines = []
    for line in text.splitlines():
        if line.startswith("owner:"):
            line += "  # TODO(decide): the owner the platform names; keep it or name who answers for the data here"
        elif line.startswith("access:"):
            line += f"  # TODO(decide): the platform publishes it as {access}; who may read it through this bridge?"
        elif line.startswith("source:") and len(permissions) > 1:
            line += (f"  # TODO(decide): this connection holds several permissions for {remote} "
                     f"({', '.join(permissions)}): add permission: <one of them>")
        lines.append(line)
    stamp = (today or dt.date.today()).isoformat()
    head = [f"# DRAFT drafted by `viss-bridge catalog import-platform {url}` on {stamp} from the platform's",
            "# service_list" + (" and openapi.json" if schema is not None else "") + f" (its dataset {remote}).",
            *(f"# NOTE: {note}" for note in notes), ""]
    tail = ["# TODO(decide): the generation-II contracts this dataset answers, if any, e.g.",
            "# legacy:",
            f"#   - {{dialect: xroad, service: {manifest['owner']}/get{remote.title().replace('_', '')}/v1}}", ""]
    return Draft(name, remote, "\n".join(head + lines + tail), notes)


def draft_all(service_list: Any, openapi: dict[str, Any] | None, held: Any, url: str, *, prefix: str = "",
              datasets: tuple[str, ...] = (), permission: str | None = None, mode: str = "live",
              today: dt.date | None = None) -> ImportResult:
    """Drafts for every dataset this connection may call (or the named ones, or the one ``permission`` is for)."""
    services = service_list.get("services") if isinstance(service_list, dict) else None
    if not isinstance(services, list):
        raise ValueError("the platform's service_list has no 'services' list")
    numbers: dict[str, list[str]] = {}
    for p in (held.get("permissions") or []) if isinstance(held, dict) else []:
        if isinstance(p, dict) and p.get("status") in (None, "active"):
            numbers.setdefault(str(p.get("service_name")), []).append(str(p.get("permission_number")))
    result = ImportResult([], [])
    for service in services:
        if not isinstance(service, dict) or not service.get("service_name"):
            continue
        remote = str(service["service_name"])
        if datasets and remote not in datasets:
            continue
        if permission is not None and permission not in numbers.get(remote, []) and remote not in datasets:
            continue  # --permission: the dataset(s) that permission is for
        if not datasets and service.get("allowed") is False:
            result.skipped.append(f"{remote}: this connection may not call it (request access on the platform)")
            continue
        try:
            chosen = [permission] if permission else numbers.get(remote, [])
            result.drafts.append(draft_manifest(service, openapi, url, prefix=prefix, permissions=chosen, mode=mode,
                                                today=today))
        except ValueError as exc:
            result.skipped.append(f"{remote}: {exc}")
    missing = set(datasets) - {d.remote for d in result.drafts} - {s.split(":", 1)[0] for s in result.skipped}
    result.skipped.extend(f"{name}: not in the platform's service_list" for name in sorted(missing))
    return result


# -- fetching and writing -------------------------------------------------------------------------

def import_platform(url: str, fetch: Callable[[str, str | None], Any], out: Path, *, prefix: str = "",
                    datasets: tuple[str, ...] = (), permission: str | None = None, mode: str = "live",
                    force: bool = False) -> ImportResult:
    """Read the platform's documents with ``fetch(path, permission)``, draft, check and write the manifests.

    ``service_list`` is required; ``openapi.json`` and ``current_user_permissions`` are used where the
    platform has them. Every draft is validated before anything is written; an existing file is kept
    unless ``force``. Raises UpstreamError (the platform) or ValueError (nothing usable)."""
    service_list = fetch("service_list", None)
    openapi = _optional(lambda: fetch("openapi.json", permission))
    held = _optional(lambda: fetch("current_user_permissions", None))
    result = draft_all(service_list, openapi if isinstance(openapi, dict) else None, held, url, prefix=prefix,
                       datasets=datasets, permission=permission, mode=mode)
    for draft in result.drafts:
        target = out / f"{draft.name}.yaml"
        try:
            parse_manifest(draft.text, target)
        except ManifestError as exc:  # a bug of the drafting, or a platform answer it cannot express
            raise ValueError(f"the draft of {draft.remote} does not validate: {exc}") from exc
    out.mkdir(parents=True, exist_ok=True)
    for draft in list(result.drafts):
        target = out / f"{draft.name}.yaml"
        if target.exists() and not force:
            result.skipped.append(f"{draft.remote}: {target} exists (--force replaces it)")
            result.drafts.remove(draft)
            continue
        target.write_text(draft.text, encoding="utf-8")
        result.written.append(target)
    return result


def _optional(read: Callable[[], Any]) -> Any:
    try:
        return read()
    except UpstreamError as exc:
        if exc.cause in (errors.PROVIDER_CONFIG, errors.PLATFORM_ACCESS_DENIED):
            return None
        raise
