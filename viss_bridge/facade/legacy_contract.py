"""``/legacy/<name>``: a generation-II service's own WSDL contract, answered from the catalog.

A migration team drops the service's ORIGINAL WSDL and a mapping file into the
contracts folder (default ``<catalog_dir>/legacy/``)::

    # catalog/legacy/fpr.yaml  -> served at /legacy/fpr
    wsdl: PMLP-FizPersonas-v1-0.wsdl      # the original WSDL, relative to this file
    consumer: LV/GOV/90000069281/VID-EDS   # identity old callers get for permission checks (optional)
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

import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Union

import zeep
from lxml import etree
from pydantic import BaseModel, ConfigDict, Field as PydField, ValidationError

from viss_bridge.catalog.catalog import Catalog
from viss_bridge.catalog.legacy_source import ListMapping, map_to_legacy, mapping_problems
from viss_bridge.catalog.manifest import Dataset, ManifestError
from viss_bridge.catalog.store import StoreUnavailable
from viss_bridge.catalog.values import ValueProblem
from viss_bridge.catalog.yaml_lines import YamlSyntaxError, line_for, load_with_lines
from viss_bridge.facade import faults
from viss_bridge.facade.exchange import CallInfo
from viss_bridge.facade.faults import BridgeFault
from viss_bridge.facade.soap_runtime import SoapRequest, SoapResponse, SpyneFault
from viss_bridge.xml import NS_SOAP11, NS_WSDL_SOAP11, NS_WSDL_SOAP12, parse_trusted

log = logging.getLogger(__name__)

NAME = r"^[a-z0-9][a-z0-9_-]{0,62}$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class OperationMapping(_Strict):
    dataset: str
    request: Annotated[dict[str, str], PydField(min_length=1)]
    response: str
    fields: Annotated[dict[str, Union[str, ListMapping]], PydField(min_length=1)]


class ContractMapping(_Strict):
    wsdl: str
    consumer: str | None = None
    operations: Annotated[dict[str, OperationMapping], PydField(min_length=1)]


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
            if op_mapping.response not in child_names:
                raise ManifestError(file, line_for(lines, ("operations", op_name, "response")),
                                    f"operations.{op_name}.response",
                                    f"{response_element.qname.localname} has no child {op_mapping.response} "
                                    f"(children: {', '.join(child_names)})")
            request_children = [n for n, _ in request_element.type.elements]
            for element in op_mapping.request:
                if element not in request_children:
                    raise ManifestError(file, line_for(lines, ("operations", op_name, "request", element)),
                                        f"operations.{op_name}.request.{element}",
                                        f"{request_element.qname.localname} has no child {element} "
                                        f"(children: {', '.join(request_children)})")
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
        error = exc.errors()[0]
        path = tuple(p for p in error["loc"] if isinstance(p, int) or not str(p).startswith(("function-", "union")))
        path = tuple(p for p in path if p not in ("str", "ListMapping"))
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = "unknown key (allowed: wsdl, consumer, operations; per operation: dataset, request, response, fields)"
        elif error["type"] == "missing":
            message = "is required but missing"
        raise ManifestError(file, line_for(lines, path), ".".join(str(p) for p in path) or None, message) from None
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


class LegacyContractFacade:
    """Serves every contract of the folder against the current catalog."""

    def __init__(self, contracts: LegacyContracts, store: Any, permissions: Any) -> None:
        self.contracts = contracts
        self.store = store  # a SourceRouter: live legacy datasets are answered by their provider
        self.permissions = permissions

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

    def handle(self, name: str, catalog: Catalog, request: SoapRequest, info: CallInfo) -> SoapResponse:
        contract = self.contract(name, catalog)
        body = request.body_element
        operation = contract.by_request.get(body.tag)
        info.service = f"legacy/{name}"
        if operation is None:
            raise BridgeFault(faults.UNKNOWN_SERVICE,
                              f"Legacy service '{name}' has no mapped operation for body element {body.tag}")
        info.service = f"legacy/{name}/{operation.name}"
        info.operation = operation.name
        info.client = contract.mapping.consumer
        dataset = catalog.get(operation.mapping.dataset)
        assert dataset is not None  # check_against
        if not self.permissions.may_call(contract.mapping.consumer, dataset):
            who = contract.mapping.consumer or "an anonymous legacy consumer"
            raise BridgeFault(faults.ACCESS_DENIED,
                              f"Request is not allowed: {who} has no permission for dataset {dataset.dataset}")
        try:
            parsed = operation.request_element.parse(body, contract.client.wsdl.types)
        except Exception as exc:
            raise BridgeFault(faults.INVALID_REQUEST, f"Invalid request for {operation.name}: {exc}") from None
        key_values = {}
        for element, field_name in operation.mapping.request.items():
            value = getattr(parsed, element, None)
            if value in (None, ""):
                raise BridgeFault(faults.INVALID_REQUEST, f"Invalid request for {operation.name}: {element} is missing")
            key_values[field_name] = value
        record = self._read(dataset, key_values)
        if record is not None and dataset.subject and record.get(dataset.subject):
            info.subjects.append(str(record[dataset.subject]))
        return SoapResponse(200, self._render(operation, record))

    def _read(self, dataset: Dataset, key_values: dict[str, Any]) -> dict[str, Any] | None:
        try:
            return self.store.get(dataset, key_values)
        except ValueProblem as exc:
            raise BridgeFault(faults.INVALID_REQUEST, f"Invalid key: {exc}") from None
        except StoreUnavailable as exc:
            log.error("dataset store unavailable: %s", exc)
            raise faults.service_failed("DatabaseError",
                                        f"The dataset store is not available; the request for {dataset.dataset} was not served") from None
        except SpyneFault as exc:  # a live provider failed
            raise exc.bridge_fault from None

    @staticmethod
    def _render(operation: BoundOperation, record: dict[str, Any] | None) -> bytes:
        envelope = etree.Element(f"{{{NS_SOAP11}}}Envelope", nsmap={"soap": NS_SOAP11})
        body = etree.SubElement(envelope, f"{{{NS_SOAP11}}}Body")
        element = operation.response_element
        values = {}
        if record is not None:
            values[operation.mapping.response] = map_to_legacy(operation.mapping.fields, record)
        element.render(body, element(**values))
        return etree.tostring(envelope, xml_declaration=True, encoding="UTF-8")
