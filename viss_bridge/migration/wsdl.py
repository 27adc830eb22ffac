"""Reading legacy WSDL 1.1 contracts into a plain model: services, ports, operations, fields.

Real generation-II WSDLs import other WSDLs, import and include XSDs (some of
them "chameleon" includes without a target namespace), mix SOAP 1.1 and 1.2
bindings and use both document/literal and rpc styles. This reader follows all
of that with lxml through the project's hardened parser (no DTD, no entities)
and resolves every ``location``/``schemaLocation`` locally: relative to the
document that names it, or by file name in the ``schema_dirs`` an operator
gives. The network is touched only when ``allow_network`` is set.

The type tree of each message is flattened into :class:`FieldRow` rows (path,
XSD type, optional, repeated, depth), which is what a migration team needs to
map a service onto a dataset; see ``docs/migration.md`` for the complexity
figure.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import urljoin, urlparse

from lxml import etree

from viss_bridge.xml import NS_WSDL, NS_WSDL_SOAP11, NS_WSDL_SOAP12, NS_XSD, XmlRejected, parse_untrusted
from viss_bridge.namespaces import NS_WSDL20 as NS_WSDL20, NS_SOAPENC as NS_SOAPENC

MAX_WSDL_BYTES = 32 * 1024 * 1024
MAX_DEPTH = 40  # nesting limit for flattening (protects against pathological schemas)


class WsdlError(ValueError):
    """A WSDL that cannot be inventoried; names the file and the cause."""

    def __init__(self, source: str, cause: str, abstract: bool = False) -> None:
        self.source = source
        self.cause = cause
        self.abstract = abstract  # a valid WSDL without any SOAP service (e.g. only imported by others)
        super().__init__(f"{source}: {cause}")


# -- the model ----------------------------------------------------------------------------

@dataclass
class FieldRow:
    """One element or attribute of a message, flattened out of the type tree."""

    path: str  # slash-separated from the body element, e.g. Person/Address/AddressCode
    name: str
    xsd_type: str  # a builtin (xs:string) or the complex type's name (tns:PersonType)
    optional: bool
    repeated: bool
    depth: int  # 1 for direct children of the body element
    complex: bool = False  # has child rows of its own
    attribute: bool = False
    namespace: str = ""
    # set on the rows of a choice (only one branch is present) and on recursive references
    note: str = ""
    # what the schema says about the values (the scaffold turns them into enum/nillable/constants)
    enum: tuple[str, ...] = ()  # xs:enumeration values of the (simple) type
    nillable: bool = False
    fixed: str | None = None  # fixed="..." of an element or attribute
    default: str | None = None  # default="..." of an element or attribute
    max_length: int | None = None  # xs:maxLength (or xs:length)
    max_inclusive: str | None = None  # xs:maxInclusive of a number
    simple_content: bool = False  # a complex type with simple content: text plus attributes
    type_name: str = ""  # the named XSD type (PersonCodeType), empty for builtins and anonymous types

    @property
    def choice(self) -> bool:
        return self.note.startswith("choice")


@dataclass
class MessageInfo:
    message: str  # the wsdl:message name
    element: str  # local name of the SOAP Body's child element (rpc: the operation wrapper)
    namespace: str  # its namespace URI
    parts: list[str]
    fields: list[FieldRow]
    headers: list[str] = field(default_factory=list)

    @property
    def max_depth(self) -> int:
        return max((f.depth for f in self.fields), default=0)


@dataclass
class OperationInfo:
    name: str
    style: str  # document | rpc
    use: str  # literal | encoded
    soap_action: str
    input: MessageInfo | None
    output: MessageInfo | None
    faults: list[str] = field(default_factory=list)
    # what could not be read for this operation (a type missing from the schemas, ...): the rest of
    # the WSDL is still inventoried
    problems: list[str] = field(default_factory=list)
    documents: list[str] = field(default_factory=list)  # schema files (besides the WSDL) its types come from

    @property
    def field_count(self) -> int:
        return sum(len(m.fields) for m in (self.input, self.output) if m)

    @property
    def repeated_count(self) -> int:
        return sum(1 for m in (self.input, self.output) if m for f in m.fields if f.repeated)

    @property
    def max_depth(self) -> int:
        return max((m.max_depth for m in (self.input, self.output) if m), default=0)

    @property
    def complexity(self) -> int:
        """fields + 2 per repeated element + 3 per nesting level beyond the first (docs/migration.md)."""
        return self.field_count + 2 * self.repeated_count + 3 * max(0, self.max_depth - 1)


@dataclass
class PortInfo:
    name: str
    binding: str
    soap_version: str  # 1.1 | 1.2
    address: str
    operations: list[OperationInfo]


@dataclass
class ServiceInfo:
    name: str
    namespace: str
    ports: list[PortInfo]

    def operations(self) -> list[OperationInfo]:
        """Each operation once, even when several ports (SOAP 1.1 and 1.2) bind it."""
        seen: dict[str, OperationInfo] = {}
        for port in self.ports:
            for op in port.operations:
                seen.setdefault(op.name, op)
        return list(seen.values())

    @property
    def complexity(self) -> int:
        return sum(op.complexity for op in self.operations())


@dataclass
class WsdlInventory:
    source: str
    target_namespace: str
    name: str
    services: list[ServiceInfo]
    documents: list[str]  # every file read: the WSDL and what it imports and includes
    schema_count: int
    warnings: list[str] = field(default_factory=list)
    # (kind, from document, to document): wsdl:import, xs:import, xs:include, xs:redefine
    links: list[tuple[str, str, str]] = field(default_factory=list)

    @property
    def complexity(self) -> int:
        return sum(s.complexity for s in self.services)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["complexity"] = self.complexity
        for service, sdata in zip(self.services, data["services"]):
            sdata["complexity"] = service.complexity
            for port, pdata in zip(service.ports, sdata["ports"]):
                for op, odata in zip(port.operations, pdata["operations"]):
                    odata.update(complexity=op.complexity, field_count=op.field_count,
                                 repeated_count=op.repeated_count, max_depth=op.max_depth)
        return data


def complexity_band(value: int) -> str:
    return "low" if value < 25 else "medium" if value < 80 else "high"


# -- loading documents ---------------------------------------------------------------------

@dataclass
class _Loader:
    allow_network: bool
    schema_dirs: tuple[Path, ...]
    timeout: float = 20.0
    documents: dict[str, etree._Element] = field(default_factory=dict)

    root_dir: Path | None = None  # the WSDL's folder: relative imports may not leave its tree

    def load(self, location: str, base: str | None, referrer: str | None) -> tuple[str, etree._Element]:
        resolved = self._resolve(location, base, referrer)
        if not _is_url(resolved):
            self._inside_tree(resolved, location, referrer)
        if resolved in self.documents:
            return resolved, self.documents[resolved]
        data = self._read(resolved, referrer)
        try:
            root = parse_untrusted(data, max_bytes=MAX_WSDL_BYTES)
        except XmlRejected as exc:
            raise WsdlError(resolved, str(exc).replace("the message", "the file", 1)) from None
        root.getroottree().docinfo.URL = resolved  # error messages name the file a node came from
        self.documents[resolved] = root
        return resolved, root

    def _inside_tree(self, resolved: str, location: str, referrer: str | None) -> None:
        """Local files are read from the WSDL's folder tree (or a --schema-dir) only, never from elsewhere."""
        path = Path(resolved).resolve()
        if self.root_dir is None:
            self.root_dir = path.parent
            return
        allowed = (self.root_dir, *(d.resolve() for d in self.schema_dirs))
        if not any(path.is_relative_to(folder) for folder in allowed):
            raise WsdlError(referrer or resolved, f"refers to {location}, which is outside the WSDL's folder "
                            f"{self.root_dir}; only files in that folder tree are read (copy the file there, or "
                            "give its folder as --schema-dir)")

    def _resolve(self, location: str, base: str | None, referrer: str | None) -> str:
        if _is_url(location):
            if location.startswith("file://"):
                return urlparse(location).path
            if not self.allow_network:
                local = self._local_copy(location)
                if local:
                    return local
                raise WsdlError(referrer or location, f"refers to {location}, a network location; the network is not used "
                                "unless allowed (--allow-network), or put a copy in a --schema-dir")
            return location
        if base is None:
            return str(Path(location))
        if _is_url(base):
            if not self.allow_network:
                local = self._local_copy(location)
                if local:
                    return local
                raise WsdlError(referrer or base, f"refers to {location} relative to {base}; the network is not used "
                                "unless allowed (--allow-network)")
            return urljoin(base, location)
        candidate = (Path(base).parent / location)
        if not candidate.exists():
            local = self._local_copy(location)
            if local:
                return local
        return str(candidate)

    def _local_copy(self, location: str) -> str | None:
        name = Path(urlparse(location).path).name
        for folder in self.schema_dirs:
            candidate = folder / name
            if name and candidate.is_file():
                return str(candidate)
        return None

    def _read(self, resolved: str, referrer: str | None) -> bytes:
        if _is_url(resolved):
            import requests

            try:
                response = requests.get(resolved, timeout=self.timeout)
            except requests.RequestException as exc:
                raise WsdlError(resolved, f"cannot fetch: {exc.__class__.__name__}: {exc}") from None
            if response.status_code != 200:
                raise WsdlError(resolved, f"cannot fetch: HTTP {response.status_code}")
            return response.content
        try:
            path = Path(resolved)
            if path.stat().st_size > MAX_WSDL_BYTES:
                raise WsdlError(resolved, f"larger than {MAX_WSDL_BYTES} bytes")
            return path.read_bytes()
        except OSError as exc:
            if referrer:
                raise WsdlError(referrer, f"imports {resolved}, which cannot be read: {exc.strerror or exc}") from None
            raise WsdlError(resolved, f"cannot read: {exc.strerror or exc}") from None


def _is_url(text: str) -> bool:
    return urlparse(text).scheme in ("http", "https", "file")


# -- the schema set ------------------------------------------------------------------------

@dataclass
class _Schemas:
    elements: dict[tuple[str, str], tuple[etree._Element, str]] = field(default_factory=dict)
    complex_types: dict[tuple[str, str], tuple[etree._Element, str]] = field(default_factory=dict)
    simple_types: dict[tuple[str, str], tuple[etree._Element, str]] = field(default_factory=dict)
    groups: dict[tuple[str, str], tuple[etree._Element, str]] = field(default_factory=dict)
    attribute_groups: dict[tuple[str, str], tuple[etree._Element, str]] = field(default_factory=dict)
    attributes: dict[tuple[str, str], tuple[etree._Element, str]] = field(default_factory=dict)
    seen: set[tuple[str, str]] = field(default_factory=set)
    count: int = 0


_KINDS = {"element": "elements", "complexType": "complex_types", "simpleType": "simple_types", "group": "groups",
          "attributeGroup": "attribute_groups", "attribute": "attributes"}


class _Reader:
    def __init__(self, loader: _Loader) -> None:
        self.loader = loader
        self.schemas = _Schemas()
        self.messages: dict[tuple[str, str], etree._Element] = {}
        self.port_types: dict[tuple[str, str], etree._Element] = {}
        self.bindings: dict[tuple[str, str], etree._Element] = {}
        self.services: list[tuple[etree._Element, str]] = []
        self.warnings: list[str] = []
        self.links: list[tuple[str, str, str]] = []
        self.used: set[str] = set()  # documents whose definitions the operation being read uses
        self._wsdl_seen: set[str] = set()

    # documents

    def read_wsdl(self, location: str, root: etree._Element) -> None:
        if location in self._wsdl_seen:
            return
        self._wsdl_seen.add(location)
        tns = root.get("targetNamespace", "")
        for child in root:
            if not isinstance(child.tag, str):
                continue
            tag = etree.QName(child)
            if tag.namespace != NS_WSDL:
                continue
            if tag.localname == "import":
                where = child.get("location")
                if not where:
                    continue
                resolved, imported = self.loader.load(where, location, location)
                self.links.append(("wsdl:import", location, resolved))
                if etree.QName(imported).namespace == NS_XSD:
                    self.read_schema(resolved, imported, None)
                elif etree.QName(imported) == etree.QName(NS_WSDL, "definitions"):
                    self.read_wsdl(resolved, imported)
                else:
                    raise WsdlError(resolved, f"imported by {location} but neither a WSDL 1.1 nor an XSD document")
            elif tag.localname == "types":
                for schema in child:
                    if isinstance(schema.tag, str) and etree.QName(schema) == etree.QName(NS_XSD, "schema"):
                        self.read_schema(location, schema, None, inline=True)
            elif tag.localname == "message":
                self.messages[(tns, child.get("name", ""))] = child
            elif tag.localname == "portType":
                self.port_types[(tns, child.get("name", ""))] = child
            elif tag.localname == "binding":
                self.bindings[(tns, child.get("name", ""))] = child
            elif tag.localname == "service":
                self.services.append((child, tns))

    def read_schema(self, location: str, schema: etree._Element, chameleon_tns: str | None, inline: bool = False) -> None:
        tns = schema.get("targetNamespace")
        if tns is None:
            tns = chameleon_tns or ""
        key = (location if not inline else f"{location}#{id(schema)}", tns)
        if key in self.schemas.seen:
            return
        self.schemas.seen.add(key)
        self.schemas.count += 1
        for child in schema:
            if not isinstance(child.tag, str) or etree.QName(child).namespace != NS_XSD:
                continue
            local = etree.QName(child).localname
            if local in ("import", "include", "redefine"):
                where = child.get("schemaLocation")
                if not where:
                    continue  # an import of a namespace defined elsewhere in the WSDL (or a builtin)
                resolved, doc = self.loader.load(where, location, location)
                self.links.append((f"xs:{local}", location, resolved))
                if etree.QName(doc) != etree.QName(NS_XSD, "schema"):
                    raise WsdlError(resolved, f"named by {location} as a schema but it is not an xs:schema")
                self.read_schema(resolved, doc, tns if local != "import" else None)
                if local == "redefine":
                    for redefined in child:
                        if isinstance(redefined.tag, str) and etree.QName(redefined).localname in _KINDS:
                            self._register(redefined, tns)
            elif local in _KINDS:
                self._register(child, tns)

    def _register(self, node: etree._Element, tns: str) -> None:
        table = getattr(self.schemas, _KINDS[etree.QName(node).localname])
        table[(tns, node.get("name", ""))] = (node, tns)

    # names

    @staticmethod
    def qname(node: etree._Element, value: str, default_ns: str | None = None) -> tuple[str, str]:
        value = value.strip()
        if ":" in value:
            prefix, local = value.split(":", 1)
            ns = node.nsmap.get(prefix)
            if ns is None:
                raise WsdlError(_source(node), f"line {node.sourceline}: the prefix '{prefix}' in '{value}' is not declared")
            return ns, local
        return (node.nsmap.get(None, default_ns or ""), value)

    def lookup(self, table: str, key: tuple[str, str], node: etree._Element, what: str) -> tuple[etree._Element, str]:
        found: tuple[etree._Element, str] | None = getattr(self.schemas, table).get(key)
        if found is None:
            raise WsdlError(_source(node), f"line {node.sourceline}: {what} {{{key[0]}}}{key[1]} is not defined in any "
                                           "schema the WSDL includes or imports")
        self.used.add(_source(found[0]))
        return found

    def table(self, table: str, key: tuple[str, str]) -> etree._Element:
        """A definition known to exist (checked with ``in``), noting the document it comes from."""
        node: etree._Element = getattr(self.schemas, table)[key][0]
        self.used.add(_source(node))
        return node

    # the model

    def inventory(self, source: str, root: etree._Element) -> WsdlInventory:
        services = []
        for service_node, tns in self.services:
            ports = []
            for port in service_node.findall(f"{{{NS_WSDL}}}port"):
                info = self.port(port, tns)
                if info is not None:
                    ports.append(info)
            services.append(ServiceInfo(service_node.get("name", ""), tns, ports))
        if not self.services and self.bindings:
            # a WSDL without a service element (an interface-only contract): list its bindings
            for (tns, name), binding in self.bindings.items():
                info = self.binding_port(name, binding, "", tns)
                if info is not None:
                    services.append(ServiceInfo(name, tns, [info]))
            self.warnings.append("no wsdl:service element; listing bindings as services")
        return WsdlInventory(source=source, target_namespace=root.get("targetNamespace", ""),
                             name=root.get("name", "") or Path(urlparse(source).path).stem,
                             services=services, documents=list(self.loader.documents),
                             schema_count=self.schemas.count, warnings=self.warnings, links=self.links)

    def port(self, port: etree._Element, tns: str) -> PortInfo | None:
        binding_key = self.qname(port, port.get("binding", ""))
        binding = self.bindings.get(binding_key)
        if binding is None:
            raise WsdlError(_source(port), f"line {port.sourceline}: port '{port.get('name')}' names binding "
                                           f"{{{binding_key[0]}}}{binding_key[1]}, which is not defined")
        address = ""
        for child in port:
            if isinstance(child.tag, str) and etree.QName(child).localname == "address":
                address = child.get("location", "")
        return self.binding_port(port.get("name", ""), binding, address, binding_key[0])

    def binding_port(self, name: str, binding: etree._Element, address: str, tns: str) -> PortInfo | None:
        soap = binding.find(f"{{{NS_WSDL_SOAP11}}}binding")
        version = "1.1"
        if soap is None:
            soap = binding.find(f"{{{NS_WSDL_SOAP12}}}binding")
            version = "1.2"
        if soap is None:
            self.warnings.append(f"port '{name}': binding '{binding.get('name')}' is not a SOAP binding; skipped")
            return None
        soap_ns = NS_WSDL_SOAP11 if version == "1.1" else NS_WSDL_SOAP12
        default_style = soap.get("style", "document")
        port_type_key = self.qname(binding, binding.get("type", ""))
        port_type = self.port_types.get(port_type_key)
        if port_type is None:
            raise WsdlError(_source(binding), f"line {binding.sourceline}: binding '{binding.get('name')}' names portType "
                                              f"{{{port_type_key[0]}}}{port_type_key[1]}, which is not defined")
        abstract = {op.get("name"): op for op in port_type.findall(f"{{{NS_WSDL}}}operation")}
        operations = []
        for bop in binding.findall(f"{{{NS_WSDL}}}operation"):
            op_name = bop.get("name", "")
            self.used = set()
            problems: list[str] = []
            aop = abstract.get(op_name)
            if aop is None:
                raise WsdlError(_source(bop), f"line {bop.sourceline}: binding operation '{op_name}' is not in portType "
                                              f"'{port_type.get('name')}'")
            soap_op = bop.find(f"{{{soap_ns}}}operation")
            style = (soap_op.get("style") if soap_op is not None else None) or default_style
            action = (soap_op.get("soapAction") if soap_op is not None else None) or ""
            messages: dict[str, MessageInfo | None] = {}
            use = "literal"
            for direction in ("input", "output"):
                amsg = aop.find(f"{{{NS_WSDL}}}{direction}")
                bmsg = bop.find(f"{{{NS_WSDL}}}{direction}")
                if amsg is None:
                    messages[direction] = None
                    continue
                body = bmsg.find(f"{{{soap_ns}}}body") if bmsg is not None else None
                if body is not None and body.get("use"):
                    use = body.get("use", "literal")
                try:
                    messages[direction] = self.message(amsg, bmsg, body, style, op_name, direction, tns, soap_ns)
                except WsdlError as exc:  # e.g. a type missing from the schemas: this operation only
                    problems.append(f"{op_name} {direction}: {Path(urlparse(exc.source).path).name}: {exc.cause}")
                    messages[direction] = MessageInfo(amsg.get("message", ""), "", "", [], [])
            faults = [f.get("name", "") for f in aop.findall(f"{{{NS_WSDL}}}fault")]
            documents = sorted(d for d in self.used if d != _source(binding))
            operations.append(OperationInfo(op_name, style, use, action, messages["input"], messages["output"], faults,
                                            problems, documents))
        return PortInfo(name, binding.get("name", ""), version, address, operations)

    def message(self, amsg: etree._Element, bmsg: etree._Element | None, body: etree._Element | None, style: str,
                op_name: str, direction: str, tns: str, soap_ns: str) -> MessageInfo:
        msg_key = self.qname(amsg, amsg.get("message", ""))
        message = self.messages.get(msg_key)
        if message is None:
            raise WsdlError(_source(amsg), f"line {amsg.sourceline}: operation '{op_name}' names message "
                                           f"{{{msg_key[0]}}}{msg_key[1]}, which is not defined")
        parts = message.findall(f"{{{NS_WSDL}}}part")
        in_header: set[str] = set()  # parts of this message that travel in the SOAP Header, not the Body
        headers: list[str] = []
        for header in (bmsg.findall(f"{{{soap_ns}}}header") if bmsg is not None else []):
            part_name = header.get("part", "")
            header_key = self.qname(header, header.get("message", "")) if header.get("message") else msg_key
            header_message = self.messages.get(header_key)
            if header_key == msg_key:
                in_header.add(part_name)
            part = next((p for p in (header_message if header_message is not None else [])
                         if isinstance(p.tag, str) and etree.QName(p).localname == "part"
                         and p.get("name") == part_name), None)
            if part is not None and part.get("element"):
                headers.append(self.qname(part, part.get("element", ""))[1])
            else:
                headers.append(part_name)
        body_parts = body.get("parts", "").split() if body is not None and body.get("parts") is not None else None
        parts = [p for p in parts if (body_parts is None or p.get("name") in body_parts)
                 and p.get("name") not in in_header]
        if style == "rpc":
            ns = body.get("namespace", tns) if body is not None else tns
            wrapper = op_name if direction == "input" else f"{op_name}Response"
            rows: list[FieldRow] = []
            for part in parts:
                pname = part.get("name", "")
                if part.get("element"):
                    ekey = self.qname(part, part.get("element", ""))
                    enode, ens = self.lookup("elements", ekey, part, "element")
                    rows.extend(_Flattener(self).element(enode, ens, "", 1, (), occurs=(1, 1)))
                else:
                    tkey = self.qname(part, part.get("type", "xs:anyType"))
                    rows.extend(_Flattener(self).typed(pname, "", tkey, part, "", 1, (), (1, 1)))
            return MessageInfo(message.get("name", ""), wrapper, ns, [p.get("name", "") for p in parts], rows, headers)
        # document style: one part naming an element (several parts are listed in order)
        if not parts:
            return MessageInfo(message.get("name", ""), "", "", [], [], headers)
        rows = []
        element_name = ""
        element_ns = ""
        for index, part in enumerate(parts):
            if part.get("element"):
                ekey = self.qname(part, part.get("element", ""))
                enode, ens = self.lookup("elements", ekey, part, "element")
                if index == 0:
                    element_name, element_ns = ekey[1], ekey[0]
                    rows.extend(_Flattener(self).content_of_element(enode, ens, "", 1, ()))
                else:
                    self.warnings.append(f"{op_name} {direction}: several body parts in document style; "
                                         f"part '{part.get('name')}' listed as its own element")
                    rows.extend(_Flattener(self).element(enode, ens, "", 1, (), occurs=(1, 1)))
            else:
                tkey = self.qname(part, part.get("type", "xs:anyType"))
                if index == 0:
                    element_name, element_ns = part.get("name", ""), ""
                self.warnings.append(f"{op_name} {direction}: document-style part '{part.get('name')}' uses type= "
                                     "(not WS-I compliant); treated as an element named after the part")
                rows.extend(_Flattener(self).typed(part.get("name", ""), "", tkey, part, "", 1, (), (1, 1)))
        return MessageInfo(message.get("name", ""), element_name, element_ns, [p.get("name", "") for p in parts], rows,
                           headers)


def _source(node: etree._Element) -> str:
    base = node.getroottree().docinfo.URL
    return base or "the WSDL"


def _occurs(node: etree._Element) -> tuple[int, int | None]:
    low = int(node.get("minOccurs", "1") or 1)
    high_text = node.get("maxOccurs", "1")
    high = None if high_text == "unbounded" else int(high_text)
    return low, high


def _xs(local: str) -> str:
    return f"{{{NS_XSD}}}{local}"


class _Flattener:
    """Walks one message's type tree and yields rows."""

    def __init__(self, reader: _Reader) -> None:
        self.r = reader

    def content_of_element(self, node: etree._Element, ns: str, path: str, depth: int,
                           stack: tuple[tuple[str, str], ...]) -> Iterator[FieldRow]:
        """The rows below a global element (the element itself is the SOAP body child)."""
        complex_node, type_key = self._complex_of(node)
        if complex_node is not None:
            yield from self.complex_content(complex_node, ns if type_key is None else type_key[0], path, depth,
                                            stack + ((type_key,) if type_key else ()), False, False)

    def _complex_of(self, node: etree._Element) -> tuple[etree._Element | None, tuple[str, str] | None]:
        inline = node.find(_xs("complexType"))
        if inline is not None:
            return inline, None
        if node.get("type"):
            key = self.r.qname(node, node.get("type", ""))
            if key[0] != NS_XSD and key in self.r.schemas.complex_types:
                return self.r.table("complex_types", key), key
        return None, None

    def element(self, node: etree._Element, ns: str, path: str, depth: int, stack: tuple[tuple[str, str], ...],
                occurs: tuple[int, int | None], optional_ctx: bool = False, repeated_ctx: bool = False,
                note: str = "") -> Iterator[FieldRow]:
        if node.get("ref"):
            key = self.r.qname(node, node.get("ref", ""))
            target, target_ns = self.r.lookup("elements", key, node, "element")
            yield from self.element(target, target_ns, path, depth, stack, occurs, optional_ctx, repeated_ctx, note)
            return
        name = node.get("name", "")
        parent = node.getparent()
        form_ns = ns if (parent is not None and etree.QName(parent).localname == "schema"
                         or _qualified(node)) else ""
        if node.get("type"):
            key = self.r.qname(node, node.get("type", ""))
            yield from _element_facts(node, self.typed(name, form_ns, key, node, path, depth, stack, occurs,
                                                       optional_ctx, repeated_ctx, note))
            return
        yield from _element_facts(node, self._inline(node, name, form_ns, ns, path, depth, stack, occurs, optional_ctx,
                                                     repeated_ctx, note))

    def _inline(self, node: etree._Element, name: str, form_ns: str, ns: str, path: str, depth: int,
                stack: tuple[tuple[str, str], ...], occurs: tuple[int, int | None], optional_ctx: bool,
                repeated_ctx: bool, note: str) -> Iterator[FieldRow]:
        """An element with an anonymous (inline) type, or none."""
        inline_complex = node.find(_xs("complexType"))
        inline_simple = node.find(_xs("simpleType"))
        row_path = f"{path}/{name}" if path else name
        optional = occurs[0] == 0 or optional_ctx
        repeated = occurs[1] is None or occurs[1] > 1 or repeated_ctx
        if inline_complex is not None:
            base = self._simple_content_base(inline_complex)
            yield FieldRow(row_path, name, base or "(anonymous complex type)", optional, repeated, depth,
                           complex=base is None, namespace=form_ns, note=note, simple_content=base is not None)
            if depth < MAX_DEPTH:
                yield from self.complex_content(inline_complex, ns, row_path, depth + 1, stack, False, False)
            return
        xsd_type = self._simple_base(inline_simple) if inline_simple is not None else "xs:anyType"
        yield FieldRow(row_path, name, xsd_type, optional, repeated, depth, namespace=form_ns, note=note,
                       **(self._facets(inline_simple) if inline_simple is not None else {}))

    def typed(self, name: str, ns: str, key: tuple[str, str], node: etree._Element, path: str, depth: int,
              stack: tuple[tuple[str, str], ...], occurs: tuple[int, int | None], optional_ctx: bool = False,
              repeated_ctx: bool = False, note: str = "") -> Iterator[FieldRow]:
        row_path = f"{path}/{name}" if path else name
        optional = occurs[0] == 0 or optional_ctx
        repeated = occurs[1] is None or occurs[1] > 1 or repeated_ctx
        if key[0] == NS_XSD:
            yield FieldRow(row_path, name, f"xs:{key[1]}", optional, repeated, depth, namespace=ns, note=note)
            return
        if key in self.r.schemas.simple_types:
            simple = self.r.table("simple_types", key)
            yield FieldRow(row_path, name, self._simple_base(simple), optional, repeated, depth, namespace=ns, note=note,
                           type_name=key[1], **self._facets(simple))
            return
        complex_node, type_ns = self.r.lookup("complex_types", key, node, "type")
        array_of = self._soapenc_array(complex_node)
        if array_of is not None:
            yield FieldRow(row_path, name, f"array of {array_of[1]}", optional, repeated, depth, complex=True,
                           namespace=ns, note=note)
            yield from self.typed("item", "", array_of, complex_node, row_path, depth + 1, stack, (0, None))
            return
        base = self._simple_content_base(complex_node)
        if key in stack:
            yield FieldRow(row_path, name, key[1], optional, repeated, depth, complex=True, namespace=ns,
                           note=(note + "; " if note else "") + f"recursive: {key[1]} contains itself; not expanded",
                           type_name=key[1])
            return
        yield FieldRow(row_path, name, base or key[1], optional, repeated, depth, complex=base is None, namespace=ns,
                       note=note, simple_content=base is not None, type_name=key[1])
        if depth < MAX_DEPTH:
            yield from self.complex_content(complex_node, type_ns, row_path, depth + 1, stack + (key,), False, False)

    def complex_content(self, node: "etree._Element | _Holder", ns: str, path: str, depth: int,
                        stack: tuple[tuple[str, str], ...], optional_ctx: bool, repeated_ctx: bool) -> Iterator[FieldRow]:
        """Children of a complexType (or of an extension/restriction/group)."""
        for child in node:
            if not isinstance(child.tag, str) or etree.QName(child).namespace != NS_XSD:
                continue
            local = etree.QName(child).localname
            if local in ("sequence", "all", "choice"):
                low, high = _occurs(child)
                yield from self.particles(child, ns, path, depth, stack, optional_ctx or low == 0 or local == "choice",
                                          repeated_ctx or high is None or (high or 1) > 1,
                                          "choice: one of these" if local == "choice" else "")
            elif local == "group":
                key = self.r.qname(child, child.get("ref", ""))
                group, gns = self.r.lookup("groups", key, child, "group")
                low, high = _occurs(child)
                yield from self.complex_content(group, gns, path, depth, stack, optional_ctx or low == 0,
                                                repeated_ctx or high is None or (high or 1) > 1)
            elif local in ("complexContent", "simpleContent"):
                for derivation in child:
                    if not isinstance(derivation.tag, str):
                        continue
                    dlocal = etree.QName(derivation).localname
                    base_key = self.r.qname(derivation, derivation.get("base", "xs:anyType"))
                    if dlocal == "extension" and local == "complexContent" and base_key[0] != NS_XSD:
                        if base_key in stack:
                            continue
                        base_node, base_ns = self.r.lookup("complex_types", base_key, derivation, "base type")
                        yield from self.complex_content(base_node, base_ns, path, depth, stack + (base_key,),
                                                        optional_ctx, repeated_ctx)
                    yield from self.complex_content(derivation, ns, path, depth, stack, optional_ctx, repeated_ctx)
            elif local == "attribute":
                yield from self.attribute(child, ns, path, depth)
            elif local == "attributeGroup":
                key = self.r.qname(child, child.get("ref", ""))
                group, gns = self.r.lookup("attribute_groups", key, child, "attributeGroup")
                yield from self.complex_content(group, gns, path, depth, stack, optional_ctx, repeated_ctx)
            elif local in ("any", "anyAttribute"):
                low, high = _occurs(child)
                row_path = f"{path}/*" if path else "*"
                yield FieldRow(row_path, "*", "xs:any" if local == "any" else "xs:anyAttribute",
                               optional_ctx or low == 0 or local == "anyAttribute",
                               repeated_ctx or high is None or (high or 1) > 1, depth,
                               attribute=local == "anyAttribute", note="wildcard: content not described by the schema")

    def particles(self, node: etree._Element, ns: str, path: str, depth: int, stack: tuple[tuple[str, str], ...],
                  optional_ctx: bool, repeated_ctx: bool, note: str) -> Iterator[FieldRow]:
        for child in node:
            if not isinstance(child.tag, str) or etree.QName(child).namespace != NS_XSD:
                continue
            local = etree.QName(child).localname
            if local == "element":
                yield from self.element(child, ns, path, depth, stack, _occurs(child), optional_ctx, repeated_ctx, note)
            elif local in ("sequence", "choice", "all"):
                low, high = _occurs(child)
                yield from self.particles(child, ns, path, depth, stack, optional_ctx or low == 0 or local == "choice",
                                          repeated_ctx or high is None or (high or 1) > 1,
                                          "choice: one of these" if local == "choice" else note)
            elif local in ("group", "any"):
                yield from self.complex_content(_Holder(child), ns, path, depth, stack, optional_ctx, repeated_ctx)

    def attribute(self, node: etree._Element, ns: str, path: str, depth: int) -> Iterator[FieldRow]:
        if node.get("ref"):
            key = self.r.qname(node, node.get("ref", ""))
            target, _ = self.r.lookup("attributes", key, node, "attribute")
            name = key[1]
            type_node = target
        else:
            name = node.get("name", "")
            type_node = node
        if node.get("use") == "prohibited":
            return
        facts: dict[str, Any] = {}
        if type_node.get("type"):
            key = self.r.qname(type_node, type_node.get("type", ""))
            if key[0] == NS_XSD:
                xsd_type = f"xs:{key[1]}"
            elif key in self.r.schemas.simple_types:
                simple = self.r.table("simple_types", key)
                xsd_type = self._simple_base(simple)
                facts = dict(self._facets(simple), type_name=key[1])
            else:
                xsd_type = key[1]
        elif (inline := type_node.find(_xs("simpleType"))) is not None:
            xsd_type = self._simple_base(inline)
            facts = self._facets(inline)
        else:
            xsd_type = "xs:anySimpleType"
        row_path = f"{path}/@{name}" if path else f"@{name}"
        yield FieldRow(row_path, f"@{name}", xsd_type, node.get("use") != "required", False, depth, attribute=True,
                       fixed=node.get("fixed", type_node.get("fixed")), default=node.get("default", type_node.get("default")),
                       **facts)

    def _facets(self, simple: etree._Element, seen: int = 0) -> dict[str, Any]:
        """enumeration, maxLength and maxInclusive of a simpleType, following its restriction chain."""
        facts: dict[str, Any] = {}
        restriction = simple.find(_xs("restriction"))
        if restriction is None or seen > 20:
            return facts
        enum = tuple(e.get("value", "") for e in restriction.findall(_xs("enumeration")))
        if enum:
            facts["enum"] = enum
        for facet in ("maxLength", "length"):
            found = restriction.find(_xs(facet))
            if found is not None and (found.get("value") or "").isdigit():
                facts["max_length"] = int(found.get("value", "0"))
        found = restriction.find(_xs("maxInclusive"))
        if found is not None and found.get("value"):
            facts["max_inclusive"] = found.get("value")
        base = restriction.get("base")
        inner: etree._Element | None = None
        if base:
            key = self.r.qname(restriction, base)
            if key[0] != NS_XSD and key in self.r.schemas.simple_types:
                inner = self.r.table("simple_types", key)
        else:
            inner = restriction.find(_xs("simpleType"))
        if inner is not None:
            for name, value in self._facets(inner, seen + 1).items():
                if name == "max_length" and "max_length" in facts:
                    value = min(value, facts["max_length"])
                facts.setdefault(name, value) if name != "max_length" else facts.__setitem__(name, value)
        return facts

    def _simple_base(self, simple: etree._Element, seen: int = 0) -> str:
        """The builtin type a simpleType derives from (lists and unions named as such)."""
        restriction = simple.find(_xs("restriction"))
        if restriction is not None:
            if restriction.get("base"):
                key = self.r.qname(restriction, restriction.get("base", ""))
                if key[0] == NS_XSD:
                    return f"xs:{key[1]}"
                if key in self.r.schemas.simple_types and seen < 20:
                    return self._simple_base(self.r.table("simple_types", key), seen + 1)
                return key[1]
            inner = restriction.find(_xs("simpleType"))
            return self._simple_base(inner, seen + 1) if inner is not None and seen < 20 else "xs:anySimpleType"
        if simple.find(_xs("list")) is not None:
            return "xs:list"
        if simple.find(_xs("union")) is not None:
            return "xs:union"
        return "xs:anySimpleType"

    def _simple_content_base(self, complex_node: etree._Element) -> str | None:
        simple_content = complex_node.find(_xs("simpleContent"))
        if simple_content is None:
            return None
        for derivation in simple_content:
            if isinstance(derivation.tag, str) and derivation.get("base"):
                key = self.r.qname(derivation, derivation.get("base", ""))
                if key[0] == NS_XSD:
                    return f"xs:{key[1]}"
                if key in self.r.schemas.simple_types:
                    return self._simple_base(self.r.table("simple_types", key))
                if key in self.r.schemas.complex_types:
                    return self._simple_content_base(self.r.table("complex_types", key)) or key[1]
                return key[1]
        return "xs:anySimpleType"

    def _soapenc_array(self, complex_node: etree._Element) -> tuple[str, str] | None:
        restriction = complex_node.find(f"{_xs('complexContent')}/{_xs('restriction')}")
        if restriction is None or not restriction.get("base"):
            return None
        if self.r.qname(restriction, restriction.get("base", "")) != (NS_SOAPENC, "Array"):
            return None
        for attribute in restriction.iter(_xs("attribute")):
            for name, value in attribute.attrib.items():
                if etree.QName(name).localname == "arrayType":
                    return self.r.qname(attribute, value.split("[")[0])
        return (NS_XSD, "anyType")


def _element_facts(node: etree._Element, rows: Iterator[FieldRow]) -> Iterator[FieldRow]:
    """Set what the element declaration itself says (nillable, fixed, default) on its own (first) row."""
    first = True
    for row in rows:
        if first:
            row.nillable = row.nillable or node.get("nillable") in ("true", "1")
            row.fixed = node.get("fixed", row.fixed)
            row.default = node.get("default", row.default)
            first = False
        yield row


class _Holder:
    """Wraps one particle so ``complex_content`` can treat it as a content model."""

    def __init__(self, child: etree._Element) -> None:
        self.child = child

    def __iter__(self) -> Iterator[etree._Element]:
        return iter([self.child])


def _qualified(node: etree._Element) -> bool:
    form = node.get("form")
    if form:
        return form == "qualified"
    for ancestor in node.iterancestors(_xs("schema")):
        return ancestor.get("elementFormDefault") == "qualified"
    return False


# -- entry point -----------------------------------------------------------------------------

def read_wsdl(location: str, *, allow_network: bool = False, schema_dirs: tuple[str | Path, ...] = ()) -> WsdlInventory:
    """Inventory one WSDL (file path or URL) or raise :class:`WsdlError` naming the file and the cause."""
    if _is_url(location) and not location.startswith("file://") and not allow_network:
        raise WsdlError(location, "is a network address; fetching it needs --allow-network "
                                  "(or save the WSDL and its schemas and give the file)")
    loader = _Loader(allow_network=allow_network, schema_dirs=tuple(Path(d) for d in schema_dirs))
    source, root = loader.load(location, None, None)
    tag = etree.QName(root)
    if tag.namespace == NS_WSDL20:
        raise WsdlError(source, "is a WSDL 2.0 description; only WSDL 1.1 (what generation-II services publish) "
                                "is supported")
    if tag != etree.QName(NS_WSDL, "definitions"):
        raise WsdlError(source, f"is not a WSDL 1.1 document (root element {tag.localname!r} in "
                                f"{tag.namespace or 'no namespace'})")
    reader = _Reader(loader)
    try:
        reader.read_wsdl(source, root)
        inventory = reader.inventory(source, root)
    except WsdlError as exc:
        if exc.source != source:  # a problem in an imported document: name the WSDL first, then the document
            raise WsdlError(source, f"{exc.source}: {exc.cause}") from None
        raise
    except (ValueError, KeyError, TypeError, RecursionError) as exc:
        raise WsdlError(source, f"cannot be read: {exc.__class__.__name__}: {exc}") from None
    if not inventory.services:
        raise WsdlError(source, "describes no SOAP service (no wsdl:service with a SOAP 1.1 or 1.2 port)",
                        abstract=True)
    return inventory
