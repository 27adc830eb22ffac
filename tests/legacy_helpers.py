"""Helpers for tests of the generation-II compatibility (issue 3)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import zeep
from zeep.helpers import serialize_object

ROOT = Path(__file__).resolve().parents[1]
PERSONS_WSDL = ROOT / "wsdl" / "PMLP-FizPersonas-v1-0.wsdl"
ADDRESSES_WSDL = ROOT / "wsdl" / "VZD-Adreses-v1-0.wsdl"


def original_client(wsdl: Path, address: str) -> Any:
    """A zeep service built from the ORIGINAL WSDL file, pointed at ``address`` (the only change an old client makes)."""
    client = zeep.Client(str(wsdl))
    service = next(iter(client.wsdl.services.values()))
    port = next(iter(service.ports.values()))
    return client.create_service(port.binding.name, address)


def plain(value: Any) -> Any:
    return serialize_object(value, target_cls=dict)
