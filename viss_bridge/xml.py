"""The one hardened XML parser and the small XML helpers every module uses.

Untrusted XML reaches the bridge from consumers and legacy providers. lxml's
defaults are unsafe for that (entities resolve local files, DTDs load), and
Spyne's own parser accepts a DOCTYPE and silently truncates text around an
unresolved entity. So every untrusted document goes through
:func:`parse_untrusted`, which refuses a DOCTYPE outright, never touches the
network, never resolves entities and caps size and depth.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from lxml import etree

NS_SOAP11 = "http://schemas.xmlsoap.org/soap/envelope/"
NS_SOAP12 = "http://www.w3.org/2003/05/soap-envelope"
NS_XSD = "http://www.w3.org/2001/XMLSchema"
NS_XSI = "http://www.w3.org/2001/XMLSchema-instance"
NS_WSDL = "http://schemas.xmlsoap.org/wsdl/"
NS_WSDL_SOAP11 = "http://schemas.xmlsoap.org/wsdl/soap/"
NS_WSDL_SOAP12 = "http://schemas.xmlsoap.org/wsdl/soap12/"

DEFAULT_MAX_BYTES = 4 * 1024 * 1024


class XmlRejected(ValueError):
    """Untrusted XML that the bridge refuses to process.

    ``reason`` is a short machine-readable word (``size``, ``doctype``,
    ``malformed``, ``depth``, ``empty``) so callers can map it to a fault code.
    """

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


_local = threading.local()


def _parser() -> etree.XMLParser:
    """A per-thread parser: lxml parsers are not safe to share across threads."""
    parser = getattr(_local, "parser", None)
    if parser is None:
        parser = etree.XMLParser(
            resolve_entities=False,
            no_network=True,
            load_dtd=False,
            dtd_validation=False,
            huge_tree=False,
            remove_comments=False,
            remove_pis=False,
            collect_ids=False,
            strip_cdata=False,
        )
        _local.parser = parser
    return parser


def parse_untrusted(data: bytes, max_bytes: int = DEFAULT_MAX_BYTES) -> etree._Element:
    """Parse bytes from outside the bridge, or raise :class:`XmlRejected`."""
    if not data or not data.strip():
        raise XmlRejected("empty", "the message is empty")
    if len(data) > max_bytes:
        raise XmlRejected("size", f"the message has {len(data)} bytes, more than the limit of {max_bytes}")
    # A cheap pre-check stops entity bombs before libxml2 builds anything.
    # It cannot be fooled by UTF-16: the tree check below catches that case.
    if b"<!DOCTYPE" in data[:4096] or b"<!ENTITY" in data:
        raise XmlRejected("doctype", "a DOCTYPE or entity declaration is not allowed")
    try:
        root = etree.fromstring(data, _parser())
    except etree.XMLSyntaxError as exc:
        # libxml2 without XML_PARSE_HUGE stops at 256 levels of nesting.
        reason = "depth" if "Excessive depth" in str(exc) else "malformed"
        raise XmlRejected(reason, f"the message is not well-formed XML: {exc}") from None
    docinfo = root.getroottree().docinfo
    if docinfo.internalDTD is not None or docinfo.externalDTD is not None or docinfo.doctype:
        raise XmlRejected("doctype", "a DOCTYPE is not allowed")
    if _has_entity_refs(root):
        raise XmlRejected("doctype", "entity references are not allowed")
    return root


def _has_entity_refs(root: etree._Element) -> bool:
    for _ in root.iter(etree.Entity):
        return True
    return False



def parse_trusted(data: bytes) -> etree._Element:
    """Parse XML the bridge produced itself (generated WSDLs); still no network."""
    return etree.fromstring(data, _parser())


def to_bytes(element: etree._Element, declaration: bool = True) -> bytes:
    return etree.tostring(element, xml_declaration=declaration, encoding="UTF-8")


def local_name(element: etree._Element) -> str:
    return etree.QName(element).localname


def namespace(element: etree._Element) -> str | None:
    return etree.QName(element).namespace


def child_text(parent: etree._Element, tag: str) -> str | None:
    """Text of the first child with this Clark-notation tag, stripped; None if absent."""
    child = parent.find(tag)
    if child is None:
        return None
    return (child.text or "").strip()


@dataclass(frozen=True)
class LibxmlCheck:
    lxml: tuple[int, ...]
    xmlsec: tuple[int, ...]

    @property
    def matches(self) -> bool:
        return self.lxml == self.xmlsec


def check_libxml_pair() -> LibxmlCheck:
    """lxml and xmlsec each carry libxml2; a mismatch corrupts memory when trees cross."""
    import xmlsec  # imported here: xml.py must stay cheap to import for tools

    return LibxmlCheck(tuple(etree.LIBXML_VERSION), tuple(xmlsec.get_libxml_version()))
