"""The EU data-theme vocabulary (13 themes) that a manifest's ``themes:`` may name.

DCAT-AP catalogues classify datasets by the Publications Office's data-theme
authority table; portals such as data.europa.eu and data.gov.lv filter by it.
The codes are a closed list, so a manifest is checked against it at load time
(a misspelt code must fail with its file and line, not vanish from the portal).
Labels are the authority table's English and Latvian preferred labels.
"""

from __future__ import annotations

from enum import Enum

DATA_THEME_SCHEME = "http://publications.europa.eu/resource/authority/data-theme"

# code -> (en, lv) preferred labels of the authority table.
THEME_LABELS: dict[str, tuple[str, str]] = {
    "AGRI": ("Agriculture, fisheries, forestry and food", "Lauksaimniecība, zivsaimniecība, mežsaimniecība un pārtika"),
    "ECON": ("Economy and finance", "Ekonomika un finanses"),
    "EDUC": ("Education, culture and sport", "Izglītība, kultūra un sports"),
    "ENER": ("Energy", "Enerģētika"),
    "ENVI": ("Environment", "Vide"),
    "GOVE": ("Government and public sector", "Valdība un sabiedriskais sektors"),
    "HEAL": ("Health", "Veselība"),
    "INTR": ("International issues", "Starptautiski jautājumi"),
    "JUST": ("Justice, legal system and public safety", "Tieslietas, tiesību sistēma un sabiedriskā drošība"),
    "REGI": ("Regions and cities", "Reģioni un pilsētas"),
    "SOCI": ("Population and society", "Iedzīvotāji un sabiedrība"),
    "TECH": ("Science and technology", "Zinātne un tehnoloģijas"),
    "TRAN": ("Transport", "Transports"),
}

DataTheme = Enum("DataTheme", {code: code for code in THEME_LABELS}, type=str)  # type: ignore[misc]
DataTheme.__doc__ = "A code of the EU data-theme authority table (GOVE, SOCI, REGI, ...)."


def theme_iri(code: str) -> str:
    return f"{DATA_THEME_SCHEME}/{code}"
