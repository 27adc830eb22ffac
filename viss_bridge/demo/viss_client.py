"""A generation-II VISS consumer for the demo: signs and sends StartTransaction, SubmitSync, EndTransaction.

    python -m viss_bridge.demo.viss_client --data-dir var/demo --url http://127.0.0.1:8080/viss \\
        --destination URN:IVIS:100001:EP.DA-DA29-V1-0 --key person_code=220903-22422

It signs with the demo consumer's certificate (``<data-dir>/certs``, made by ``viss-bridge demo``)
exactly as an old VISS client would: SOAP 1.2, WS-Addressing Action/MessageID/To, WS-Security
Timestamp and X.509 signature over Body, Timestamp and the addressing headers.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import uuid
from pathlib import Path

import requests
import yaml
from lxml import etree

from viss_bridge.xml import NS_SOAP12
from viss_bridge.namespaces import NS_WSA as NS_WSA

VISS_TNS = "http://ivis.eps.gov.lv/XMLSchemas/VISS/RequestService/v1-0"
ACTION_BASE = f"{VISS_TNS}/IRequestService/"


def _q(name: str) -> str:
    return f"{{{VISS_TNS}}}{name}"


def prepare_viss(data_dir: str | Path, clients: list[tuple[str, str]]) -> dict[str, str]:
    """Development PKI and the registered VISS consumers for the demo; returns the settings to use."""
    from viss_bridge.security.pki import init_dev_pki

    data = Path(data_dir).resolve()
    pki = init_dev_pki(data / "certs")
    consumers = data / "viss-consumers.yaml"
    entries = [{"client": client, "participant": participant, "cert": str(pki.consumers[client].cert)}
               for client, participant in clients if client in pki.consumers]
    consumers.write_text(yaml.safe_dump({"consumers": entries}, sort_keys=False), encoding="utf-8")
    return {"viss_trust_ca": str(pki.ca_cert), "viss_consumers": str(consumers),
            "viss_signing_cert": str(pki.node.cert), "viss_signing_key": str(pki.node.key)}


def envelope(operation: str, payload: etree._Element, to: str) -> etree._Element:
    env = etree.Element(f"{{{NS_SOAP12}}}Envelope", nsmap={"s": NS_SOAP12, "wsa": NS_WSA, "v": VISS_TNS})
    header = etree.SubElement(env, f"{{{NS_SOAP12}}}Header")
    for name, value in (("Action", ACTION_BASE + operation), ("MessageID", f"urn:uuid:{uuid.uuid4()}"), ("To", to)):
        etree.SubElement(header, f"{{{NS_WSA}}}{name}").text = value
    etree.SubElement(env, f"{{{NS_SOAP12}}}Body").append(payload)
    return env


def send(url: str, key: object, operation: str, payload: etree._Element) -> etree._Element:
    from viss_bridge.security.wssecurity import sign_envelope

    env = envelope(operation, payload, url)
    sign_envelope(env, key, soap_ns=NS_SOAP12,  # type: ignore[arg-type]
                  sign_headers=tuple(f"{{{NS_WSA}}}{n}" for n in ("Action", "MessageID", "To")))
    response = requests.post(url, data=etree.tostring(env, xml_declaration=True, encoding="UTF-8"),
                             headers={"Content-Type": "application/soap+xml; charset=utf-8"}, timeout=30)
    return etree.fromstring(response.content)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default="http://127.0.0.1:8080/viss")
    parser.add_argument("--data-dir", default="var/demo", help="where `viss-bridge demo` keeps certs/")
    parser.add_argument("--client", default="LV/GOV/90000069281/VID-EDS", help="demo consumer whose key signs")
    parser.add_argument("--destination", default="URN:IVIS:100001:EP.DA-DA29-V1-0")
    parser.add_argument("--key", action="append", default=[], help="name=value of a dataset key field")
    args = parser.parse_args(argv)
    from viss_bridge.security.keys import SigningKey
    from viss_bridge.security.pki import dev_pki_paths

    key = SigningKey.from_identity(dev_pki_paths(Path(args.data_dir) / "certs").consumers[args.client])
    start = etree.Element(_q("StartTransaction"))
    etree.SubElement(start, _q("Destination")).text = args.destination
    answer = send(args.url, key, "StartTransaction", start)
    transaction = answer.findtext(f".//{_q('TransactionID')}")
    if not transaction:
        print(etree.tostring(answer, pretty_print=True).decode())
        return 1
    submit = etree.Element(_q("SubmitSync"))
    request = etree.SubElement(submit, _q("IVISRequest"))
    header = etree.SubElement(request, _q("Header"))
    for name, value in (("MessageID", str(uuid.uuid4())), ("MessageType", "DataRequest"), ("TransactionID", transaction),
                        ("CorrelationID", str(uuid.uuid4())), ("Destination", args.destination),
                        ("TimeStamp", dt.datetime.now(dt.timezone.utc).isoformat())):
        etree.SubElement(header, _q(name)).text = value
    body = etree.SubElement(request, _q("Body"))
    for item in args.key:
        name, _, value = item.partition("=")
        etree.SubElement(body, _q("Key"), name=name).text = value
    answer = send(args.url, key, "SubmitSync", submit)
    print(etree.tostring(answer.find(f"{{{NS_SOAP12}}}Body"), pretty_print=True, encoding="unicode"))
    end = etree.Element(_q("EndTransaction"))
    etree.SubElement(end, _q("TransactionID")).text = transaction
    send(args.url, key, "EndTransaction", end)
    return 0 if answer.find(f".//{{{NS_SOAP12}}}Fault") is None else 1


if __name__ == "__main__":
    sys.exit(main())
