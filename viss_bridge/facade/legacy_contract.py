"""``/legacy/<name>``: a generation-II service's own WSDL contract, answered from the catalog.

A migration team drops the service's ORIGINAL WSDL and a mapping file into the
contracts folder (default ``<catalog_dir>/legacy/``)::

    # catalog/legacy/fpr.yaml  -> served at /legacy/fpr
    wsdl: PMLP-FizPersonas-v1-0.wsdl      # the original WSDL, relative to this file
    consumer: LV/GOV/90000069281/VID-EDS   # identity old callers get for permission checks (optional)
    consumer_networks: [10.20.0.0/16]      # ...but only unauthenticated callers from these networks
    operations:
      GetPerson:                           # an operation name of the WSDL
        dataset: fpr_person                # answered by a lookup in this dataset
        request: {PersonCode: person_code} # request element -> dataset key field
        response: Person                   # child of the response element that carries the record
        fields:                            # legacy element -> dataset field (lists: {field, fields})
          PersonCode: person_code
          ...

The bridge then serves the same target namespace, element names, types and
operation names as the old service: the WSDL at ``/legacy/<name>?wsdl`` is the
original file with only its ``soap:address`` rewritten, and requests and
responses are parsed and rendered by zeep's XML Schema engine from that very
WSDL (so element order and types follow the original XSD, not a regeneration).
Old clients change only their endpoint address.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import zeep
import zeep.exceptions
from lxml import etree
from pydantic import ValidationError

from viss_bridge.catalog.catalog import Catalog
from viss_bridge.catalog.contract_mapping import ContractMapping, OperationMapping, map_to_legacy, mapping_problems
from viss_bridge.catalog.manifest import Dataset, ManifestError
from viss_bridge.catalog.values import compose_key
from viss_bridge.catalog.yaml_lines import YamlSyntaxError, line_for, load_with_lines, validation_problem
from viss_bridge.facade import faults
from viss_bridge.facade.exchange import CallInfo
from viss_bridge.facade.faults import BridgeFault
from viss_bridge.facade.soap_runtime import SoapRequest, SoapResponse
from viss_bridge.facade.guarded_read import GuardedRead
from viss_bridge.facade.pipeline import HttpAnswer
from viss_bridge.xml import NS_SOAP11, NS_WSDL_SOAP11, NS_WSDL_SOAP12, parse_trusted

log = logging.getLogger(__name__)

NAME = r"^[a-z0-9][a-z0-9_-]{0,62}$"


@dataclass
class BoundOperation:
    name: str
    mapping: OperationMapping
    request_element: Any  # zeep xsd Element
    response_element: Any


class LegacyContract:
    """One old service: its original WSDL, zeep's view of it, and the mapping."""

    def __init__(self, name: str, file: Path, mapping: ContractMapping, lines: dict[Any, int]) -> None:
        self.name = name
        self.file = file
        self.mapping = mapping
        self.wsdl_file = (file.parent / mapping.wsdl).resolve()
        try:
            self.wsdl_bytes = self.wsdl_file.read_bytes()
            settings = zeep.Settings(strict=True, forbid_dtd=True, forbid_entities=True, forbid_external=True)
            self.client = zeep.Client(str(self.wsdl_file), settings=settings)
        except Exception as exc:
            raise ManifestError(file, line_for(lines, ("wsdl",)), "wsdl", f"cannot load {self.wsdl_file}: {exc}") from None
        service = next(iter(self.client.wsdl.services.values()))
        port = next(iter(service.ports.values()))
        binding = port.binding
        self.operations: dict[str, BoundOperation] = {}
        self.by_request: dict[str, BoundOperation] = {}
        for op_name, op_mapping in mapping.operations.items():
            try:
                operation = binding.get(op_name)
            except Exception:
                raise ManifestError(file, line_for(lines, ("operations", op_name)), f"operations.{op_name}",
                                    f"the WSDL has no operation {op_name} (it has: {', '.join(binding._operations)})") from None
            request_element = operation.input.body
            response_element = operation.output.body
            child_names = [n for n, _ in response_element.type.elements]
            request_children = [n for n, _ in request_element.type.elements]
            checks: list[tuple[tuple[str, ...], str, list[str], str]] = []
            if op_mapping.kind == "lookup":
                checks.append((("response",), op_mapping.response or "", child_names, response_element.qname.localname))
                checks += [(("request", e), e, request_children, request_element.qname.localname) for e in op_mapping.request]
            else:
                for key in ("since", "after_key", "page_size_element"):
                    if getattr(op_mapping, key):
                        checks.append(((key,), getattr(op_mapping, key), request_children, request_element.qname.localname))
                for key in ("items", "more"):
                    if getattr(op_mapping, key):
                        checks.append(((key,), getattr(op_mapping, key), child_names, response_element.qname.localname))
                if op_mapping.items in child_names:
                    item_type = dict(response_element.type.elements)[op_mapping.items].type
                    item_children = [n for n, _ in getattr(item_type, "elements", [])]
                    for key in ("record", "changed_at"):
                        checks.append(((key,), getattr(op_mapping, key), item_children, op_mapping.items))
            for path, element, allowed, parent in checks:
                if element not in allowed:
                    raise ManifestError(file, line_for(lines, ("operations", op_name) + path),
                                        ".".join(("operations", op_name) + path),
                                        f"{parent} has no child {element} (children: {', '.join(allowed)})")
            bound = BoundOperation(op_name, op_mapping, request_element, response_element)
            self.operations[op_name] = bound
            self.by_request[request_element.qname.text] = bound
        self.lines = lines

    def check_against(self, catalog: Catalog) -> None:
        """Mapped datasets must exist and their fields must fit; raises ManifestError with the line."""
        for op_name, op in self.operations.items():
            dataset = catalog.get(op.mapping.dataset)
            where = ("operations", op_name)
            if dataset is None:
                raise ManifestError(self.file, line_for(self.lines, where + ("dataset",)), f"operations.{op_name}.dataset",
                                    f"no dataset '{op.mapping.dataset}' in the catalog")
            for element, name in op.mapping.request.items():
                if name not in dataset.key:
                    raise ManifestError(self.file, line_for(self.lines, where + ("request", element)),
                                        f"operations.{op_name}.request.{element}",
                                        f"'{name}' is not a key field of {dataset.dataset} (key: {', '.join(dataset.key)})")
            problems = mapping_problems(op.mapping.fields, dataset.fields, ())
            problems = [p for p in problems if "is not mapped" not in p[1]]  # a contract may show fewer fields
            if problems:
                path, message = problems[0]
                raise ManifestError(self.file, line_for(self.lines, where + ("fields",) + path),
                                    ".".join(("operations", op_name, "fields") + path), message)

    def wsdl(self, location: str) -> bytes:
        """The original WSDL, only the service address changed to this bridge."""
        root = parse_trusted(self.wsdl_bytes)
        for tag in (f"{{{NS_WSDL_SOAP11}}}address", f"{{{NS_WSDL_SOAP12}}}address"):
            for address in root.iter(tag):
                address.set("location", location)
        return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def load_contract(file: Path) -> LegacyContract:
    try:
        text = file.read_text(encoding="utf-8")
        data, lines = load_with_lines(text)
    except (OSError, UnicodeDecodeError) as exc:
        raise ManifestError(file, None, None, f"cannot read: {exc}") from None
    except YamlSyntaxError as exc:
        raise ManifestError(file, exc.line, None, f"not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ManifestError(file, 1, None, "a contract mapping must be a YAML mapping (wsdl: ..., operations: ...)")
    try:
        mapping = ContractMapping.model_validate(data)
    except ValidationError as exc:
        line, label, message = validation_problem(
            exc.errors(), lines, None,
            "unknown key (allowed: wsdl, consumer, consumer_networks, operations; per operation: dataset, request, response, fields)",
            union_members=("str", "ElementMapping", "Constant", "RequestField"))
        raise ManifestError(file, line, label, message) from None
    return LegacyContract(file.stem, file, mapping, lines)


class LegacyContracts:
    """The contracts folder, reloaded per file when it changes (checked on each request, one stat)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._cache: dict[str, tuple[tuple[int, int, str], LegacyContract | ManifestError]] = {}
        self._lock = threading.Lock()

    def names(self) -> list[str]:
        if not self.folder.is_dir():
            return []
        return sorted(p.stem for p in self.folder.glob("*.yaml"))

    def get(self, name: str) -> LegacyContract | None:
        """The contract, or None if there is no such file; raises ManifestError if it is broken."""
        import re

        if not re.match(NAME, name):
            return None
        file = self.folder / f"{name}.yaml"
        try:
            stat = file.stat()
        except OSError:
            return None
        with self._lock:
            cached = self._cache.get(name)
            try:
                wsdl_stat = cached[1].wsdl_file.stat().st_mtime_ns if cached and isinstance(cached[1], LegacyContract) else 0
            except OSError:
                wsdl_stat = -1
            stamp = (stat.st_mtime_ns, stat.st_size, str(wsdl_stat))
            if cached is None or cached[0] != stamp:
                try:
                    loaded: LegacyContract | ManifestError = load_contract(file)
                except ManifestError as exc:
                    loaded = exc
                    log.error("legacy contract mapping refused: %s", exc)
                if isinstance(loaded, LegacyContract):
                    stamp = (stat.st_mtime_ns, stat.st_size, str(loaded.wsdl_file.stat().st_mtime_ns))
                cached = (stamp, loaded)
                self._cache[name] = cached
        result = cached[1]
        if isinstance(result, ManifestError):
            raise result
        return result


def contract_name(environ: dict[str, Any]) -> str:
    """``/legacy/<name>``: the contract a request is for."""
    return (environ.get("PATH_INFO") or "").removeprefix("/legacy/").strip("/")


class LegacyContractFacade:
    """Serves every contract of the folder against the current catalog."""

    def __init__(self, contracts: LegacyContracts, store: Any, permissions: Any, authenticator: Any = None,
                 base_url: str = "") -> None:
        self.contracts = contracts
        self.base_url = base_url.rstrip("/")
        self.store = store  # a SourceRouter: live legacy datasets are answered by their provider
        self.permissions = permissions
        self.reader = GuardedRead(store, permissions)
        self.authenticator = authenticator

    def caller(self, contract: LegacyContract, environ: dict[str, Any], request: SoapRequest | None = None) -> Any:
        """Who is served: a proven identity (TLS client certificate, trusted proxy, WS-Security) if the request
        has one; else the mapping's consumer if the request comes from a network the mapping vouches for
        (``consumer_networks``); else anonymous. Old contracts carry no caller, so nothing in the message
        can name one, and a consumer is never lent to a caller who proved nothing."""
        from viss_bridge.access.identity import Caller
        from viss_bridge.facade.callers import resolve_caller

        if self.authenticator is not None:
            proven = resolve_caller(environ, self.authenticator, None, request)
            if not proven.anonymous and proven.authenticated_by != "header":
                return proven
        if contract.mapping.vouches_for(environ.get("REMOTE_ADDR")):
            return Caller(contract.mapping.consumer, "contract-network")
        return Caller(None, None)

    def contract(self, name: str, catalog: Catalog) -> LegacyContract:
        try:
            contract = self.contracts.get(name)
        except ManifestError as exc:
            raise faults.service_failed("ContractMappingInvalid",
                                        f"The mapping of legacy service '{name}' is invalid: {exc}") from None
        if contract is None:
            raise BridgeFault(faults.UNKNOWN_SERVICE, f"Unknown legacy service: {name}")
        try:
            contract.check_against(catalog)
        except ManifestError as exc:
            raise faults.service_failed("ContractMappingInvalid",
                                        f"The mapping of legacy service '{name}' is invalid: {exc}") from None
        return contract

    name = "legacy"
    soap_ns = NS_SOAP11

    def wsdl(self, published: Any, environ: dict[str, Any], query: dict[str, list[str]]) -> HttpAnswer:
        """The old service's own WSDL, its address rewritten to this bridge."""
        name = contract_name(environ)
        try:
            contract = self.contract(name, published.catalog)
        except BridgeFault as exc:
            return HttpAnswer.text(404 if exc.code == faults.UNKNOWN_SERVICE else 503, exc.message + "\n")
        return HttpAnswer.xml(contract.wsdl(f"{self.base_url}/legacy/{name}"))

    def handle(self, published: Any, request: SoapRequest, environ: dict[str, Any], info: CallInfo) -> SoapResponse:
        name, catalog = contract_name(environ), published.catalog
        contract = self.contract(name, catalog)
        body = request.body_element
        operation = contract.by_request.get(body.tag)
        info.service = f"legacy/{name}"
        if operation is None:
            raise BridgeFault(faults.UNKNOWN_SERVICE,
                              f"Legacy service '{name}' has no mapped operation for body element {body.tag}")
        info.service = f"legacy/{name}/{operation.name}"
        info.operation = operation.name
        caller = self.caller(contract, environ, request)
        info.client, info.authenticated_by = caller.client_id, caller.authenticated_by
        dataset = catalog.get(operation.mapping.dataset)
        assert dataset is not None  # check_against
        try:
            parsed = operation.request_element.parse(body, contract.client.wsdl.types)
        except Exception as exc:
            raise BridgeFault(faults.INVALID_REQUEST, f"Invalid request for {operation.name}: {exc}") from None
        if operation.mapping.kind == "changes":
            return SoapResponse(200, self._changes(operation, dataset, parsed, info, caller))
        key_values = {}
        for element, field_name in operation.mapping.request.items():
            value = getattr(parsed, element, None)
            if value is None:  # zeep reads an empty element as None: only an absent one is the client's error
                if body.find(f"{{*}}{element}") is None:  # the old schema requires the element
                    raise BridgeFault(faults.INVALID_REQUEST,
                                      f"Invalid request for {operation.name}: {element} is missing")
                value = ""
            key_values[field_name] = value
        # An empty key value is what the old provider answered with its not-found answer: so does the bridge.
        record = self.reader.lookup(self.reader.decide(caller, dataset), dataset, key_values, info,
                                    empty_key_finds_nothing=True)
        return SoapResponse(200, self._render(operation, record))

    def _changes(self, operation: BoundOperation, dataset: Dataset, parsed: Any, info: CallInfo, caller: Any) -> bytes:
        """A page of records changed after (since, after key) from the store's change times."""
        mapping = operation.mapping
        decision = self.reader.decide(caller, dataset)
        since = getattr(parsed, mapping.since or "", None)
        if not isinstance(since, dt.datetime):
            raise BridgeFault(faults.INVALID_REQUEST, f"Invalid request for {operation.name}: {mapping.since} is missing")
        after = getattr(parsed, mapping.after_key, None) if mapping.after_key else None
        size = getattr(parsed, mapping.page_size_element, None) if mapping.page_size_element else None
        size = max(1, min(int(size or mapping.page_size), mapping.page_size))

        def read(n: int) -> list[Any]:
            after_key = compose_key(dataset.key_fields, {dataset.key[0]: after}) if after and len(dataset.key) == 1 else None
            return self.store.changed_after(dataset, since, after_key, n)

        # a feed leaves out the records of persons who restricted the dataset (a lookup answers a fault)
        page, more = self.reader.feed(decision, dataset, read, size, info)
        items = [{mapping.changed_at: item.change.changed_at, mapping.record: map_to_legacy(mapping.fields, item.record)}
                 for item in page if item.record is not None]
        values: dict[str, Any] = {mapping.items: items}
        if mapping.more:
            values[mapping.more] = more
        return self._envelope(operation, values)

    @classmethod
    def _render(cls, operation: BoundOperation, record: dict[str, Any] | None) -> bytes:
        values = {}
        if record is not None:
            values[operation.mapping.response or ""] = map_to_legacy(operation.mapping.fields, record)
        return cls._envelope(operation, values)

    @staticmethod
    def _envelope(operation: BoundOperation, values: dict[str, Any]) -> bytes:
        """The answer in the old contract's own response element, rendered by its schema."""
        envelope = etree.Element(f"{{{NS_SOAP11}}}Envelope", nsmap={"soap": NS_SOAP11})
        body = etree.SubElement(envelope, f"{{{NS_SOAP11}}}Body")
        element = operation.response_element
        try:
            element.render(body, element(**values))
        except zeep.exceptions.ValidationError as exc:
            # e.g. a permission reading fewer fields than the old contract requires
            raise BridgeFault(faults.ACCESS_DENIED, f"The answer cannot be given in this contract: {exc.message} "
                                                    "(does the permission cover every field the contract requires?)") from None
        return etree.tostring(envelope, xml_declaration=True, encoding="UTF-8")
