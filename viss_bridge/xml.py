"""The one hardened XML parser and the small XML helpers every module uses.

Untrusted XML reaches the bridge from consumers and legacy providers. lxml's
defaults are unsafe for that (entities resolve local files, DTDs load), and
Spyne's own parser accepts a DOCTYPE and silently truncates text around an
unresolved entity. So every untrusted document goes through
:func:`parse_untrusted`, which refuses a DOCTYPE outright, never touches the
network, never resolves entities and caps size, depth, attributes per element and
elements per message (the last two by a cheap pull-parser pre-scan).
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass

from lxml import etree

from viss_bridge.namespaces import (NS_SOAP11 as NS_SOAP11, NS_SOAP12 as NS_SOAP12, NS_XSD as NS_XSD,
                                    NS_XSI as NS_XSI, NS_WSDL as NS_WSDL, NS_WSDL_SOAP11 as NS_WSDL_SOAP11,
                                    NS_WSDL_SOAP12 as NS_WSDL_SOAP12)


DEFAULT_MAX_BYTES = 4 * 1024 * 1024
DEFAULT_MAX_ATTRIBUTES = 256
DEFAULT_MAX_ELEMENTS = 50_000
_PRESCAN_CHUNK = 64 * 1024


@dataclass
class XmlLimits:
    """Structure caps applied by :func:`parse_untrusted` (set once from Settings).

    A flood of attributes or elements fits well inside the byte cap yet costs
    seconds of CPU and hundreds of MB in the tree and in Spyne/zeep later.
    """

    max_attributes: int = DEFAULT_MAX_ATTRIBUTES
    max_elements: int = DEFAULT_MAX_ELEMENTS


LIMITS = XmlLimits()


def set_limits(max_attributes: int, max_elements: int) -> None:
    """Apply the node's configured caps (called when the app is built)."""
    LIMITS.max_attributes = max_attributes
    LIMITS.max_elements = max_elements


class XmlRejected(ValueError):
    """Untrusted XML that the bridge refuses to process.

    ``reason`` is a short machine-readable word (``size``, ``doctype``,
    ``malformed``, ``depth``, ``empty``, ``attributes``, ``elements``) so callers can map it to a fault code.
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
    if not _within_caps_by_count(data):
        _prescan(data)
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


# Encodings in which '<' and '=' are the bytes 0x3C and 0x3D (ASCII-compatible, and UTF-16/32, where
# they are those bytes padded with zeros): in these, counting the two bytes bounds elements and attributes.
_COUNTABLE_ENCODINGS = frozenset({"utf-8", "utf8", "us-ascii", "ascii", "iso-8859-1", "latin-1", "latin1",
                                  "utf-16", "utf-16le", "utf-16be"})
_DECLARED_ENCODING = re.compile(rb"\s*<\?xml[^>]*?encoding\s*=\s*[\"']([A-Za-z0-9._-]+)[\"']")


def _within_caps_by_count(data: bytes) -> bool:
    """True when the bytes alone prove the document is inside the element and attribute caps.

    Every element starts with '<' and every attribute (a namespace declaration too) carries '=', so
    fewer of those bytes than a cap means fewer elements or attributes than it, whatever the markup:
    an ordinary message of a few kB skips the pull-parser pass (about 5 % of a lookup's CPU, issue 12)
    and is parsed once. A document in an encoding where these characters are other bytes (EBCDIC, say)
    or that is near a cap is pre-scanned as before.
    """
    if data.count(b"<") > LIMITS.max_elements or data.count(b"=") > LIMITS.max_attributes:
        return False
    if data[:1] not in (b"<", b" ", b"\t", b"\r", b"\n", b"\xef"):  # not plain ASCII or UTF-8 (with its BOM)
        return False
    declared = _DECLARED_ENCODING.match(data, 3 if data.startswith(b"\xef\xbb\xbf") else 0)  # match() anchors
    return declared is None or declared.group(1).decode("ascii").lower() in _COUNTABLE_ENCODINGS


def _prescan(data: bytes) -> None:
    """Count elements and attributes with a pull parser, aborting at a cap.

    Fed in chunks, so a flood is refused once it passes a cap, while the partial
    tree is still bounded by the caps; the full parse only runs on bounded
    documents. (Elements are not cleared on their start event: doing so while
    libxml2 still builds them crashed workers.)
    Syntax errors are left to the full parse, which reports them.
    """
    pull = etree.XMLPullParser(events=("start",), resolve_entities=False, no_network=True,
                               load_dtd=False, huge_tree=False, collect_ids=False)
    elements = 0
    try:
        for start in range(0, len(data), _PRESCAN_CHUNK):
            pull.feed(data[start:start + _PRESCAN_CHUNK])
            for _event, element in pull.read_events():
                elements += 1
                if elements > LIMITS.max_elements:
                    raise XmlRejected("elements", f"the message has more elements than the limit of {LIMITS.max_elements}")
                if len(element.attrib) > LIMITS.max_attributes:
                    raise XmlRejected("attributes", f"an element has {len(element.attrib)} attributes, "
                                                    f"more than the limit of {LIMITS.max_attributes}")
    except etree.XMLSyntaxError:
        return


def _has_entity_refs(root: etree._Element) -> bool:
    for _ in root.iter(etree.Entity):
        return True
    return False


def parse_trusted(data: bytes) -> etree._Element:
    """Parse XML the bridge produced itself (generated WSDLs); still no network."""
    return etree.fromstring(data, _parser())


def local_name(element: etree._Element) -> str:
    return etree.QName(element).localname


def namespace(element: etree._Element) -> str | None:
    return etree.QName(element).namespace


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
