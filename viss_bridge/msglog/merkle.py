"""Merkle trees over record hashes, as in RFC 9162 (Certificate Transparency 2.0).

Leaf: ``SHA-256(0x00 || record_hash)``; node: ``SHA-256(0x01 || left || right)``;
a tree of n leaves splits at the largest power of two below n. The inclusion
proof of a leaf is the audit path of RFC 9162 section 2.1.3, and
:func:`verify_inclusion` is its verification algorithm (section 2.1.3.2).
"""

from __future__ import annotations

import hashlib
from typing import Sequence


def leaf_hash(record_hash: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + record_hash).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def root(record_hashes: Sequence[bytes]) -> bytes:
    """The Merkle tree hash of the leaves (iterative, level by level, same result as RFC 9162's MTH)."""
    if not record_hashes:
        return hashlib.sha256(b"").digest()
    sha256 = hashlib.sha256  # inlined leaf_hash / node_hash: the verifier computes this for every record
    level = [sha256(b"\x00" + h).digest() for h in record_hashes]
    # Level-by-level pairing with the odd last node promoted equals RFC 9162's split at powers of two.
    while len(level) > 1:
        nxt = [sha256(b"\x01" + level[i] + level[i + 1]).digest() for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            nxt.append(level[-1])
        level = nxt
    return level[0]


def inclusion_proof(record_hashes: Sequence[bytes], index: int) -> list[bytes]:
    """The audit path for leaf ``index`` (0-based), bottom-up."""
    if not 0 <= index < len(record_hashes):
        raise IndexError(index)
    path: list[bytes] = []
    level = [leaf_hash(h) for h in record_hashes]
    i = index
    while len(level) > 1:
        sibling = i ^ 1
        if sibling < len(level):
            path.append(level[sibling])
        nxt = [node_hash(level[j], level[j + 1]) for j in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            nxt.append(level[-1])
        level = nxt
        i //= 2
    return path


def verify_inclusion(record_hash: bytes, index: int, size: int, path: Sequence[bytes], expected_root: bytes) -> bool:
    """RFC 9162 section 2.1.3.2: does ``path`` prove leaf ``index`` of a ``size``-leaf tree with this root?"""
    if not 0 <= index < size:
        return False
    fn, sn = index, size - 1
    r = leaf_hash(record_hash)
    for p in path:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn & 1 == 0 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == expected_root
