"""The independent checkers of an evidence container: libdigidocpp (pydigidoc), xmlsec1, openssl ts, rfc3161-client.

libdigidocpp runs in its own process (it bundles its own OpenSSL, libxml2 and
xmlsec, which must not meet ours in one process), with a configuration that
points the EU trusted list at a closed loopback port: the test never reaches
outside loopback, and the development CA is (rightly) not on any trusted list.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from lxml import etree

# What libdigidocpp reports for a correct container signed under the development PKI, and nothing else:
# the dev CA is on no EU trusted list (signer and TSA chains), it runs no OCSP responder, and XAdES-T
# (BES/time-stamp) carries no revocation values. Any other cause is a real finding.
TOLERATED_DIGIDOC_CAUSES = frozenset({
    "Signature validation",                                          # the heading of the list of causes
    "Unable to verify signing certificate",                          # signer's chain: not on a trusted list
    "unable to get local issuer certificate",                        # OpenSSL's reason for the line above
    "Certificate status: unknown",                                   # no OCSP response for the signer
    "error:17800064:time stamp routines::certificate verify error",  # the TSA's chain: not on a trusted list
    "RevocationValues object is missing",                            # XAdES-T has no revocation data (LT has)
})

NS = {"ds": "http://www.w3.org/2000/09/xmldsig#", "xades": "http://uri.etsi.org/01903/v1.3.2#"}

_DIGIDOC_SCRIPT = r"""
import json, sys
import pydigidoc as d
conf = d.DigiDocConf(sys.argv[2])
conf.set_tslurl("http://127.0.0.1:9/eu-lotl.xml")  # no trusted-list download: a closed loopback port
conf.set_tsltime_out(1)
conf.thisown = False  # libdigidocpp keeps and frees it
d.Conf.init(conf)
d.digidoc.initialize("viss-bridge-tests")
out = {"opened": False, "error": None, "signatures": []}
try:
    container = d.Container.open(sys.argv[1])
    out["opened"] = True
    out["files"] = [(f.file_name(), f.media_type()) for f in container.data_files()]
    for s in container.signatures():
        entry = {"id": s.id(), "profile": s.profile(), "time_stamp_time": s.time_stamp_time(), "causes": []}
        try:
            s.validate()
        except Exception as exc:
            entry["causes"] = [line for line in str(exc).splitlines() if line.strip()]
        out["signatures"].append(entry)
except Exception as exc:
    out["error"] = str(exc)
print(json.dumps(out))
"""


def digidoc_available() -> bool:
    try:
        import pydigidoc  # noqa: F401
    except ImportError:
        return False
    return True


def digidoc_validate(container: Path, workdir: Path) -> dict:  # type: ignore[type-arg]
    """Open and validate ``container`` with libdigidocpp; the answer's causes are its exception lines."""
    import pydigidoc

    conf = workdir / "digidocpp-conf"
    if not conf.exists():
        shutil.copytree(Path(pydigidoc.__file__).parent / "schema", conf)
    run = subprocess.run([sys.executable, "-c", _DIGIDOC_SCRIPT, str(container), str(conf)], capture_output=True,
                         text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout.strip().splitlines()[-1])


def unexpected_causes(answer: dict) -> list[str]:  # type: ignore[type-arg]
    if not answer["opened"]:
        return [f"not opened: {answer['error']}"]
    return [c for s in answer["signatures"] for c in s["causes"] if c not in TOLERATED_DIGIDOC_CAUSES]


def data_files(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*")
                  if p.is_file() and p.name != "mimetype" and not str(p.relative_to(folder)).startswith("META-INF"))


def xmlsec1_xades(folder: Path, ca: Path) -> subprocess.CompletedProcess[str]:
    """The command of docs/security-officer.md: the XAdES signature over the detached data files."""
    maps = [arg for name in data_files(folder) for arg in (f"--url-map:{name}", name)]
    return subprocess.run(["xmlsec1", "--verify", "--id-attr:Id", "http://uri.etsi.org/01903/v1.3.2#:SignedProperties",
                           *maps, "--trusted-pem", str(ca), "META-INF/signatures0.xml"],
                          capture_output=True, text=True, cwd=folder)


def signature_timestamp(folder: Path) -> tuple[bytes, bytes]:
    """(DER token, the bytes it must cover): the EncapsulatedTimeStamp and the exclusive c14n of SignatureValue,
    computed here with lxml directly (not with the code under test)."""
    import base64

    root = etree.parse(str(folder / "META-INF/signatures0.xml")).getroot()
    value = root.find(".//ds:SignatureValue", NS)
    token = base64.b64decode("".join(root.findtext(".//xades:SignatureTimeStamp/xades:EncapsulatedTimeStamp",
                                                   namespaces=NS).split()))
    return token, etree.tostring(value, method="c14n", exclusive=True)


def openssl_ts_token(folder: Path, ca: Path, tsa: Path) -> subprocess.CompletedProcess[str]:
    token, data = signature_timestamp(folder)
    (folder.parent / f"{folder.name}-sigts.der").write_bytes(token)
    (folder.parent / f"{folder.name}-sigvalue.c14n").write_bytes(data)
    return subprocess.run(["openssl", "ts", "-verify", "-token_in", "-in", str(folder.parent / f"{folder.name}-sigts.der"),
                           "-data", str(folder.parent / f"{folder.name}-sigvalue.c14n"), "-CAfile", str(ca),
                           "-untrusted", str(tsa)], capture_output=True, text=True)


def rfc3161_client_verify(tsr: bytes, data: bytes, ca: Path, tsa: Path) -> str | None:
    """None if rfc3161-client accepts the TimeStampResp over ``data``, else its reason."""
    from cryptography import x509
    from rfc3161_client import VerificationError, VerifierBuilder, decode_timestamp_response

    try:
        response = decode_timestamp_response(tsr)
        verifier = (VerifierBuilder().add_root_certificate(x509.load_pem_x509_certificate(ca.read_bytes()))
                    .tsa_certificate(x509.load_pem_x509_certificate(tsa.read_bytes())).build())
        verifier.verify_message(response, data)
    except (VerificationError, ValueError) as exc:
        return str(exc) or type(exc).__name__
    return None
