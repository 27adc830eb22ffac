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
from viss_bridge.catalog.contract_mapping import (TEXT, ContractMapping, OperationMapping, map_to_legacy)
from viss_bridge.catalog.search import SearchRequest
from viss_bridge.catalog.manifest import Dataset, ManifestError
from viss_bridge.catalog.values import compose_key
from viss_bridge.catalog.yaml_lines import YamlSyntaxError, line_for, load_with_lines, validation_problem
from viss_bridge.facade import faults
from viss_bridge.facade.contract_check import dataset_problems, operation_problems, record_type, type_problems
from viss_bridge.facade.contract_files import ContractFiles, schema_problem
from viss_bridge.facade.search_paging import MAX_CURSOR_CHARS, MAX_PAGE
from viss_bridge.facade.exchange import CallInfo
from viss_bridge.facade.faults import BridgeFault
from viss_bridge.facade.soap_runtime import SoapRequest, SoapResponse
from viss_bridge.facade.guarded_read import GuardedRead
from viss_bridge.facade.pipeline import HttpAnswer
from viss_bridge.xml import NS_SOAP11

log = logging.getLogger(__name__)

NAME = r"^[a-z0-9][a-z0-9_-]{0,62}$"


@dataclass
class BoundOperation:
    name: str
    mapping: OperationMapping
    request_element: Any  # zeep xsd Element
    response_element: Any


class LegacyContract:
    """One old service: its original WSDL (and the schemas it references), zeep's view of it, and the mapping."""

    def __init__(self, name: str, file: Path, mapping: ContractMapping, lines: dict[Any, int],
                 strict: bool = True) -> None:
        self.name = name
        self.file = file
        self.mapping = mapping
        self.lines = lines
        self.wsdl_file = (file.parent / mapping.wsdl).resolve()
        try:
            self.files = ContractFiles(self.wsdl_file)
            self.wsdl_bytes = self.files.wsdl_bytes
            settings = zeep.Settings(strict=True, forbid_dtd=True, forbid_entities=True, forbid_external=True)
            self.client = zeep.Client(str(self.wsdl_file), settings=settings)
            self.schemas = self.files.schemas()
        except Exception as exc:
            raise ManifestError(file, line_for(lines, ("wsdl",)), "wsdl", f"cannot load {self.wsdl_file}: {exc}") from None
        service = next(iter(self.client.wsdl.services.values()))
        port = next(iter(service.ports.values()))
        binding = port.binding
        self.operations: dict[str, BoundOperation] = {}
        self.by_request: dict[str, BoundOperation] = {}
        self.problems: list[tuple[tuple[str, ...], str]] = []
        for op_name, op_mapping in mapping.operations.items():
            try:
                operation = binding.get(op_name)
            except Exception:
                self.problems.append((("operations", op_name),
                                      f"the WSDL has no operation {op_name} (it has: {', '.join(binding._operations)})"))
                continue
            request_element = operation.input.body
            response_element = operation.output.body
            self.problems += operation_problems(op_name, op_mapping, request_element, response_element)
            bound = BoundOperation(op_name, op_mapping, request_element, response_element)
            self.operations[op_name] = bound
            self.by_request[request_element.qname.text] = bound
        if self.problems and strict:
            raise self.error(self.problems[0])

    def error(self, problem: tuple[tuple[str, ...], str]) -> ManifestError:
        """A problem as a ManifestError naming this mapping file, the line and the element."""
        path, message = problem
        return ManifestError(self.file, line_for(self.lines, path), ".".join(path), message)

    def dataset_errors(self, catalog: Catalog) -> list[ManifestError]:
        """Every problem of the mapping against the catalog's datasets (missing datasets, fields, keys, indexes)."""
        errors = []
        for op_name, op in self.operations.items():
            dataset = catalog.get(op.mapping.dataset)
            if dataset is None:
                errors.append(self.error((("operations", op_name, "dataset"),
                                          f"no dataset '{op.mapping.dataset}' in the catalog")))
                continue
            errors += [self.error(p) for p in dataset_problems(op_name, op.mapping, dataset)]
            errors += [self.error(p) for p in type_problems(op.mapping.fields, self.record_type(op), dataset.fields,
                                                            ("operations", op_name, "fields"))]
        return errors

    @staticmethod
    def record_type(operation: BoundOperation) -> Any:
        """The zeep type of the element carrying one record in the operation's answer."""
        return record_type(operation.mapping, operation.response_element)

    def check_against(self, catalog: Catalog) -> None:
        """Mapped datasets must exist and their fields must fit; raises ManifestError with the line."""
        errors = self.dataset_errors(catalog)
        if errors:
            raise errors[0]

    def wsdl(self, location: str) -> bytes:
        """The original WSDL, only the service address (and imported schemas' locations) changed to this bridge."""
        return self.files.wsdl(location)


def load_contract(file: Path, strict: bool = True) -> LegacyContract:
    """A mapping file and its WSDL; ``strict``: raise the first problem against the WSDL (else keep them all
    in ``problems``, for ``catalog validate``)."""
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
    return LegacyContract(file.stem, file, mapping, lines, strict)


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
            wsdl_stat = cached[1].files.stamp() if cached and isinstance(cached[1], LegacyContract) else "0"
            stamp = (stat.st_mtime_ns, stat.st_size, wsdl_stat)
            if cached is None or cached[0] != stamp:
                try:
                    loaded: LegacyContract | ManifestError = load_contract(file)
                except ManifestError as exc:
                    loaded = exc
                    log.error("legacy contract mapping refused: %s", exc)
                if isinstance(loaded, LegacyContract):
                    stamp = (stat.st_mtime_ns, stat.st_size, loaded.files.stamp())
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
        url = f"{self.base_url}/legacy/{name}"
        if "xsd" in query and not ("wsdl" in query or "WSDL" in query):
            schema = contract.files.xsd((query["xsd"] or [""])[0], url)
            if schema is None:  # only the schemas the WSDL references, inside its folder
                return HttpAnswer.text(404, f"Legacy service '{name}' has no such schema\n")
            return HttpAnswer.xml(schema)
        return HttpAnswer.xml(contract.wsdl(url))

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
        problem = schema_problem(contract.schemas, body)  # what the old service's own schema refuses
        if problem:
            raise BridgeFault(faults.INVALID_REQUEST, f"Invalid request for {operation.name}: {problem}")
        try:
            parsed = operation.request_element.parse(body, contract.client.wsdl.types)
        except Exception as exc:
            raise BridgeFault(faults.INVALID_REQUEST, f"Invalid request for {operation.name}: {exc}") from None
        if operation.mapping.kind == "changes":
            return SoapResponse(200, self._changes(operation, dataset, parsed, info, caller))
        if operation.mapping.kind == "search":
            return SoapResponse(200, self._search(operation, dataset, body, parsed, info, caller))
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

    def _search(self, operation: BoundOperation, dataset: Dataset, body: etree._Element, parsed: Any,
                info: CallInfo, caller: Any) -> bytes:
        """A search by request elements mapped to indexed fields: one record (``single``) or a page with a total."""
        mapping = operation.mapping
        criteria: dict[str, Any] = {}
        for element, criterion in mapping.criteria_fields().items():
            value = getattr(parsed, element, None)
            if value is None or (isinstance(value, str) and not value.strip()):
                if criterion.optional:
                    continue
                if body.find(f"{{*}}{element}") is None:
                    raise BridgeFault(faults.INVALID_REQUEST, f"Invalid request for {operation.name}: {element} is missing")
                value = ""
            criteria[criterion.field] = value
        paging = mapping.paging
        number, cursor, size = None, None, 1
        if not mapping.single:
            size = paging.default_page_size if paging else 20
            maximum = paging.max_page_size if paging else 100
            asked = getattr(parsed, paging.page_size, None) if paging and paging.page_size else None
            if asked is not None:
                if int(asked) < 1:
                    raise BridgeFault(faults.INVALID_REQUEST,
                                      f"Invalid request for {operation.name}: {paging.page_size if paging else ''} must be 1 or more")
                size = min(int(asked), maximum)
            # the page size is capped as the old provider capped it (its contract's max_page_size), not refused
            if paging and paging.cursor:
                cursor = getattr(parsed, paging.cursor, None) or None
                if cursor is not None and len(cursor) > MAX_CURSOR_CHARS:
                    raise BridgeFault(faults.INVALID_REQUEST,
                                      f"Invalid request for {operation.name}: {paging.cursor} is not one this service gave out")
            else:
                asked_page = getattr(parsed, paging.page, None) if paging and paging.page else None
                number = 1 if asked_page is None else int(asked_page)  # 0 is a page asked for, and refused
                if not 1 <= number <= MAX_PAGE:
                    raise BridgeFault(faults.INVALID_REQUEST, f"Invalid request for {operation.name}: "
                                      f"{paging.page if paging else ''} must be between 1 and {MAX_PAGE}")
        decision = self.reader.decide(caller, dataset)
        # an empty criterion (the schema allowed it) matches nothing: the contract's not-found answer, one use
        page = self.reader.search(decision, dataset, SearchRequest(criteria=criteria, page_size=size, page=number,
                                                                    cursor=cursor), info)
        if mapping.single:
            return self._render(operation, page.records[0] if page.records else None)
        found = page.total > 0
        if paging and paging.cursor:
            more = page.next_cursor is not None
        else:
            more = (number or 1) * size < page.total
        computed = {"total": page.total, "page": page.page if page.page is not None else number, "page_size": size,
                    "more": more, "found": found, "count": len(page.records)}
        values = self._fixed(operation, found)
        for path, what in mapping.computed.items():
            _put(values, path, computed[what])
        if paging and paging.cursor_out and page.next_cursor:
            values[paging.cursor_out] = page.next_cursor
        items = [zeep_values(map_to_legacy(mapping.fields, r)) for r in page.records]
        if mapping.wrapper:
            values[mapping.wrapper] = {mapping.items or "": items}
        else:
            values[mapping.items or ""] = items
        return self._envelope(operation, values)

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
        items = [{mapping.changed_at: item.change.changed_at,
                  mapping.record: zeep_values(map_to_legacy(mapping.fields, item.record))}
                 for item in page if item.record is not None]
        values: dict[str, Any] = dict(self._fixed(operation, True))
        values[mapping.items or ""] = items
        if mapping.more:
            values[mapping.more] = more
        return self._envelope(operation, values)

    @staticmethod
    def _fixed(operation: BoundOperation, found: bool) -> dict[str, Any]:
        """The constants of the answer, and the contract's not-found answer or fault when nothing was found."""
        values: dict[str, Any] = {}
        for path, value in operation.mapping.constants.items():
            _put(values, path, value)
        not_found = operation.mapping.not_found
        if not found and not_found is not None:
            if not_found.fault is not None:
                raise BridgeFault(not_found.fault.code, not_found.fault.string)
            for path, value in (not_found.answer or {}).items():
                _put(values, path, value)
        return values

    @classmethod
    def _render(cls, operation: BoundOperation, record: dict[str, Any] | None) -> bytes:
        values = cls._fixed(operation, record is not None)
        if record is not None:
            values[operation.mapping.response or ""] = zeep_values(map_to_legacy(operation.mapping.fields, record))
        return cls._envelope(operation, values)

    @staticmethod
    def _envelope(operation: BoundOperation, values: dict[str, Any]) -> bytes:
        """The answer in the old contract's own response element, rendered by its schema."""
        envelope = etree.Element(f"{{{NS_SOAP11}}}Envelope", nsmap={"soap": NS_SOAP11})
        body = etree.SubElement(envelope, f"{{{NS_SOAP11}}}Body")
        element = operation.response_element
        try:
            element.render(body, element(**values))
        except (zeep.exceptions.ValidationError, TypeError) as exc:
            # e.g. a permission reading fewer fields than the old contract requires
            message = getattr(exc, "message", None) or str(exc)
            raise BridgeFault(faults.ACCESS_DENIED, f"The answer cannot be given in this contract: {message} "
                                                    "(does the permission cover every field the contract requires?)") from None
        return etree.tostring(envelope, xml_declaration=True, encoding="UTF-8")


def _put(values: dict[str, Any], path: str, value: Any) -> None:
    """A value at a dotted response path (``Status.Code``)."""
    parts = path.split(".")
    for part in parts[:-1]:
        values = values.setdefault(part, {})
    values[parts[-1]] = value


def zeep_values(tree: Any) -> Any:
    """The mapping's neutral tree in zeep's spelling: attributes by their name, simple content as ``_value_1``."""
    if isinstance(tree, list):
        return [zeep_values(v) for v in tree]
    if isinstance(tree, dict):
        return {("_value_1" if k == TEXT else k[1:] if k.startswith("@") else k): zeep_values(v) for k, v in tree.items()}
    return tree


def validate_contracts(folder: Path, catalog: Catalog) -> tuple[list[str], list[ManifestError]]:
    """Check every contract mapping of a folder against its WSDL and the catalog (``catalog validate``):
    the names of the valid ones, and every problem found, each naming file, line and element."""
    valid: list[str] = []
    errors: list[ManifestError] = []
    if not folder.is_dir():
        return valid, errors
    for file in sorted(folder.glob("*.yaml")):
        try:
            contract = load_contract(file, strict=False)
        except ManifestError as exc:
            errors.append(exc)
            continue
        found = [contract.error(p) for p in contract.problems] + contract.dataset_errors(catalog)
        errors += found
        if not found:
            valid.append(contract.name)
    return valid, errors
