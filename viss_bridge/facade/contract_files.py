"""The files of an old contract as the bridge serves them: the WSDL and the schemas it imports or includes.

A WSDL whose types live in XSD files next to it (``xs:import``/``xs:include`` by relative
``schemaLocation``, ``wsdl:import`` by relative ``location``) only works for a client that fetched it
from a URL if those files are served too. As JAX-WS and .NET do, the WSDL at ``/legacy/<name>?wsdl``
names them as ``/legacy/<name>?xsd=<path relative to the WSDL>``, and every schema served that way has
its own nested locations rewritten the same way. Only files inside the WSDL's folder are served
(a ``?xsd=../../etc/passwd`` is not found), and only those the contract really references.

The same files give the XML Schema (lxml) that a request is checked against, so a request the old
service's schema refuses is refused naming the element, as the old service did.
"""

from __future__ import annotations

import posixpath
import re
from pathlib import Path
from urllib.parse import quote

from lxml import etree

from viss_bridge.xml import NS_WSDL, NS_WSDL_SOAP11, NS_WSDL_SOAP12, NS_XSD, parse_trusted

LOCATIONS = ((f"{{{NS_XSD}}}import", "schemaLocation"), (f"{{{NS_XSD}}}include", "schemaLocation"),
             (f"{{{NS_XSD}}}redefine", "schemaLocation"), (f"{{{NS_WSDL}}}import", "location"))
_ABSOLUTE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")


def _inside(root: Path, relative: str) -> Path | None:
    """The file ``relative`` (posix, relative to ``root``) names, if it stays inside ``root``."""
    if not relative or _ABSOLUTE.match(relative) or relative.startswith("/") or "\\" in relative:
        return None
    normal = posixpath.normpath(relative)
    if normal.startswith("../") or normal in ("..", "."):
        return None
    path = (root / normal).resolve()
    try:
        path.relative_to(root.resolve())
    except ValueError:
        return None
    return path if path.is_file() else None


class ContractFiles:
    """An old contract's WSDL and the schema files it references, rewritten for serving."""

    def __init__(self, wsdl_file: Path) -> None:
        self.wsdl_file = wsdl_file
        self.root = wsdl_file.parent
        self.wsdl_bytes = wsdl_file.read_bytes()
        self.referenced = self._walk()

    def _walk(self) -> dict[str, Path]:
        """Every file the WSDL reaches through relative locations: posix path relative to the root -> file."""
        found: dict[str, Path] = {}
        pending = [("", self.wsdl_bytes)]
        while pending:
            current, data = pending.pop()
            for _element, attribute, location in self._locations(parse_trusted(data)):
                relative = self._relative(current, location)
                if relative is None or relative in found:
                    continue
                path = _inside(self.root, relative)
                if path is None:
                    continue
                found[relative] = path
                pending.append((relative, path.read_bytes()))
        return found

    @staticmethod
    def _locations(root: etree._Element) -> list[tuple[etree._Element, str, str]]:
        result = []
        for tag, attribute in LOCATIONS:
            for element in root.iter(tag):
                location = element.get(attribute)
                if location:
                    result.append((element, attribute, location))
        return result

    @staticmethod
    def _relative(current: str, location: str) -> str | None:
        """``location`` as written in file ``current`` -> a path relative to the root (None: absolute URL)."""
        if _ABSOLUTE.match(location) or location.startswith("/"):
            return None
        return posixpath.normpath(posixpath.join(posixpath.dirname(current), location))

    def _rewrite(self, root: etree._Element, current: str, url: str) -> None:
        for element, attribute, location in self._locations(root):
            relative = self._relative(current, location)
            if relative is not None and relative in self.referenced:
                element.set(attribute, f"{url}?xsd={quote(relative)}")

    def wsdl(self, url: str) -> bytes:
        """The original WSDL: the service address and the schema locations point at ``url``."""
        root = parse_trusted(self.wsdl_bytes)
        for tag in (f"{{{NS_WSDL_SOAP11}}}address", f"{{{NS_WSDL_SOAP12}}}address"):
            for address in root.iter(tag):
                address.set("location", url)
        self._rewrite(root, "", url)
        return etree.tostring(root, xml_declaration=True, encoding="UTF-8")

    def xsd(self, name: str, url: str) -> bytes | None:
        """A schema the WSDL references (by its path relative to the WSDL, or its number in
        :attr:`referenced` order from 1), its own locations rewritten; None if it is not one of them."""
        if name.isdigit():
            names = sorted(self.referenced)
            index = int(name) - 1
            name = names[index] if 0 <= index < len(names) else ""
        normal = posixpath.normpath(name) if name else ""
        path = self.referenced.get(normal)
        if path is None:
            return None
        root = parse_trusted(path.read_bytes())
        self._rewrite(root, normal, url)
        return etree.tostring(root, xml_declaration=True, encoding="UTF-8")

    def schemas(self) -> dict[str, etree.XMLSchema]:
        """One lxml XMLSchema per target namespace of the WSDL's inline schemas (imports resolved from files)."""
        root = parse_trusted(self.wsdl_bytes)
        parser = etree.XMLParser(no_network=True, resolve_entities=False, load_dtd=False)
        result: dict[str, etree.XMLSchema] = {}
        for schema in root.iter(f"{{{NS_XSD}}}schema"):
            document = etree.ElementTree(etree.fromstring(etree.tostring(schema), parser,
                                                         base_url=str(self.wsdl_file)))
            compiled = etree.XMLSchema(document)
            namespaces = {schema.get("targetNamespace") or ""}
            namespaces |= {i.get("namespace") or "" for i in schema.iter(f"{{{NS_XSD}}}import")}
            for namespace in namespaces:
                result.setdefault(namespace, compiled)
        return result


_ELEMENT = re.compile(r"Element '(?:\{[^}]*\})?([^']+)'")


def schema_problem(schemas: dict[str, etree.XMLSchema], element: etree._Element) -> str | None:
    """Why the old schema refuses this request element (naming the element), or None if it accepts it."""
    schema = schemas.get(etree.QName(element).namespace or "")
    if schema is None:
        return None
    copy = etree.fromstring(etree.tostring(element))
    if schema.validate(copy):
        return None
    error = schema.error_log.last_error
    message = error.message if error is not None else "does not match the schema"
    found = _ELEMENT.search(message)
    name = found.group(1) if found else etree.QName(element).localname
    detail = _ELEMENT.sub(lambda m: f"'{m.group(1)}'", message)
    return f"{name}: {detail}"
