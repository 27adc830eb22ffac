"""Evidence containers: one exchange with everything needed to prove it offline.

Layout (ASiC-E: a ZIP whose first entry ``mimetype`` is stored uncompressed
and reads ``application/vnd.etsi.asic-e+zip``, with ``META-INF/manifest.xml``
listing every file and its media type)::

    mimetype
    META-INF/manifest.xml
    META-INF/signatures0.xml                    XAdES-T signature over every file below (DigiDoc4, libdigidocpp)
    README.txt                                  how to check each part with standard tools
    messages/<node>-<seq>-<leg>-<direction>.xml exact bytes as on the wire (.http: a REST face's HTTP message)
    records/<node>-<seq>.json                   canonical metadata; sha256(file) = record hash
    proofs/<node>-<seq>.json                    RFC 9162 inclusion proof of the record in its seal
    seals/<node>-<first>-<last>.xml             XML-DSig seal (xmlsec1 --verify)
    seals/<node>-<first>-<last>.sigvalue        the seal's SignatureValue bytes (what was time-stamped)
    seals/<node>-<first>-<last>.tsr             RFC 3161 TimeStampResp, DER (openssl ts -verify)
    certs/node-signing.pem, certs/tsa.pem       the signers' certificates (the trust anchor is NOT included:
                                                a verifier brings its own)

Two signatures, made at two moments: the seal (an enveloped XML-DSig by the
node, time-stamped when the records were sealed, seconds after the exchange)
ties the records to the log; the container's XAdES signature (node key,
time-stamped at export) covers every data file, so DigiDoc tools see one
signed document and any changed byte of any file is named.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import zipfile
from dataclasses import dataclass, field
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from lxml import etree

from viss_bridge.msglog import merkle
from viss_bridge.msglog.records import META_COLUMNS, record_hash
from viss_bridge.msglog.seals import SealInvalid, read_seal, verify_seal
from viss_bridge.msglog.store import LogStore
from viss_bridge.msglog.tsp import TimestampError, request_timestamp, token_of, verify_timestamp
from viss_bridge.msglog.xades import (SIGNATURE_FILE, DataFile, XadesError, add_archive_timestamp, sign_container_files,
                                     verify_signature_document)
from viss_bridge.security.keys import SigningKey
from viss_bridge.security.pki import CertificateError, TrustStore, subject_cn
from viss_bridge.security.xmldsig import embedded_certificates
from viss_bridge.xml import parse_untrusted

MIMETYPE = "application/vnd.etsi.asic-e+zip"
MAX_CONTAINER_BYTES = 512 * 1024 * 1024  # unpacked; a container from elsewhere must not exhaust memory
NS_MANIFEST = "urn:oasis:names:tc:opendocument:xmlns:manifest:1.0"
MEDIA = {".xml": "text/xml", ".http": "message/http", ".json": "application/json", ".tsr": "application/timestamp-reply",
         ".sigvalue": "application/octet-stream", ".pem": "application/pem-certificate-chain", ".txt": "text/plain"}


class EvidenceError(Exception):
    pass


# The REST faces log an HTTP message (request line or status line, headers, body): not XML (RFC 9112's message/http).
_HTTP_MESSAGE = re.compile(rb"^(HTTP/1\.[01] [0-9]{3} |[A-Z]+ /\S* HTTP/1\.[01]\r\n)")


def _message_suffix(body: bytes) -> str:
    return ".http" if _HTTP_MESSAGE.match(body) else ".xml"


def _media(name: str) -> str:
    return next((m for ext, m in MEDIA.items() if name.endswith(ext)), "application/octet-stream")


def find_exchange_records(store: LogStore, *, exchange_id: str | None = None, message_id: str | None = None,
                          node: str | None = None, seq: int | None = None) -> list[dict[str, Any]]:
    """Every record of the exchange(s) selected (both legs, both directions), oldest first."""
    columns = ", ".join(META_COLUMNS) + ", body, record_hash"
    if node is not None and seq is not None:
        rows = store.query("SELECT exchange_id FROM msglog_record WHERE node_id = ? AND seq = ?", (node, seq))
        if not rows:
            raise EvidenceError(f"no record {node}/{seq}")
        exchange_id = rows[0][0]
    if exchange_id:  # or the fault UUID from faultDetail
        rows = store.query(f"SELECT {columns} FROM msglog_record WHERE exchange_id IN (SELECT exchange_id FROM "
                           f"msglog_record WHERE exchange_id = ? OR fault_id = ?) ORDER BY node_id, seq",
                           (exchange_id, exchange_id))
    elif message_id:
        rows = store.query(f"SELECT {columns} FROM msglog_record WHERE exchange_id IN "
                           f"(SELECT exchange_id FROM msglog_record WHERE message_id = ?) ORDER BY node_id, seq",
                           (message_id,))
    else:
        raise EvidenceError("say which exchange: exchange id, message id, or node and sequence number")
    if not rows:
        raise EvidenceError("no such exchange in the log")
    out = []
    for row in rows:
        values = dict(zip(META_COLUMNS, row[:len(META_COLUMNS)]))
        values["body"], values["record_hash"] = bytes(row[-2]), bytes(row[-1])
        out.append(values)
    return out


def find_person_records(store: LogStore, person: str, since: str | None = None, until: str | None = None,
                        limit: int = 10_000) -> list[dict[str, Any]]:
    """Every record of every exchange that concerned ``person`` in the period (a data-subject request)."""
    from viss_bridge.msglog.find import find_records

    exchanges = sorted({r["exchange_id"] for r in find_records(store, person=person, since=since, until=until,
                                                               limit=limit)})
    if not exchanges:
        raise EvidenceError(f"no exchange concerning {person} in the log" + (" in that period" if since or until else ""))
    found: dict[tuple[str, int], dict[str, Any]] = {}
    for exchange in exchanges:
        for record in find_exchange_records(store, exchange_id=exchange):
            found[(record["node_id"], int(record["seq"]))] = record
    return [found[k] for k in sorted(found)]


def export_exchange(store: LogStore, records: list[dict[str, Any]], key: SigningKey, tsa_url: str | None = None) -> bytes:
    """Build the container for ``records`` (each must be sealed); refuses if the log disagrees with itself.

    ``key`` signs the container (XAdES over every data file); with ``tsa_url`` the signature gets a
    SignatureTimeStamp (XAdES-T), without it it stays XAdES-B (no proof of when the export was made)."""
    files: dict[str, bytes] = {}
    certs: dict[str, bytes] = {}
    seals_done: set[tuple[str, int]] = set()
    readme_records = []
    for rec in records:
        node, seq = rec["node_id"], int(rec["seq"])
        meta, leaf = record_hash(rec, rec["body"])
        if leaf != rec["record_hash"]:
            raise EvidenceError(f"record {node}/{seq} does not match its stored hash: run 'viss-bridge log verify'")
        found = store.query("SELECT first_seq, last_seq, seal_xml, tsr FROM msglog_seal WHERE node_id = ? AND "
                            "first_seq <= ? AND last_seq >= ?", (node, seq, seq))
        if not found:
            raise EvidenceError(f"record {node}/{seq} is not sealed yet (seals follow within seconds; "
                                "or run 'viss-bridge log seal')")
        first, last, seal_xml, tsr = int(found[0][0]), int(found[0][1]), bytes(found[0][2]), found[0][3]
        leaves = [bytes(r[0]) for r in store.query("SELECT record_hash FROM msglog_record WHERE node_id = ? AND seq BETWEEN ? "
                                                   "AND ? ORDER BY seq", (node, first, last))]
        info = read_seal(seal_xml)
        if len(leaves) != last - first + 1 or merkle.root(leaves) != info.merkle_root:
            raise EvidenceError(f"seal {node}/{first}..{last} does not match the records: run 'viss-bridge log verify'")
        stem = f"{node}-{seq:09d}"
        seal_stem = f"seals/{node}-{first:09d}-{last:09d}"
        message_name = f"messages/{stem}-{rec['leg']}-{rec['direction']}{_message_suffix(rec['body'])}"
        files[message_name] = rec["body"]
        files[f"records/{stem}.json"] = meta
        proof = {"format": "viss-bridge merkle inclusion proof v1 (RFC 9162 section 2.1.3)",
                 "record": f"records/{stem}.json", "message": message_name,
                 "leaf": "SHA-256 of the record file's bytes; Merkle leaf = SHA-256(0x00 || leaf)",
                 "record_hash": leaf.hex(), "leaf_index": seq - first, "tree_size": last - first + 1,
                 "audit_path": [h.hex() for h in merkle.inclusion_proof(leaves, seq - first)],
                 "merkle_root": info.merkle_root.hex(), "seal": f"{seal_stem}.xml"}
        files[f"proofs/{stem}.json"] = json.dumps(proof, indent=2).encode()
        if (node, first) not in seals_done:
            seals_done.add((node, first))
            files[f"{seal_stem}.xml"] = seal_xml
            files[f"{seal_stem}.sigvalue"] = info.signature_value
            seal_signature = parse_untrusted(seal_xml).find("{http://www.w3.org/2000/09/xmldsig#}Signature")
            if seal_signature is None:
                raise EvidenceError(f"the seal of record {node}/{seq} has no signature: run 'viss-bridge log verify'")
            for cert in embedded_certificates(seal_signature):
                certs.setdefault("certs/node-signing.pem", cert.public_bytes(serialization.Encoding.PEM))
            if tsr is not None:
                files[f"{seal_stem}.tsr"] = bytes(tsr)
                for cert in _token_certs(bytes(tsr)):
                    certs.setdefault("certs/tsa.pem", cert.public_bytes(serialization.Encoding.PEM))
        readme_records.append((stem, message_name, seal_stem, tsr is not None))
    files.update(certs)
    files["README.txt"] = _readme(readme_records).encode()
    stamp = _stamper(tsa_url) if tsa_url else None
    names = sorted(files)
    signature = sign_container_files([DataFile(n, _media(n), files[n]) for n in names], key, timestamp=stamp)
    return _zip(files, signature)


def _token_certs(tsr: bytes) -> list[x509.Certificate]:
    token = token_of(tsr)
    return [x509.load_der_x509_certificate(c.chosen.dump()) for c in token["content"]["certificates"] or []
            if c.name == "certificate"]


def _readme(records: list[tuple[str, str, str, bool]]) -> str:
    lines = ["viss-bridge evidence container (ASiC-E layout).", "",
             "Check it all:   viss-bridge evidence verify THIS.asice --trust ca.pem", "",
             "The container is an ASiC-E with a XAdES-T signature (META-INF/signatures0.xml) over every file:",
             "DigiDoc4 / libdigidocpp open it. With xmlsec1, after unzipping:",
             '  xmlsec1 --verify --id-attr:Id "http://uri.etsi.org/01903/v1.3.2#:SignedProperties" \\',
             "          --url-map:FILE FILE ... (once per file outside META-INF) --trusted-pem ca.pem META-INF/signatures0.xml",
             "",
             "Or part by part with standard tools, after unzipping (ca.pem is YOUR copy of the trust anchor):", ""]
    for stem, message, seal, stamped in records:
        lines += [f"record {stem}:",
                  f"  sha256sum {message}             # must equal body_sha256 in records/{stem}.json",
                  f"  sha256sum records/{stem}.json   # must equal record_hash in proofs/{stem}.json",
                  f"  xmlsec1 --verify --trusted-pem ca.pem {seal}.xml",
                  *( [f"  openssl ts -verify -in {seal}.tsr -data {seal}.sigvalue -CAfile ca.pem -untrusted certs/tsa.pem"]
                     if stamped else ["  (this seal has no time-stamp)"]), ""]
    lines.append("The Merkle proof (proofs/*.json) follows RFC 9162 section 2.1.3.2; docs/security-officer.md explains it.")
    return "\n".join(lines) + "\n"


def _stamper(tsa_url: str) -> Any:
    def stamp(data: bytes) -> bytes:
        try:
            token: bytes = token_of(request_timestamp(tsa_url, data)).dump()
            return token
        except TimestampError as exc:
            raise EvidenceError(f"cannot time-stamp: {exc}") from None
    return stamp


def renew_container(data: bytes, tsa_url: str) -> bytes:
    """Add an ArchiveTimeStamp (XAdES-A) over the signature and every data file: it keeps the container
    provable after the TSA certificates of the earlier time-stamps expire (run it before they do)."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        files = {i.filename: archive.read(i) for i in archive.infolist()}
    except (zipfile.BadZipFile, ValueError) as exc:
        raise EvidenceError(f"not a readable container: {exc}") from None
    if SIGNATURE_FILE not in files:
        raise EvidenceError(f"the container has no {SIGNATURE_FILE} to renew")
    try:
        signature = add_archive_timestamp(files[SIGNATURE_FILE], files, _stamper(tsa_url), parse_untrusted)
    except XadesError as exc:
        raise EvidenceError(str(exc)) from None
    data_files = {n: b for n, b in files.items() if n != "mimetype" and not n.startswith("META-INF/")}
    return _zip(data_files, signature)


def _zip(files: dict[str, bytes], signature: bytes | None) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(zipfile.ZipInfo("mimetype"), MIMETYPE.encode(), compress_type=zipfile.ZIP_STORED)
        names = sorted(files)
        archive.writestr("META-INF/manifest.xml", _manifest(names), compress_type=zipfile.ZIP_DEFLATED)
        if signature is not None:
            archive.writestr(SIGNATURE_FILE, signature, compress_type=zipfile.ZIP_DEFLATED)
        for name in names:
            archive.writestr(zipfile.ZipInfo(name), files[name], compress_type=zipfile.ZIP_DEFLATED)
    return buffer.getvalue()


def _manifest(names: list[str]) -> bytes:
    root = etree.Element(f"{{{NS_MANIFEST}}}manifest", nsmap={"manifest": NS_MANIFEST})
    root.set(f"{{{NS_MANIFEST}}}version", "1.2")
    entry = etree.SubElement(root, f"{{{NS_MANIFEST}}}file-entry")
    entry.set(f"{{{NS_MANIFEST}}}full-path", "/")
    entry.set(f"{{{NS_MANIFEST}}}media-type", MIMETYPE)
    for name in names:
        entry = etree.SubElement(root, f"{{{NS_MANIFEST}}}file-entry")
        entry.set(f"{{{NS_MANIFEST}}}full-path", name)
        entry.set(f"{{{NS_MANIFEST}}}media-type", _media(name))
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)


# -- offline verification ---------------------------------------------------------------------

@dataclass
class EvidenceReport:
    lines: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def check(self, label: str, ok: bool, detail: str) -> bool:
        self.lines.append(f"  {label:<37} {'OK' if ok else 'FAILED'}  {detail}")
        if not ok:
            self.problems.append(f"{label}: {detail}")
        return ok

    def text(self) -> str:
        verdict = "EVIDENCE VALID" if self.ok else f"EVIDENCE INVALID ({len(self.problems)} problem(s))"
        return "\n".join(self.lines + [verdict])


def verify_container(data: bytes, trust: TrustStore, name: str = "container") -> EvidenceReport:
    report = EvidenceReport([f"Evidence container {name}"])
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        infos = archive.infolist()
    except zipfile.BadZipFile as exc:
        report.check("container", False, f"not a ZIP file: {exc}")
        return report
    if sum(i.file_size for i in infos) > MAX_CONTAINER_BYTES or len(infos) > 10_000:
        report.check("container size", False, f"more than {MAX_CONTAINER_BYTES} bytes or 10 000 files unpacked")
        return report
    first = infos[0] if infos else None
    layout_ok = (first is not None and first.filename == "mimetype" and first.compress_type == zipfile.ZIP_STORED
                 and archive.read("mimetype") == MIMETYPE.encode() and not first.extra)
    report.check("layout (ASiC-E mimetype first)", layout_ok, MIMETYPE if layout_ok else "mimetype entry wrong or not first")
    try:
        files = {i.filename: archive.read(i) for i in infos}
    except (zipfile.BadZipFile, ValueError) as exc:  # a CRC error: bytes were changed inside the ZIP
        report.check("container integrity", False, str(exc))
        return report
    listed: dict[str, str | None] = {}
    present = {n for n in files if n != "mimetype" and not n.startswith("META-INF/")}
    try:
        manifest = parse_untrusted(files.get("META-INF/manifest.xml", b""))
        listed = {e.get(f"{{{NS_MANIFEST}}}full-path", ""): e.get(f"{{{NS_MANIFEST}}}media-type")
                  for e in manifest.iter(f"{{{NS_MANIFEST}}}file-entry")}
        listed.pop("/", None)
        report.check("manifest", set(listed) == present,
                     f"{len(listed)} file(s) listed" if set(listed) == present else
                     f"unlisted {sorted(present - set(listed))}, missing {sorted(set(listed) - present)}")
    except Exception as exc:  # noqa: BLE001 - any unreadable manifest is a finding
        report.check("manifest", False, f"META-INF/manifest.xml unreadable: {exc}")
    _check_container_signature(report, files, present, listed, trust)
    seal_cache: dict[str, Any] = {}
    records = sorted(n for n in files if n.startswith("records/") and n.endswith(".json"))
    if not records:
        report.check("records", False, "the container holds no record")
    for record_name in records:
        stem = record_name[len("records/"):-len(".json")]
        raw = files[record_name]
        try:
            meta = json.loads(raw)
            proof = json.loads(files[f"proofs/{stem}.json"])
            message = files[proof["message"]]
        except (KeyError, ValueError) as exc:
            report.check(f"record {stem}", False, f"record, proof or message missing or unreadable: {exc}")
            continue
        report.lines.append(f"record {meta.get('node')}/{meta.get('seq')}: {meta.get('leg')} {meta.get('direction')}, "
                            f"{meta.get('time')}, client {meta.get('client')}, service {meta.get('service')}, "
                            f"message id {meta.get('message_id')}, exchange {meta.get('exchange')}")
        digest = hashlib.sha256(message).hexdigest()
        report.check("message bytes", digest == meta.get("body_sha256") and len(message) == meta.get("body_length"),
                     f"sha256 {digest[:16]}..., {len(message)} bytes ({proof['message']})")
        leaf = hashlib.sha256(raw).digest()
        seal_name = proof.get("seal", "")
        try:
            path = [bytes.fromhex(h) for h in proof["audit_path"]]
            index, size = int(proof["leaf_index"]), int(proof["tree_size"])
            root = bytes.fromhex(proof["merkle_root"])
            included = merkle.verify_inclusion(leaf, index, size, path, root)
        except (KeyError, ValueError, TypeError):
            included, index, size, root = False, -1, 0, b""
        report.check("Merkle inclusion proof", included, f"leaf {index + 1} of {size} -> root {root.hex()[:16]}...")
        if seal_name not in seal_cache:
            seal_cache[seal_name] = _check_seal(report, files, seal_name, trust)
        info = seal_cache[seal_name]
        if info is not None:
            matches = (info.node == meta.get("node") and info.first_seq <= int(meta.get("seq", -1)) <= info.last_seq
                       and info.merkle_root == root and size == info.last_seq - info.first_seq + 1
                       and index == int(meta.get("seq", -1)) - info.first_seq)
            report.check("record is in the seal", matches,
                         f"seal {info.node}/{info.first_seq}..{info.last_seq}, root {info.merkle_root.hex()[:16]}...")
    return report


def _check_seal(report: EvidenceReport, files: dict[str, bytes], seal_name: str, trust: TrustStore) -> Any:
    report.lines.append(f"seal {seal_name}:")
    if seal_name not in files:
        report.check("seal present", False, seal_name)
        return None
    stem = seal_name[:-len(".xml")]
    stamp, stamp_error = None, None
    tsr = files.get(f"{stem}.tsr")
    if tsr is not None:  # a valid time-stamp fixes the moment the seal's certificate must have been valid
        try:
            stamp = verify_timestamp(tsr, read_seal(files[seal_name]).signature_value, trust)
        except (TimestampError, SealInvalid) as exc:
            stamp_error = str(exc)
    try:
        info, signer = verify_seal(files[seal_name], trust, at=stamp.gen_time if stamp else None)
    except SealInvalid as exc:
        report.check("seal signature (XML-DSig)", False, str(exc))
        return None
    report.check("seal signature (XML-DSig)", True,
                 f"signed by '{subject_cn(signer)}' (issuer '{signer.issuer.rfc4514_string()}'), created {info.created}"
                 + (", certificate valid at the time-stamp" if stamp else ""))
    sigvalue = files.get(f"{stem}.sigvalue")
    if sigvalue is not None:
        report.check("time-stamped bytes = SignatureValue", sigvalue == info.signature_value, f"{stem}.sigvalue")
    if tsr is None:
        report.lines.append("  time-stamp                            NONE   (the seal was made without a TSA)")
        return info
    if stamp is not None:
        report.check("time-stamp (RFC 3161)", True, f"{stamp.gen_time.isoformat()} by '{subject_cn(stamp.tsa)}', "
                                                    f"serial {stamp.serial}, policy {stamp.policy}")
    else:
        report.check("time-stamp (RFC 3161)", False, str(stamp_error))
    return info


def _check_container_signature(report: EvidenceReport, files: dict[str, bytes], present: set[str],
                               listed: dict[str, str | None], trust: TrustStore) -> None:
    """The XAdES signature over the data files: digests, signer, certificate at the time-stamp, the time-stamp."""
    report.lines.append(f"container signature {SIGNATURE_FILE}:")
    if SIGNATURE_FILE not in files:
        report.check("container signature (XAdES)", False, f"{SIGNATURE_FILE} missing")
        return
    try:
        result = verify_signature_document(files[SIGNATURE_FILE], files, parse_untrusted)
    except (XadesError, ValueError, TypeError, AttributeError) as exc:
        report.check("container signature (XAdES)", False, str(exc))
        return
    missing = sorted(present - set(result.covered))
    report.check("signature covers every data file", not missing and set(result.covered) == present,
                 f"{len(result.covered)} file(s)" if not missing else f"not signed: {missing}")
    wrong = sorted(n for n, media in result.covered.items() if listed.get(n) != media)
    report.check("media types (manifest = DataObjectFormat)", not wrong, "match" if not wrong else f"differ for {wrong}")
    stamp = None
    if result.timestamp_token is None:
        report.lines.append("  signature time-stamp                  NONE   (XAdES-B: exported without a TSA)")
    else:
        try:
            stamp = verify_timestamp(result.timestamp_token, result.timestamped_bytes, trust)
            report.check("signature time-stamp (XAdES-T)", True,
                         f"{stamp.gen_time.isoformat()} by '{subject_cn(stamp.tsa)}', serial {stamp.serial}")
        except TimestampError as exc:
            report.check("signature time-stamp (XAdES-T)", False, str(exc))
    for index, (token, covered) in enumerate(result.archive_tokens):
        try:
            archived = verify_timestamp(token, covered, trust)
            report.check(f"archive time-stamp {index + 1} (XAdES-A)", True,
                         f"{archived.gen_time.isoformat()} by '{subject_cn(archived.tsa)}', serial {archived.serial}")
        except TimestampError as exc:
            report.check(f"archive time-stamp {index + 1} (XAdES-A)", False, str(exc))
    try:
        trust.validate(result.signer, at=stamp.gen_time if stamp else None)
        report.check("container signature (XAdES)", True,
                     f"signed by '{subject_cn(result.signer)}' at {result.signing_time}"
                     + (", certificate valid at the time-stamp" if stamp else ""))
    except CertificateError as exc:
        report.check("container signature (XAdES)", False, f"signer not trusted: {exc}")
