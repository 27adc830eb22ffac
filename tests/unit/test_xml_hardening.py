"""The one hardened parser refuses every XML trick before anything else sees the message."""

import pytest

from viss_bridge.xml import XmlRejected, check_libxml_pair, parse_untrusted

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<lolz>&lol3;</lolz>"""

XXE = b"""<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><r>&x;</r>"""


@pytest.mark.parametrize("data, reason", [
    (BILLION_LAUGHS, "doctype"),
    (XXE, "doctype"),
    (b"<!DOCTYPE r><r/>", "doctype"),
    (b"<r>&undefined;</r>", "malformed"),
    (b"not xml at all", "malformed"),
    (b"<r><unclosed></r>", "malformed"),
    (b"", "empty"),
    (b"<a>" * 300 + b"</a>" * 300, "depth"),
])
def test_rejects_tricks_with_a_reason(data: bytes, reason: str) -> None:
    with pytest.raises(XmlRejected) as caught:
        parse_untrusted(data)
    assert caught.value.reason == reason


def test_doctype_in_utf16_is_still_refused() -> None:
    data = '<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE r [<!ENTITY x "y">]><r>&x;</r>'.encode("utf-16")
    with pytest.raises(XmlRejected) as caught:
        parse_untrusted(data)
    assert caught.value.reason in ("doctype", "malformed")


def test_size_limit_is_checked_before_parsing() -> None:
    with pytest.raises(XmlRejected) as caught:
        parse_untrusted(b"<r>" + b"x" * 2000 + b"</r>", max_bytes=1024)
    assert caught.value.reason == "size"


def test_plain_document_parses() -> None:
    root = parse_untrusted("<r a='1'><ā>teksts</ā></r>".encode())
    assert root.find("ā").text == "teksts"


def test_lxml_and_xmlsec_share_libxml2() -> None:
    assert check_libxml_pair().matches


def test_structure_caps_refuse_floods_before_the_tree() -> None:
    from viss_bridge.xml import LIMITS, XmlRejected, parse_untrusted

    with pytest.raises(XmlRejected) as attrs:
        parse_untrusted(b"<r " + b" ".join(b'a%d=""' % i for i in range(LIMITS.max_attributes + 1)) + b"/>")
    assert attrs.value.reason == "attributes"
    with pytest.raises(XmlRejected) as elems:
        parse_untrusted(b"<r>" + b"<x/>" * LIMITS.max_elements + b"</r>")
    assert elems.value.reason == "elements"
    assert len(parse_untrusted(b"<r>" + b"<x a='1'/>" * 1000 + b"</r>")) == 1000


def test_only_documents_the_bytes_prove_small_skip_the_pre_scan(monkeypatch: pytest.MonkeyPatch) -> None:
    """Counting '<' and '=' bounds elements and attributes in ASCII-compatible encodings and UTF-16; anything
    else (near a cap, or an encoding where those characters are other bytes) still gets the pull-parser pass."""
    import viss_bridge.xml as hardened

    scanned: list[bytes] = []
    monkeypatch.setattr(hardened, "_prescan", scanned.append)
    ordinary = b'<?xml version="1.0" encoding="utf-8"?><e:Envelope xmlns:e="urn:e"><e:Body><x a="1">t</x></e:Body></e:Envelope>'
    assert parse_untrusted(ordinary).tag == "{urn:e}Envelope" and scanned == []
    near_attribute_cap = b"<r>" + b"<x a='1'/>" * (hardened.LIMITS.max_attributes + 1) + b"</r>"
    assert len(parse_untrusted(near_attribute_cap)) == hardened.LIMITS.max_attributes + 1
    assert scanned == [near_attribute_cap]
    other_bytes = b'<?xml version="1.0" encoding="IBM037"?>' + "<r a='1'/>".encode("cp037")
    with pytest.raises(XmlRejected):  # libxml2 here has no EBCDIC; what matters is that it was pre-scanned
        parse_untrusted(other_bytes)
    assert scanned[-1] == other_bytes
    utf16 = '<r a="1"><x/></r>'.encode("utf-16")  # starts with a byte-order mark: pre-scanned
    assert parse_untrusted(utf16).tag == "r" and scanned[-1] == utf16
