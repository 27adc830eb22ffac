"""Build VISS (SOAP 1.2 + WS-Addressing + WS-Security) requests as a generation-II consumer would."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any

import requests
from lxml import etree

NS_SOAP12 = "http://www.w3.org/2003/05/soap-envelope"
NS_WSA = "http://www.w3.org/2005/08/addressing"
VISS_TNS = "http://ivis.eps.gov.lv/XMLSchemas/VISS/RequestService/v1-0"
ACTION_BASE = f"{VISS_TNS}/IRequestService/"
PERSON_URN = "URN:IVIS:100001:EP.DA-DA29-V1-0"


def q(name: str) -> str:
    return f"{{{VISS_TNS}}}{name}"


def envelope(operation: str, payload: etree._Element, to: str, message_id: str | None = None) -> etree._Element:
    env = etree.Element(f"{{{NS_SOAP12}}}Envelope", nsmap={"s": NS_SOAP12, "wsa": NS_WSA, "v": VISS_TNS})
    header = etree.SubElement(env, f"{{{NS_SOAP12}}}Header")
    for name, value in (("Action", ACTION_BASE + operation), ("MessageID", message_id or f"urn:uuid:{uuid.uuid4()}"),
                        ("To", to)):
        etree.SubElement(header, f"{{{NS_WSA}}}{name}").text = value
    body = etree.SubElement(env, f"{{{NS_SOAP12}}}Body")
    body.append(payload)
    return env


def start_transaction(destination: str | None = None) -> etree._Element:
    element = etree.Element(q("StartTransaction"), nsmap={"v": VISS_TNS})
    if destination:
        etree.SubElement(element, q("Destination")).text = destination
    return element


def end_transaction(transaction: str) -> etree._Element:
    element = etree.Element(q("EndTransaction"), nsmap={"v": VISS_TNS})
    etree.SubElement(element, q("TransactionID")).text = transaction
    return element


def submit_sync(transaction: str, destination: str, keys: dict[str, str], sender: str | None = None,
                message_id: str | None = None) -> etree._Element:
    element = etree.Element(q("SubmitSync"), nsmap={"v": VISS_TNS})
    request = etree.SubElement(element, q("IVISRequest"))
    header = etree.SubElement(request, q("Header"))
    values = {"MessageID": message_id or str(uuid.uuid4()), "MessageType": "PersonDataRequest",
              "TransactionID": transaction, "CorrelationID": str(uuid.uuid4()), "Sender": sender,
              "Destination": destination, "TimeStamp": dt.datetime.now(dt.timezone.utc).isoformat()}
    for name, value in values.items():
        if value is not None:
            etree.SubElement(header, q(name)).text = value
    body = etree.SubElement(request, q("Body"))
    for name, value in keys.items():
        etree.SubElement(body, q("Key"), name=name).text = value
    return element


def sign(env: etree._Element, key: Any, now: dt.datetime | None = None) -> bytes:
    from viss_bridge.security.wssecurity import sign_envelope

    sign_envelope(env, key, soap_ns=NS_SOAP12, now=now,
                  sign_headers=tuple(f"{{{NS_WSA}}}{n}" for n in ("Action", "MessageID", "To")))
    return etree.tostring(env, xml_declaration=True, encoding="UTF-8")


def post12(url: str, body: bytes) -> requests.Response:
    return requests.post(url, data=body, headers={"Content-Type": "application/soap+xml; charset=utf-8"}, timeout=30)


@dataclass
class Soap12Fault:
    status: int
    value: str
    subcode: str
    code: str
    reason: str
    relates_to: str | None


def parse_fault12(response: requests.Response) -> Soap12Fault:
    root = etree.fromstring(response.content)
    fault = root.find(f"{{{NS_SOAP12}}}Body/{{{NS_SOAP12}}}Fault")
    assert fault is not None, response.text
    ns = {"s": NS_SOAP12}
    return Soap12Fault(response.status_code, fault.findtext("s:Code/s:Value", namespaces=ns),
                       fault.findtext("s:Code/s:Subcode/s:Value", namespaces=ns),
                       fault.findtext("s:Detail/{urn:viss-bridge:faults}faultCode", namespaces=ns),
                       fault.findtext("s:Reason/s:Text", namespaces=ns),
                       root.findtext(f"{{{NS_SOAP12}}}Header/{{{NS_WSA}}}RelatesTo"))
