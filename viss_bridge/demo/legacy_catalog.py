"""Demo manifests whose source is a demo legacy provider (live and replicated).

They copy the demo registers' fields and add a ``legacy_soap`` source pointing
at a running demo provider, so the same records can be read three ways: from
the store (``fpr_person``), live through zeep (``fpr_person_live``) and from
the replicated copy (``fpr_person_replica``, filled by ``viss-bridge sync``).
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

from viss_bridge.demo.legacy_providers.registers import REGISTERS, wsdl_path
from viss_bridge.demo.world import DEMO_CATALOG_DIR

PERSON_FIELDS: dict[str, Any] = {
    "PersonCode": "person_code", "GivenName": "first_name", "Surname": "last_name", "BirthDate": "birth_date",
    "Gender": "gender", "Citizenship": "citizenship", "Status": "status", "DeathDate": "death_date",
    "DeclaredAddressCode": "declared_address_code",
    "Address": {"field": "addresses", "fields": {"AddressCode": "address_code", "AddressKind": "kind",
                                                 "ValidFrom": "valid_from"}},
}
ADDRESS_FIELDS: dict[str, Any] = {
    "AddressCode": "address_code", "FullAddress": "full_address", "Street": "street", "House": "house",
    "Flat": "flat", "City": "city", "Municipality": "municipality", "PostalCode": "postal_code",
    "AtvkCode": "atvk_code", "Latitude": "latitude", "Longitude": "longitude",
}

SPECS = {
    "persons": {"provider": "pmlp-fpr", "key_element": "PersonCode", "key": "person_code", "result": "Person",
                "after": "AfterPersonCode", "fields": PERSON_FIELDS},
    "addresses": {"provider": "vzd-var", "key_element": "AddressCode", "key": "address_code", "result": "Address",
                  "after": "AfterAddressCode", "fields": ADDRESS_FIELDS},
}


def legacy_source(register: str, address: str, mode: str = "live", **overrides: Any) -> dict[str, Any]:
    spec = SPECS[register]
    reg = REGISTERS[register]
    source: dict[str, Any] = {
        "kind": "legacy_soap", "mode": mode, "provider": spec["provider"], "wsdl": str(wsdl_path(register)),
        "address": address,
        "lookup": {"operation": reg.lookup_operation, "request": {spec["key_element"]: spec["key"]},
                   "result": spec["result"]},
        "changes": {"operation": reg.changes_operation, "since": "ChangedSince", "after_key": spec["after"],
                    "page_size_element": "PageSize", "page_size": 50, "items": "Change", "record": spec["result"],
                    "changed_at": "ChangedAt", "more": "MoreAvailable"},
        "fields": spec["fields"],
        "timeouts": {"connect": 2, "operation": 5},
        "retries": {"attempts": 3, "backoff": 0.1},
        "breaker": {"failures": 3, "reset_after": 30},
        "max_concurrent": 8,
    }
    source.update(overrides)
    return copy.deepcopy(source)


def legacy_manifest(register: str, address: str, mode: str, name: str | None = None, **overrides: Any) -> dict[str, Any]:
    reg = REGISTERS[register]
    base = yaml.safe_load((DEMO_CATALOG_DIR / f"{reg.dataset}.yaml").read_text(encoding="utf-8"))
    suffix = "live" if mode == "live" else "replica"
    base["dataset"] = name or f"{reg.dataset}_{suffix}"
    how = "live from the legacy provider" if mode == "live" else "replicated from the legacy provider"
    base["title"] = {"lv": base["title"]["lv"] + f" ({'tiešsaistē' if mode == 'live' else 'replika'})",
                     "en": base["title"]["en"] + f" ({how})"}
    base["source"] = legacy_source(register, address, mode, **overrides)
    base["legacy"] = []
    if mode == "live":  # the provider answers lookups only: a live view has nothing to search
        base.pop("indexes", None)
    return base


def write_legacy_manifests(catalog_dir: str | Path, addresses: dict[str, str]) -> list[Path]:
    """Write ``<dataset>_live`` and ``<dataset>_replica`` manifests for each running demo provider."""
    written = []
    for register, address in addresses.items():
        for mode in ("live", "replicated"):
            manifest = legacy_manifest(register, address, mode)
            path = Path(catalog_dir) / f"{manifest['dataset']}.yaml"
            text = ("# Written by viss-bridge demo: the demo legacy provider as a dataset source.\n"
                    + yaml.safe_dump(manifest, allow_unicode=True, sort_keys=False))
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                path.write_text(text, encoding="utf-8")
            written.append(path)
    return written
