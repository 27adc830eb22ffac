"""Semantic comparison of SOAP answers, and the token bucket that paces shadow runs."""

from __future__ import annotations

import pytest

from viss_bridge.migration.compare import CompareOptions, NotSoap, compare_messages, normalise_value
from viss_bridge.migration.shadow import TokenBucket

NS = "http://ivis.eps.gov.lv/XMLSchemas/PMLP/FizPersonas/v1-0"

LEGACY = f"""<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/">
<soap:Header><id>abc</id></soap:Header><soap:Body><tns:GetPersonResponse xmlns:tns="{NS}"><tns:Person>
<tns:PersonCode>010190-10009</tns:PersonCode><tns:Surname>Bērziņa</tns:Surname><tns:BirthDate>1990-01-01</tns:BirthDate>
<tns:Income>1250.50</tns:Income><tns:Checked>2024-05-01T10:00:00Z</tns:Checked><tns:Active>true</tns:Active>
<tns:Code>0010000</tns:Code>
<tns:Address><tns:AddressCode>100000001</tns:AddressCode><tns:ValidFrom>2001-02-03</tns:ValidFrom></tns:Address>
<tns:Address><tns:AddressCode>100000002</tns:AddressCode><tns:ValidFrom>2005-06-07</tns:ValidFrom></tns:Address>
</tns:Person></tns:GetPersonResponse></soap:Body></soap:Envelope>""".encode()

# Same data: other prefixes (a default namespace), indentation, number/date/boolean forms, list order, a nil element.
BRIDGE = f"""<?xml version='1.0' encoding='UTF-8'?>
<S:Envelope xmlns:S="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
  <S:Body>
    <GetPersonResponse xmlns="{NS}">
      <Person>
        <PersonCode> 010190-10009 </PersonCode>
        <Surname>Bērziņa</Surname>
        <BirthDate>1990-01-01Z</BirthDate>
        <DeathDate xsi:nil="true"/>
        <Income>1250.5</Income>
        <Checked>2024-05-01T12:00:00.000+02:00</Checked>
        <Active>1</Active>
        <Code>0010000</Code>
        <Address><AddressCode>100000002</AddressCode><ValidFrom>2005-06-07</ValidFrom></Address>
        <Address><AddressCode>100000001</AddressCode><ValidFrom>2001-02-03</ValidFrom></Address>
      </Person>
    </GetPersonResponse>
  </S:Body>
</S:Envelope>""".encode()

TYPES = {"GetPersonResponse/Person/Active": "xs:boolean", "GetPersonResponse/Person/Income": "xs:decimal",
         "GetPersonResponse/Person/Code": "xs:string"}


def test_equal_despite_prefixes_whitespace_formats_nil_and_declared_unordered_list() -> None:
    options = CompareOptions(unordered=("Person/Address",), types=TYPES)
    assert compare_messages(LEGACY, BRIDGE, options) == []


def test_order_matters_unless_declared_and_the_differing_fields_are_named_with_positions() -> None:
    differences = compare_messages(LEGACY, BRIDGE, CompareOptions(types=TYPES))
    assert [(d.path, d.legacy, d.bridge) for d in differences] == [
        ("GetPersonResponse/Person/Address[1]/AddressCode", "100000001", "100000002"),
        ("GetPersonResponse/Person/Address[1]/ValidFrom", "2001-02-03", "2005-06-07"),
        ("GetPersonResponse/Person/Address[2]/AddressCode", "100000002", "100000001"),
        ("GetPersonResponse/Person/Address[2]/ValidFrom", "2005-06-07", "2001-02-03"),
    ]


def test_a_changed_field_is_pinpointed_inside_an_unordered_list() -> None:
    changed = BRIDGE.replace(b"<ValidFrom>2001-02-03", b"<ValidFrom>2001-02-04").replace(b"1250.5<", b"1250.51<")
    differences = compare_messages(LEGACY, changed, CompareOptions(unordered=("*/Address",), types=TYPES))
    assert [(d.path, d.kind, d.legacy, d.bridge) for d in differences] == [
        ("GetPersonResponse/Person/Income", "changed", "1250.5", "1250.51"),
        ("GetPersonResponse/Person/Address[2]/ValidFrom", "changed", "2001-02-03", "2001-02-04"),
    ]


def test_missing_and_extra_elements_and_ignored_paths() -> None:
    without_surname = BRIDGE.replace(b"<Surname>B\xc4\x93rzi\xc5\x86a</Surname>", b"<Extra>x</Extra>")
    differences = compare_messages(LEGACY, without_surname, CompareOptions(unordered=("Person/Address",), types=TYPES))
    assert {(d.path, d.kind) for d in differences} == {("GetPersonResponse/Person/Surname", "missing_in_bridge"),
                                                      ("GetPersonResponse/Person/Extra", "extra_in_bridge")}
    ignoring = CompareOptions(unordered=("Person/Address",), types=TYPES, ignore=("Person/Surname", "Person/Extra"))
    assert compare_messages(LEGACY, without_surname, ignoring) == []


def test_codes_with_leading_zeros_are_not_numbers_without_a_type() -> None:
    other = BRIDGE.replace(b"<Code>0010000</Code>", b"<Code>10000</Code>")
    untyped_code = CompareOptions(unordered=("Person/Address",), types={"GetPersonResponse/Person/Active": "xs:boolean"})
    differences = compare_messages(LEGACY, other, untyped_code)
    assert [(d.path, d.legacy, d.bridge) for d in differences] == [("GetPersonResponse/Person/Code", "0010000", "10000")]
    # without a type, 1 and true are not taken to be the same boolean either
    assert [d.path for d in compare_messages(LEGACY, BRIDGE, CompareOptions(unordered=("Person/Address",)))] == [
        "GetPersonResponse/Person/Active"]


def test_value_normalisation() -> None:
    assert normalise_value("1.50", "xs:decimal") == normalise_value("+1.5", "xs:decimal") == "1.5"
    assert normalise_value("1E2", "xs:double") == normalise_value("100", "xs:int") == "100"
    assert normalise_value("0.000", "xs:decimal") == "0"
    assert normalise_value("2024-05-01T10:00:00Z", None) == normalise_value("2024-05-01T13:00:00+03:00", None)
    assert normalise_value("2024-05-01T10:00:00", None) != normalise_value("2024-05-01T10:00:00Z", None)
    assert normalise_value("1", "xs:boolean") == "true" and normalise_value("1", None) == "1"
    assert normalise_value("12:00:00+02:00", "xs:time") == normalise_value("10:00:00Z", "xs:time")


def test_faults_compare_by_code_not_text() -> None:
    fault = ('<{p}:Envelope xmlns:{p}="http://schemas.xmlsoap.org/soap/envelope/"><{p}:Body><{p}:Fault>'
             '<faultcode>{p}:Server</faultcode><faultstring>{text}</faultstring></{p}:Fault></{p}:Body></{p}:Envelope>')
    a = fault.format(p="soap", text="Provider failed").encode()
    b = fault.format(p="SOAP-ENV", text="Internal error").encode()
    assert compare_messages(a, b) == []
    [difference] = compare_messages(a, LEGACY)
    assert (difference.path, difference.kind, difference.bridge) == ("Fault", "fault", "answer GetPersonResponse")


def test_html_error_pages_are_not_soap() -> None:
    with pytest.raises(NotSoap):
        compare_messages(b"<html><body>503</body></html>", LEGACY)
    with pytest.raises(NotSoap):
        compare_messages(b"", LEGACY)


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def test_token_bucket_paces_to_the_rate_after_the_burst() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate=4, burst=2, clock=clock, sleep=clock.sleep)
    start = clock.now
    waits = [bucket.acquire() for _ in range(10)]
    assert waits[:2] == [0.0, 0.0]  # the burst
    assert all(w == pytest.approx(0.25) for w in waits[2:])
    assert clock.now - start == pytest.approx(2.0)  # 8 paced requests at 4/s
    clock.now += 10  # idle: tokens refill only up to the burst
    assert [bucket.acquire() for _ in range(3)] == [0.0, 0.0, pytest.approx(0.25)]
    with pytest.raises(ValueError):
        TokenBucket(rate=0)
