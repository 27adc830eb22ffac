"""Every XML namespace the bridge reads or writes, in one place.

A constants-only leaf: every layer may import it (tests/unit/test_layering.py), so a namespace is
spelled once even in the packages that otherwise import nothing of the project (xml, security,
catalog).
"""

# SOAP, WSDL and XML Schema
NS_SOAP11 = "http://schemas.xmlsoap.org/soap/envelope/"
NS_SOAP12 = "http://www.w3.org/2003/05/soap-envelope"
NS_SOAPENC = "http://schemas.xmlsoap.org/soap/encoding/"
NS_XSD = "http://www.w3.org/2001/XMLSchema"
NS_XSI = "http://www.w3.org/2001/XMLSchema-instance"
NS_WSDL = "http://schemas.xmlsoap.org/wsdl/"
NS_WSDL20 = "http://www.w3.org/ns/wsdl"
NS_WSDL_SOAP11 = "http://schemas.xmlsoap.org/wsdl/soap/"
NS_WSDL_SOAP12 = "http://schemas.xmlsoap.org/wsdl/soap12/"

# WS-* (addressing, security) and XML-DSig
NS_WSA = "http://www.w3.org/2005/08/addressing"
NS_WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
NS_WSU = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
NS_DS = "http://www.w3.org/2000/09/xmldsig#"

# X-Road message protocol 4.0
NS_XROAD = "http://x-road.eu/xsd/xroad.xsd"
NS_ID = "http://x-road.eu/xsd/identifiers"
NS_REPR = "http://x-road.eu/xsd/representation.xsd"

# Evidence containers (ASiC-E, XAdES, ODF manifest) and the message log's seals
NS_ASIC = "http://uri.etsi.org/02918/v1.2.1#"
NS_XADES = "http://uri.etsi.org/01903/v1.3.2#"
NS_XADES141 = "http://uri.etsi.org/01903/v1.4.1#"
NS_MANIFEST = "urn:oasis:names:tc:opendocument:xmlns:manifest:1.0"
NS_SEAL = "urn:viss-bridge:msglog:seal:1"
