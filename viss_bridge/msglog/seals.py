"""Seals: a signed XML document over one batch of a node's records.

```
<vb:Seal xmlns:vb="urn:viss-bridge:msglog:seal:1" version="1">
  <vb:Node>node-1</vb:Node>
  <vb:FirstSeq>101</vb:FirstSeq> <vb:LastSeq>200</vb:LastSeq>
  <vb:MerkleRoot algorithm="rfc9162-sha256">hex</vb:MerkleRoot>       records 101..200
  <vb:PreviousChainHead algorithm="sha256">hex</vb:PreviousChainHead>  h_100
  <vb:ChainHead algorithm="sha256">hex</vb:ChainHead>                  h_200
  <vb:Created>2026-11-28T06:00:00.000000Z</vb:Created>
  <ds:Signature>... enveloped, exclusive c14n, RSA/ECDSA-SHA256, X509Certificate ...</ds:Signature>
</vb:Seal>
```

The enveloped XML-DSig signature carries the node's certificate, so
``xmlsec1 --verify --trusted-pem ca.pem seal.xml`` checks it without this
code. With a TSA configured, the seal's ``SignatureValue`` (decoded bytes)
gets an RFC 3161 time-stamp token.
"""

from __future__ import annotations

import base64
import datetime as dt
from dataclasses import dataclass

from cryptography import x509
from lxml import etree

from viss_bridge.security.keys import SigningKey
from viss_bridge.security.pki import TrustStore
from viss_bridge.security.xmldsig import NS_DS, SecurityError, sign_enveloped, verify_enveloped
from viss_bridge.xml import XmlRejected, parse_untrusted

NS_SEAL = "urn:viss-bridge:msglog:seal:1"


class SealInvalid(Exception):
    pass


@dataclass(frozen=True)
class SealInfo:
    node: str
    first_seq: int
    last_seq: int
    merkle_root: bytes
    previous_chain_head: bytes
    chain_head: bytes
    created: str
    signature_value: bytes


def _q(name: str) -> str:
    return f"{{{NS_SEAL}}}{name}"


def build_seal(key: SigningKey, node: str, first_seq: int, last_seq: int, merkle_root: bytes,
               previous_chain_head: bytes, chain_head: bytes, created: str) -> bytes:
    root = etree.Element(_q("Seal"), nsmap={"vb": NS_SEAL})
    root.set("version", "1")
    etree.SubElement(root, _q("Node")).text = node
    etree.SubElement(root, _q("FirstSeq")).text = str(first_seq)
    etree.SubElement(root, _q("LastSeq")).text = str(last_seq)
    etree.SubElement(root, _q("MerkleRoot"), algorithm="rfc9162-sha256").text = merkle_root.hex()
    etree.SubElement(root, _q("PreviousChainHead"), algorithm="sha256").text = previous_chain_head.hex()
    etree.SubElement(root, _q("ChainHead"), algorithm="sha256").text = chain_head.hex()
    etree.SubElement(root, _q("Created")).text = created
    sign_enveloped(root, key)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def _hex(root: etree._Element, name: str) -> bytes:
    text = (root.findtext(_q(name)) or "").strip()
    try:
        value = bytes.fromhex(text)
    except ValueError:
        raise SealInvalid(f"seal field {name} is not hex") from None
    if len(value) != 32:
        raise SealInvalid(f"seal field {name} is not a SHA-256 digest")
    return value


def read_seal(data: bytes) -> SealInfo:
    """Parse a seal without checking its signature (see :func:`verify_seal`)."""
    try:
        root = parse_untrusted(data)
    except XmlRejected as exc:
        raise SealInvalid(f"the seal is not acceptable XML: {exc}") from None
    return _info(root)


def _info(root: etree._Element) -> SealInfo:
    if root.tag != _q("Seal") or root.get("version") != "1":
        raise SealInvalid("not a version 1 viss-bridge seal")
    try:
        first, last = int(root.findtext(_q("FirstSeq")) or ""), int(root.findtext(_q("LastSeq")) or "")
    except ValueError:
        raise SealInvalid("seal sequence numbers are not integers") from None
    value = root.findtext(f"{{{NS_DS}}}Signature/{{{NS_DS}}}SignatureValue") or ""
    return SealInfo(node=root.findtext(_q("Node")) or "", first_seq=first, last_seq=last,
                    merkle_root=_hex(root, "MerkleRoot"), previous_chain_head=_hex(root, "PreviousChainHead"),
                    chain_head=_hex(root, "ChainHead"), created=root.findtext(_q("Created")) or "",
                    signature_value=base64.b64decode("".join(value.split())))


def verify_seal(data: bytes, trust: TrustStore, at: dt.datetime | None = None) -> tuple[SealInfo, x509.Certificate]:
    """Check the seal's signature and certificate (valid ``at``, default now); return its content and the signer."""
    try:
        root = parse_untrusted(data)
    except XmlRejected as exc:
        raise SealInvalid(f"the seal is not acceptable XML: {exc}") from None
    try:
        signer = verify_enveloped(root, trust, at=at)
    except SecurityError as exc:
        raise SealInvalid(f"seal signature: {exc.message}") from None
    return _info(root), signer
