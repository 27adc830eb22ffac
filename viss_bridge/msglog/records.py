"""Records: one message on one leg, its canonical metadata, and the hashes the chain is built from.

A record's hash is the SHA-256 of its *canonical metadata*: a JSON object
(keys sorted, no insignificant white space, UTF-8) that holds every field of
the record plus ``body_sha256``, the SHA-256 of the exact message bytes. So
the two files an evidence container holds for a record (``record.json`` and
the message bytes) can be checked with nothing more than ``sha256sum``.

The chain: ``h_0`` is 32 zero bytes and ``h_i = SHA-256(h_{i-1} || record_hash_i)``
(raw digests concatenated), one chain per node.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Any

FORMAT_VERSION = 1
GENESIS = bytes(32)
LEGS = ("consumer", "provider")
DIRECTIONS = ("request", "response")


@dataclass
class RecordInput:
    """What a caller hands the log for one message (the log adds node, sequence number and time).

    ``leg`` is ``consumer`` (legacy consumer <-> bridge) or ``provider``
    (bridge <-> legacy provider); ``direction`` is ``request`` or ``response``
    as seen on that leg. ``exchange_id`` ties together every message of one
    consumer call (both legs); use the same value for a provider call made
    while serving it.
    """

    body: bytes
    leg: str
    direction: str
    exchange_id: str
    endpoint: str | None = None
    dialect: str | None = None
    client: str | None = None
    service: str | None = None
    message_id: str | None = None
    user_id: str | None = None
    subjects: list[str] = field(default_factory=list)
    status: int | None = None
    fault_code: str | None = None
    fault_id: str | None = None
    duration_us: int | None = None
    remote_addr: str | None = None

    def __post_init__(self) -> None:
        if self.leg not in LEGS:
            raise ValueError(f"leg must be one of {LEGS}, got {self.leg!r}")
        if self.direction not in DIRECTIONS:
            raise ValueError(f"direction must be one of {DIRECTIONS}, got {self.direction!r}")
        if not isinstance(self.body, (bytes, bytearray)):
            raise TypeError("body must be the exact bytes as on the wire")


# Columns of msglog_record that are part of the record (in this order), besides body and hashes.
META_COLUMNS = ("node_id", "seq", "recorded_at", "exchange_id", "leg", "direction", "endpoint", "dialect", "client",
                "service", "message_id", "user_id", "subjects", "status", "fault_code", "fault_id", "duration_us",
                "remote_addr")


def utc_text(moment: dt.datetime) -> str:
    """The one time format of the log: UTC, microseconds, ``Z``."""
    return moment.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# One encoder for every record: json.dumps with these options would build a new one per call (same bytes).
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)
_load_json = json.JSONDecoder().decode
_encode_str = json.encoder.encode_basestring  # what the encoder uses for strings with ensure_ascii=False


def canonical_meta(row: dict[str, Any], body_sha256: str, body_length: int) -> bytes:
    """The canonical metadata bytes of a record; its SHA-256 is the record hash (Merkle leaf)."""
    subjects = row.get("subjects")
    if isinstance(subjects, str):
        subjects = _load_json(subjects) if subjects else []
    meta = {
        "v": FORMAT_VERSION,
        "node": row["node_id"], "seq": int(row["seq"]), "time": row["recorded_at"],
        "exchange": row["exchange_id"], "leg": row["leg"], "direction": row["direction"],
        "endpoint": row.get("endpoint"), "dialect": row.get("dialect"), "client": row.get("client"),
        "service": row.get("service"), "message_id": row.get("message_id"), "user_id": row.get("user_id"),
        "subjects": list(subjects or []), "status": row.get("status"), "fault_code": row.get("fault_code"),
        "fault_id": row.get("fault_id"), "duration_us": row.get("duration_us"), "remote_addr": row.get("remote_addr"),
        "body_sha256": body_sha256, "body_length": body_length,
    }
    return _CANONICAL.encode(meta).encode("utf-8")


def record_hash(row: dict[str, Any], body: bytes) -> tuple[bytes, bytes]:
    """(canonical metadata bytes, record hash) for a record row and its body."""
    meta = canonical_meta(row, hashlib.sha256(body).hexdigest(), len(body))
    return meta, hashlib.sha256(meta).digest()


_SIMPLE_SUBJECTS = re.compile(r'\[(?:"[^"\\\x00-\x1f]*"(?:, ?"[^"\\\x00-\x1f]*")*)?\]')


# The canonical metadata with its keys in sorted order; each %s is a JSON value.
_TEMPLATE = ('{"body_length":%d,"body_sha256":"%s","client":%s,"dialect":%s,"direction":%s,"duration_us":%s,'
             '"endpoint":%s,"exchange":%s,"fault_code":%s,"fault_id":%s,"leg":%s,"message_id":%s,"node":%s,'
             '"remote_addr":%s,"seq":%s,"service":%s,"status":%s,"subjects":%s,"time":%s,"user_id":%s,"v":'
             + str(FORMAT_VERSION) + '}')
_ODD = "\x00"
# The "hash" of a row whose values no record can hold: not canonical JSON, so never a record's hash.
UNREADABLE = hashlib.sha256(b"a row no record can have been written as").digest()  # no JSON text the encoder writes contains a raw NUL: it marks a value for the slow path


def row_record_hash(row: tuple[Any, ...] | list[Any], body: bytes, body_sha256: str | None = None) -> bytes:
    """The record hash of a stored row whose first columns are :data:`META_COLUMNS` (the verifier's hot path).

    The canonical JSON is written directly (keys in sorted order, the json module's own string escaping)
    when every value is a string, integer or null and the subjects are a plain list of strings; anything
    else goes through :func:`canonical_meta`. Same bytes either way (tested against it).
    """
    digest = body_sha256 or hashlib.sha256(body).hexdigest()  # the appender hashed the body before its lock
    enc, odd = _encode_str, _ODD
    values = [enc(x) if x.__class__ is str else "null" if x is None else int.__repr__(x) if x.__class__ is int else odd
              for x in (row[8], row[7], row[5], row[16], row[6], row[3], row[14], row[15], row[4], row[10], row[0],
                        row[17], row[1], row[9], row[13])]
    subjects = row[12]
    if not subjects:
        values.append("[]")
    elif subjects.__class__ is str and _SIMPLE_SUBJECTS.fullmatch(subjects):
        values.append(subjects.replace('", "', '","'))
    else:
        values.append(odd)
    for x in (row[2], row[11]):
        values.append(enc(x) if x.__class__ is str else "null" if x is None else odd)
    if odd in values or row[1].__class__ is not int:
        try:
            data = canonical_meta(dict(zip(META_COLUMNS, row)), digest, len(body))
        except (TypeError, ValueError):  # a value no record can hold (bytes for text, subjects that are not JSON)
            return UNREADABLE
    else:
        data = (_TEMPLATE % (len(body), digest, *values)).encode("utf-8")
    return hashlib.sha256(data).digest()


def chain_next(previous: bytes, leaf: bytes) -> bytes:
    return hashlib.sha256(previous + leaf).digest()



# SQLite, the verifier's hot path: the canonical metadata without its first two keys, written by SQLite's
# json_object for a whole page of rows (its strings are escaped exactly as the json module's with
# ensure_ascii=False), so Python only hashes the body and puts ``{"body_length":N,"body_sha256":"HEX",``
# in front: :func:`tail_record_hash`. Keys in sorted order, as in _TEMPLATE. Where a value is not what
# the canonical form would write (a real number, escapes in the subjects, NULL subjects) the bytes
# differ and do not hash to the stored record hash; SQLite refuses a BLOB where text belongs or subjects
# that are not JSON. Either way the verifier recomputes exactly (row_record_hash) before it reports
# anything, so this path decides nothing on its own.
_OBJECT_KEYS = (("client", "client"), ("dialect", "dialect"), ("direction", "direction"),
                ("duration_us", "duration_us"), ("endpoint", "endpoint"), ("exchange", "exchange_id"),
                ("fault_code", "fault_code"), ("fault_id", "fault_id"), ("leg", "leg"), ("message_id", "message_id"),
                ("node", "node_id"), ("remote_addr", "remote_addr"), ("seq", "seq"), ("service", "service"),
                ("status", "status"), ("subjects", "json(subjects)"), ("time", "recorded_at"), ("user_id", "user_id"),
                ("v", str(FORMAT_VERSION)))
SQLITE_META_TAIL = "CAST(json_object(" + ", ".join(f"'{key}', {value}" for key, value in _OBJECT_KEYS) + ") AS BLOB)"


def tail_record_hash(body: bytes, tail: bytes) -> bytes:
    """The record hash from the body and :data:`SQLITE_META_TAIL` (the same bytes as :func:`row_record_hash`
    when that tail is right)."""
    digest = hashlib.sha256(b'{"body_length":%d,"body_sha256":"%s",' % (len(body), hashlib.sha256(body).hexdigest().encode()))
    digest.update(memoryview(tail)[1:])
    return digest.digest()
