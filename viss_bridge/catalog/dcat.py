"""The published catalog as a DCAT-AP 3.0 catalogue (``GET /dcat``, ``viss-bridge catalog dcat``).

National and EU portals (data.gov.lv, data.europa.eu) harvest DCAT-AP, not WSDLs:
this module describes every published dataset (titles in Latvian and English,
publisher = the owner, EU data themes, keywords, access rights) and every face
of the bridge that serves it (a ``dcat:DataService`` with its endpoint URL and
WSDL or OpenAPI), as an rdflib graph. The graph conforms to the official
DCAT-AP 3.0.1 SHACL shapes with no violation (tests/integration/test_dcat.py),
which is why values that the shapes check by class (themes, access rights,
standards, languages) carry their ``rdf:type`` and labels here: a harvester
validates without fetching the EU vocabularies.

Only the catalog is read: which faces exist and which legacy contract answers
which dataset is handed in by the caller (:class:`Faces`), so this package
stays below the facades (DESIGN.md section 3).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Mapping

from rdflib import RDF, Graph, Literal, Namespace, URIRef
from rdflib.namespace import DCAT, DCTERMS, FOAF, SKOS

from viss_bridge.catalog.catalog import Catalog
from viss_bridge.catalog.manifest import Access, Dataset
from viss_bridge.catalog.themes import DATA_THEME_SCHEME, THEME_LABELS, theme_iri

EU = "http://publications.europa.eu/resource/authority"
ACCESS_RIGHT_SCHEME = f"{EU}/access-right"
LANGUAGE_SCHEME = f"{EU}/language"
COUNTRY_SCHEME = f"{EU}/country"
FILE_TYPE_SCHEME = f"{EU}/file-type"
PUBLISHER_TYPE_SCHEME = "http://purl.org/adms/publishertype/1.0"
IANA = "https://www.iana.org/assignments/media-types"
ADMS = Namespace("http://www.w3.org/ns/adms#")
DCAT3 = Namespace(str(DCAT))  # rdflib's closed DCAT namespace predates dcat:version (DCAT 3)

# manifest access level -> EU access-right authority table (code, en, lv)
ACCESS_RIGHTS: dict[Access, tuple[str, str, str]] = {
    Access.OPEN: ("PUBLIC", "public", "publiska"),
    Access.PUBLIC: ("PUBLIC", "public", "publiska"),
    Access.RESTRICTED: ("RESTRICTED", "restricted", "ierobežota"),
    Access.PRIVATE: ("NON_PUBLIC", "non-public", "nepublicēta"),
}

# Specifications the faces implement (dct:conformsTo, each a dct:Standard).
STANDARDS: dict[str, tuple[str, str]] = {
    "soap11": ("https://www.w3.org/TR/2000/NOTE-SOAP-20000508/", "SOAP 1.1"),
    "soap12": ("https://www.w3.org/TR/soap12/", "SOAP 1.2"),
    "wsdl11": ("https://www.w3.org/TR/2001/NOTE-wsdl-20010315", "WSDL 1.1"),
    "xroad": ("https://github.com/nordic-institute/X-Road/blob/develop/doc/Protocols/pr-mess_x-road_message_protocol.md",
              "X-Road Message Protocol v4.0"),
    "wsaddressing": ("https://www.w3.org/TR/ws-addr-core/", "WS-Addressing 1.0"),
    "wssecurity": ("http://docs.oasis-open.org/wss-m/wss/v1.1.1/wss-SOAPMessageSecurity-v1.1.1.html",
                   "WS-Security 1.1"),
    "openapi": ("https://spec.openapis.org/oas/v3.1.0", "OpenAPI 3.1"),
    "xroad_rest": ("https://github.com/nordic-institute/X-Road/blob/develop/doc/Protocols/"
                   "pr-rest_x-road_message_protocol_for_rest.md", "X-Road Message Protocol for REST 1.0"),
}

# IANA media type -> EU file-type code
MEDIA_TYPES: dict[str, str] = {"text/xml": "XML", "application/soap+xml": "XML", "application/json": "JSON"}


@dataclass(frozen=True)
class Face:
    """One endpoint of the bridge that answers datasets: a ``dcat:DataService``."""

    key: str  # fragment part of its IRI: xroad, catalog, viss, legacy-<name>, rest, xroad-rest
    path: str  # /xroad, /legacy/fpr, ...
    title_lv: str
    title_en: str
    description_lv: str
    description_en: str
    standards: tuple[str, ...]  # keys of STANDARDS
    media_type: str
    datasets: tuple[str, ...]  # names of the published datasets it serves
    description_path: str | None = None  # WSDL or OpenAPI document, relative to the base URL
    keywords: tuple[str, ...] = ()


@dataclass(frozen=True)
class Faces:
    """What the caller knows and the catalog does not: the base URL, legacy contracts, mounted faces."""

    base_url: str
    publisher: str  # the bridge operator's X-Road member (settings.provider)
    legacy: Mapping[str, Iterable[str]] = field(default_factory=dict)  # contract name -> datasets it answers
    rest: bool = False  # /rest and /rest/openapi.json are mounted
    xroad_rest: bool = False  # /r1 (X-Road REST) is mounted

    def all(self, catalog: Catalog) -> list[Face]:
        names = tuple(d.dataset for d in catalog)
        faces = [
            Face("xroad", "/xroad", "X-Road SOAP pakalpojumi", "X-Road SOAP services",
                 "Katra datu kopa kā X-Road 4.0 pakalpojums (SOAP 1.1) ar metapakalpojumiem.",
                 "Every dataset as an X-Road 4.0 service (SOAP 1.1), with the metaservices.",
                 ("xroad", "soap11", "wsdl11"), "text/xml", names, "/xroad?wsdl", ("X-Road", "SOAP")),
            Face("catalog", "/catalog", "Kataloga SOAP pakalpojums", "Catalog-native SOAP service",
                 "listDatasets, describeDataset, getRecord un getChanges visām datu kopām (SOAP 1.1).",
                 "listDatasets, describeDataset, getRecord and getChanges over every dataset (SOAP 1.1).",
                 ("soap11", "wsdl11"), "text/xml", names, "/catalog?wsdl", ("SOAP",)),
        ]
        viss = tuple(d.dataset for d in catalog if any(c.dialect == "viss" for c in d.legacy))
        if viss:
            faces.append(Face("viss", "/viss", "VISS pieprasījumu pakalpojums", "VISS request service",
                              "VISS līgumi (SOAP 1.2, WS-Addressing, WS-Security) datu kopām ar VISS URN.",
                              "VISS contracts (SOAP 1.2, WS-Addressing, WS-Security) of the datasets with a VISS URN.",
                              ("soap12", "wsaddressing", "wssecurity", "wsdl11"), "application/soap+xml", viss,
                              "/viss?wsdl", ("VISS", "SOAP")))
        for name in sorted(self.legacy):
            served = tuple(sorted(n for n in set(self.legacy[name]) if n in catalog))
            if served:
                faces.append(Face(f"legacy-{name}", f"/legacy/{name}", f"Vēsturiskais līgums {name}",
                                  f"Legacy contract {name}",
                                  f"Otrās paaudzes pakalpojums {name} ar tā sākotnējo WSDL līgumu (SOAP 1.1).",
                                  f"The generation-II service {name} under its original WSDL contract (SOAP 1.1).",
                                  ("soap11", "wsdl11"), "text/xml", served, f"/legacy/{name}?wsdl", ("SOAP",)))
        if self.rest:
            faces.append(Face("rest", "/rest", "REST saskarne", "REST interface",
                              "DAGR stila REST saskarne katrai datu kopai (JSON), apraksts OpenAPI 3.1.",
                              "A DAGR-style REST interface on every dataset (JSON), described in OpenAPI 3.1.",
                              ("openapi",), "application/json", names, "/rest/openapi.json", ("REST", "JSON")))
        if self.xroad_rest:
            # Each service has its own address below /r1 (/r1/INSTANCE/CLASS/MEMBER/SUBSYSTEM/SERVICECODE) and
            # its OpenAPI from the getOpenAPI metaservice of its provider: no one description document to name.
            faces.append(Face("xroad-rest", "/r1", "X-Road REST pakalpojumi", "X-Road REST services",
                              "Katra datu kopa kā X-Road REST (PR-REST 1.0) pakalpojums: /r1/INSTANCE/CLASS/MEMBER/"
                              "SUBSYSTEM/SERVICECODE, metapakalpojumi listMethods, allowedMethods, getOpenAPI.",
                              "Every dataset as an X-Road REST (PR-REST 1.0) service: /r1/INSTANCE/CLASS/MEMBER/"
                              "SUBSYSTEM/SERVICECODE, with the metaservices listMethods, allowedMethods, getOpenAPI.",
                              ("xroad_rest", "openapi"), "application/json", names, None, ("X-Road", "REST", "JSON")))
        return faces


class _Builder:
    def __init__(self, base_url: str) -> None:
        self.base = base_url.rstrip("/")
        self.doc = f"{self.base}/dcat"
        self.g = Graph()
        for prefix, ns in (("dcat", DCAT), ("dct", DCTERMS), ("foaf", FOAF), ("skos", SKOS), ("adms", ADMS)):
            self.g.bind(prefix, ns)

    def node(self, fragment: str) -> URIRef:
        return URIRef(f"{self.doc}#{fragment}")

    def add(self, subject: URIRef, predicate: URIRef, obj: URIRef | Literal) -> None:
        self.g.add((subject, predicate, obj))

    def texts(self, subject: URIRef, predicate: URIRef, lv: str, en: str) -> None:
        self.add(subject, predicate, Literal(lv, lang="lv"))
        self.add(subject, predicate, Literal(en, lang="en"))

    def concept(self, iri: str, scheme: str, scheme_title: str, en: str, lv: str | None = None,
                kinds: tuple[URIRef, ...] = ()) -> URIRef:
        """A term of a controlled vocabulary, with what the shapes check on it (type, label, scheme)."""
        term, scheme_ref = URIRef(iri), URIRef(scheme)
        for kind in (SKOS.Concept, *kinds):
            self.add(term, RDF.type, kind)
        self.add(term, SKOS.prefLabel, Literal(en, lang="en"))
        if lv:
            self.add(term, SKOS.prefLabel, Literal(lv, lang="lv"))
        self.add(term, SKOS.inScheme, scheme_ref)
        self.add(scheme_ref, RDF.type, SKOS.ConceptScheme)
        self.add(scheme_ref, DCTERMS.title, Literal(scheme_title, lang="en"))
        return term

    def agent(self, member: str, name: str | None) -> URIRef:
        """An X-Road member or subsystem as a foaf:Agent (GOV members typed as national authorities)."""
        ref = self.node(f"agent:{member}")
        self.add(ref, RDF.type, FOAF.Agent)
        self.add(ref, FOAF.name, Literal(name or member))
        self.add(ref, DCTERMS.identifier, Literal(member))
        parts = member.split("/")
        if len(parts) > 1 and parts[1] == "GOV":
            kind = self.concept(f"{PUBLISHER_TYPE_SCHEME}/NationalAuthority", PUBLISHER_TYPE_SCHEME,
                                "Publisher type", "National authority", "Valsts iestāde")
            self.add(ref, DCTERMS.type, kind)
        return ref

    def standard(self, key: str) -> URIRef:
        iri, title = STANDARDS[key]
        ref = URIRef(iri)
        self.add(ref, RDF.type, DCTERMS.Standard)
        self.add(ref, DCTERMS.title, Literal(title))
        return ref

    def media(self, subject: URIRef, media_type: str) -> None:
        code = MEDIA_TYPES[media_type]
        fmt = self.concept(f"{FILE_TYPE_SCHEME}/{code}", FILE_TYPE_SCHEME, "File type", code,
                           kinds=(DCTERMS.MediaTypeOrExtent,))
        self.add(subject, DCTERMS.format, fmt)
        mt = URIRef(f"{IANA}/{media_type}")
        self.add(mt, RDF.type, DCTERMS.MediaType)
        self.add(subject, DCAT.mediaType, mt)


def build_catalog(catalog: Catalog, faces: Faces) -> Graph:
    """The DCAT-AP 3.0 graph of the published datasets and the faces that serve them."""
    b = _Builder(faces.base_url)
    root = b.node("catalog")
    b.add(root, RDF.type, DCAT.Catalog)
    b.texts(root, DCTERMS.title, "viss-bridge datu kopu katalogs", "viss-bridge dataset catalogue")
    b.texts(root, DCTERMS.description,
            "Datu kopas, ko šis viss-bridge mezgls publicē, un pakalpojumi (X-Road, SOAP, REST), kas tās sniedz.",
            "The datasets this viss-bridge node publishes and the services (X-Road, SOAP, REST) that answer them.")
    b.add(root, DCTERMS.publisher, b.agent(faces.publisher, None))
    homepage = URIRef(f"{b.base}/")
    b.add(homepage, RDF.type, FOAF.Document)
    b.add(root, FOAF.homepage, homepage)
    for code, en, lv in (("LAV", "Latvian", "latviešu"), ("ENG", "English", "angļu")):
        lang = b.concept(f"{LANGUAGE_SCHEME}/{code}", LANGUAGE_SCHEME, "Languages", en, lv,
                         kinds=(DCTERMS.LinguisticSystem,))
        b.add(root, DCTERMS.language, lang)
    b.add(root, DCTERMS.spatial, _latvia(b))
    themes = URIRef(DATA_THEME_SCHEME)
    b.add(themes, RDF.type, SKOS.ConceptScheme)
    b.add(themes, DCTERMS.title, Literal("Data theme", lang="en"))
    b.add(root, DCAT.themeTaxonomy, themes)

    listed = faces.all(catalog)
    services = {face.key: _service(b, face, catalog, faces) for face in listed}
    for dataset in catalog:
        ref = _dataset(b, dataset)
        b.add(root, DCAT.dataset, ref)
        for face in listed:
            if dataset.dataset in face.datasets:
                _distribution(b, ref, dataset, face, services[face.key])
    for face in listed:
        b.add(root, DCAT.service, services[face.key])
    return b.g


def _latvia(b: _Builder) -> URIRef:
    return b.concept(f"{COUNTRY_SCHEME}/LVA", COUNTRY_SCHEME, "Countries and territories", "Latvia", "Latvija",
                     kinds=(DCTERMS.Location,))


def _dataset(b: _Builder, dataset: Dataset) -> URIRef:
    ref = b.node(f"dataset:{dataset.dataset}")
    b.add(ref, RDF.type, DCAT.Dataset)
    b.texts(ref, DCTERMS.title, dataset.title.lv, dataset.title.en)
    if dataset.description is not None:
        b.texts(ref, DCTERMS.description, dataset.description.lv, dataset.description.en)
    else:  # mandatory in DCAT-AP: say at least what it is
        b.texts(ref, DCTERMS.description, f"{dataset.title.lv} (datu kopa {dataset.dataset}).",
                f"{dataset.title.en} (dataset {dataset.dataset}).")
    b.add(ref, DCTERMS.identifier, Literal(dataset.dataset))
    b.add(ref, DCAT3.version, Literal(dataset.version))
    b.add(ref, DCTERMS.publisher, b.agent(dataset.owner, dataset.owner_name))
    if dataset.owner_parts[0].upper().startswith("LV"):  # a member of a Latvian X-Road instance: Latvian data
        b.add(ref, DCTERMS.spatial, _latvia(b))
    code, en, lv = ACCESS_RIGHTS[dataset.access]
    b.add(ref, DCTERMS.accessRights, b.concept(f"{ACCESS_RIGHT_SCHEME}/{code}", ACCESS_RIGHT_SCHEME, "Access right",
                                               en, lv, kinds=(DCTERMS.RightsStatement,)))
    for theme in dataset.themes:
        en, lv = THEME_LABELS[theme.value]
        b.add(ref, DCAT.theme, b.concept(theme_iri(theme.value), DATA_THEME_SCHEME, "Data theme", en, lv))
    if dataset.keywords is not None:
        for word in dataset.keywords.lv:
            b.add(ref, DCAT.keyword, Literal(word, lang="lv"))
        for word in dataset.keywords.en:
            b.add(ref, DCAT.keyword, Literal(word, lang="en"))
    return ref


def _service(b: _Builder, face: Face, catalog: Catalog, faces: Faces) -> URIRef:
    ref = b.node(f"service:{face.key}")
    b.add(ref, RDF.type, DCAT.DataService)
    b.texts(ref, DCTERMS.title, face.title_lv, face.title_en)
    b.texts(ref, DCTERMS.description, face.description_lv, face.description_en)
    b.add(ref, DCAT.endpointURL, URIRef(b.base + face.path))
    if face.description_path:
        b.add(ref, DCAT.endpointDescription, URIRef(b.base + face.description_path))
    for key in face.standards:
        b.add(ref, DCTERMS.conformsTo, b.standard(key))
    b.media(ref, face.media_type)
    b.add(ref, DCTERMS.publisher, b.agent(faces.publisher, None))
    for word in face.keywords:
        b.add(ref, DCAT.keyword, Literal(word))
    for name in face.datasets:
        b.add(ref, DCAT.servesDataset, b.node(f"dataset:{name}"))
        dataset = catalog.get(name)
        for theme in dataset.themes if dataset else ():
            b.add(ref, DCAT.theme, URIRef(theme_iri(theme.value)))
    return ref


def _distribution(b: _Builder, dataset_ref: URIRef, dataset: Dataset, face: Face, service: URIRef) -> None:
    ref = b.node(f"distribution:{dataset.dataset}:{face.key}")
    b.add(ref, RDF.type, DCAT.Distribution)
    b.texts(ref, DCTERMS.title, f"{dataset.dataset}: {face.title_lv}", f"{dataset.dataset}: {face.title_en}")
    b.texts(ref, DCTERMS.description, f"Datu kopa {dataset.dataset} caur {b.base}{face.path}.",
            f"The dataset {dataset.dataset} through {b.base}{face.path}.")
    b.add(ref, DCAT.accessURL, URIRef(b.base + face.path))
    b.add(ref, DCAT.accessService, service)
    b.media(ref, face.media_type)
    b.add(dataset_ref, DCAT.distribution, ref)


# -- HTTP representation ------------------------------------------------------------------

FORMATS: dict[str, tuple[str, str]] = {  # --format name -> (rdflib format, media type)
    "turtle": ("turtle", "text/turtle"),
    "json-ld": ("json-ld", "application/ld+json"),
}


def negotiate(accept: str | None) -> str | None:
    """The format an ``Accept`` header asks for; None when it accepts none of them (406).

    As RFC 9110 section 12.5.1: each offered type takes the q of the most specific range
    that matches it; the highest q wins, Turtle (the default) on a tie.
    """
    if not accept or not accept.strip():
        return "turtle"
    ranges: list[tuple[str, float]] = []
    for part in accept.split(","):
        media, _, params = part.strip().partition(";")
        q = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        ranges.append((media.strip().lower(), q))
    scores: list[tuple[float, int, str]] = []
    for order, (fmt, (_, offered)) in enumerate(FORMATS.items()):
        kind = offered.split("/")[0]
        matches = [(2 if media == offered else 1 if media == f"{kind}/*" else 0, q)
                   for media, q in ranges if media in (offered, f"{kind}/*", "*/*")]
        if matches:
            q = max(matches)[1]
            if q > 0:
                scores.append((q, -order, fmt))
    return max(scores)[2] if scores else None


def serialize(graph: Graph, fmt: str) -> bytes:
    """The graph as Turtle or JSON-LD bytes (UTF-8)."""
    rdflib_format, _ = FORMATS[fmt]
    if fmt == "json-ld":
        context = {prefix: str(ns) for prefix, ns in graph.namespaces()
                   if prefix in ("dcat", "dct", "foaf", "skos", "adms", "rdf", "xsd")}
        data = graph.serialize(format=rdflib_format, context=context, auto_compact=True)
    else:
        data = graph.serialize(format=rdflib_format)
    return data.encode("utf-8") if isinstance(data, str) else data
