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


def schema_check(wsdl: Path) -> Any:
    """A checker of raw SOAP answers against the ORIGINAL WSDL's schemas (lxml XMLSchema, imports and
    includes resolved from the files beside it): a response element must validate; a fault must be a
    SOAP 1.1 Fault (faultcode, faultstring, optional faultactor and detail) and nothing else."""
    from lxml import etree

    ns_xsd, ns_soap = "http://www.w3.org/2001/XMLSchema", "http://schemas.xmlsoap.org/soap/envelope/"
    parser = etree.XMLParser(no_network=True, resolve_entities=False)
    root = etree.parse(str(wsdl), parser).getroot()
    schemas = {}
    for schema in root.iter(f"{{{ns_xsd}}}schema"):
        compiled = etree.XMLSchema(etree.ElementTree(etree.fromstring(etree.tostring(schema), parser,
                                                                      base_url=str(wsdl))))
        for namespace in [schema.get("targetNamespace")] + [i.get("namespace") for i in schema.iter(f"{{{ns_xsd}}}import")]:
            schemas.setdefault(namespace, compiled)

    def check(raw: bytes) -> None:
        envelope = etree.fromstring(raw, parser)
        assert envelope.tag == f"{{{ns_soap}}}Envelope", raw[:200]
        body = envelope.find(f"{{{ns_soap}}}Body")
        assert body is not None and len(body) == 1, raw[:300]
        answer = body[0]
        if answer.tag == f"{{{ns_soap}}}Fault":
            names = [child.tag for child in answer]
            assert names[:2] == ["faultcode", "faultstring"], names
            assert set(names) <= {"faultcode", "faultstring", "faultactor", "detail"}, names
            return
        schema = schemas[etree.QName(answer).namespace]
        copy = etree.fromstring(etree.tostring(answer))
        assert schema.validate(copy), f"{schema.error_log}\n{etree.tostring(answer)[:2000]!r}"

    return check
