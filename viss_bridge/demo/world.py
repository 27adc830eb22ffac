"""A deterministic synthetic Latvia: persons, addresses, companies, education, insurance.

The demo, the tests and the benchmarks need data that looks like the first-wave
registers (so WSDLs, faults and comparisons are exercised on realistic values:
diacritics, gendered surnames, valid check digits) without a single real
person in it. Everything is a pure function of ``(size, seed)``:

* each dataset draws from its own ``random.Random`` stream derived from the
  seed, so generating one dataset never shifts another's values, and
  :func:`iter_persons` can stream exactly the persons :func:`generate_world`
  returns;
* nothing reads the clock: ages and dates are relative to :data:`REFERENCE_DATE`;
* uniqueness comes from bijections and per-date counters rather than from sets
  of everything seen, so a million persons stream in bounded memory.

Referential integrity holds by construction: persons and companies point at
address indexes below :func:`address_count`, officers and insured persons are
drawn from the generated persons, employers from the generated companies.
Names, streets and towns are real Latvian words; postal and ATVK codes are
plausible, not authoritative.
"""

from __future__ import annotations

import bisect
import datetime as dt
import itertools
import pathlib
import random
from collections.abc import Iterator, Sequence
from decimal import Decimal
from typing import Any, NamedTuple

from viss_bridge.demo.identifiers import (
    PERSONAL_CODE_WEIGHTS,
    address_code,
    company_reg_number,
)

__all__ = [
    "DEMO_CATALOG_DIR",
    "DATASETS",
    "REFERENCE_DATE",
    "REFERENCE_DATETIME",
    "address_count",
    "company_count",
    "generate_world",
    "iter_addresses",
    "iter_persons",
]

DEMO_CATALOG_DIR = pathlib.Path(__file__).parent / "catalog"

DATASETS: tuple[str, ...] = ("fpr_person", "ur_company", "vzd_address", "viis_education", "vsaa_social_insurance",
                             "csdd_vehicle")

#: "Today" in the synthetic world; fixed so output never depends on the run date.
REFERENCE_DATE = dt.date(2026, 1, 1)
REFERENCE_DATETIME = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)

_REF_ORD = REFERENCE_DATE.toordinal()
_DAYS_PER_YEAR = 365.2425
_ADULT_AGE = 18
_RETIREMENT_AGE = 65

Record = dict[str, Any]


def address_count(size: int) -> int:
    """Addresses in a world of ``size`` persons (about 0.6 per person, at least 20)."""
    return max(20, round(size * 0.6))


def company_count(size: int) -> int:
    """Companies in a world of ``size`` persons (about one per ten persons, at least 5)."""
    return max(5, round(size / 10))


def _rng(seed: int, stream: str) -> random.Random:
    """An independent, reproducible stream per dataset (str seeds are hashed with SHA-512)."""
    return random.Random(f"viss-bridge-demo/{seed}/{stream}")


def _address_salt(seed: int) -> int:
    return _rng(seed, "address-codes").randrange(10**8)


def _cumulative(weights: Sequence[float]) -> list[float]:
    """Cumulative weights normalised to 1.0, for ``bisect`` on ``random()``."""
    total = float(sum(weights))
    acc = list(itertools.accumulate(w / total for w in weights))
    acc[-1] = 1.0
    return acc


def _years_after(day: dt.date, years: int) -> dt.date:
    """Same calendar day ``years`` later (29 February becomes 28 February)."""
    try:
        return day.replace(year=day.year + years)
    except ValueError:
        return day.replace(year=day.year + years, day=28)


def _age(birth: dt.date, on: dt.date = REFERENCE_DATE) -> int:
    return on.year - birth.year - ((on.month, on.day) < (birth.month, birth.day))


# --------------------------------------------------------------------------
# Reference data: real Latvian names and places.
# --------------------------------------------------------------------------

_MALE_FIRST_NAMES = (
    "Jānis", "Andris", "Pēteris", "Mārtiņš", "Kārlis", "Edgars", "Juris", "Aivars", "Valdis",
    "Roberts", "Artūrs", "Gints", "Ēriks", "Raimonds", "Oskars", "Krišjānis", "Aleksandrs",
    "Dāvis", "Rihards", "Toms", "Mareks", "Uldis", "Edvīns", "Ivars", "Kristaps", "Emīls",
    "Gustavs", "Markuss", "Ralfs", "Aigars", "Guntis", "Imants", "Normunds", "Māris", "Arturs",
    "Ainārs", "Didzis", "Egils", "Jurģis", "Reinis", "Valters", "Ansis", "Miķelis", "Sergejs",
)
_FEMALE_FIRST_NAMES = (
    "Anna", "Marija", "Kristīne", "Inese", "Ilze", "Līga", "Laura", "Elīna", "Dace", "Sandra",
    "Ieva", "Zane", "Baiba", "Anita", "Agnese", "Rūta", "Sanita", "Evija", "Linda", "Māra",
    "Dzintra", "Gunta", "Alise", "Sofija", "Emīlija", "Paula", "Katrīna", "Annija", "Elza",
    "Madara", "Santa", "Vija", "Aija", "Inga", "Signe", "Jolanta", "Kristiāna", "Darja", "Olga",
    "Zaiga", "Ērika", "Lelde", "Ilona", "Solvita",
)
# (masculine, feminine): -s/-š -> -a, -is -> -e, -sons -> -sone.
_SURNAMES = (
    ("Bērziņš", "Bērziņa"), ("Kalniņš", "Kalniņa"), ("Ozoliņš", "Ozoliņa"), ("Jansons", "Jansone"),
    ("Ozols", "Ozola"), ("Liepiņš", "Liepiņa"), ("Krūmiņš", "Krūmiņa"), ("Balodis", "Balode"),
    ("Eglītis", "Eglīte"), ("Zariņš", "Zariņa"), ("Pētersons", "Pētersone"), ("Vītols", "Vītola"),
    ("Kļaviņš", "Kļaviņa"), ("Kārkliņš", "Kārkliņa"), ("Vanags", "Vanaga"), ("Lācis", "Lāce"),
    ("Siliņš", "Siliņa"), ("Zvirbulis", "Zvirbule"), ("Kalējs", "Kalēja"), ("Dombrovskis", "Dombrovska"),
    ("Putniņš", "Putniņa"), ("Grīnbergs", "Grīnberga"), ("Freimanis", "Freimane"), ("Ābols", "Ābola"),
    ("Sproģis", "Sproģe"), ("Āboliņš", "Āboliņa"), ("Rozenbergs", "Rozenberga"), ("Krastiņš", "Krastiņa"),
    ("Leitis", "Leite"), ("Celmiņš", "Celmiņa"), ("Šmits", "Šmite"), ("Upītis", "Upīte"),
    ("Zālītis", "Zālīte"), ("Kalns", "Kalna"), ("Strazds", "Strazda"), ("Briedis", "Briede"),
    ("Gailītis", "Gailīte"), ("Vilks", "Vilka"), ("Mednis", "Medne"), ("Jēkabsons", "Jēkabsone"),
    ("Andersons", "Andersone"), ("Kronbergs", "Kronberga"), ("Lapiņš", "Lapiņa"), ("Griķis", "Griķe"),
    ("Ivanovs", "Ivanova"), ("Petrovs", "Petrova"), ("Kuzņecovs", "Kuzņecova"), ("Žukovs", "Žukova"),
)
_CITIZENSHIP = ("LVA", "RUS", "UKR", "LTU", "BLR", "EST", "DEU", "POL")
_CITIZENSHIP_CUM = _cumulative((85.0, 6.0, 4.0, 1.5, 1.5, 0.6, 0.7, 0.7))

# Age pyramid 0..95, roughly Latvia's: the 1990s birth dip, emigration of the
# twenty-somethings, few of the very old.
_AGE_WEIGHTS = [
    1.0 if a < 20 else 0.85 if a < 30 else 1.1 if a < 65 else 1.0 if a < 75 else 0.6 if a < 85 else 0.2 - 0.015 * (a - 85)
    for a in range(96)
]
_AGE_CUM = _cumulative(_AGE_WEIGHTS)
_DECEASED_RATE_PER_YEAR_OF_AGE = 0.045 / 95  # ~2 % overall


class _City(NamedTuple):
    name: str
    genitive: str  # for "Rīgas 1. pamatskola"
    municipality: str
    abbrev: str | None  # "Cēsu nov." in full addresses; None for state cities (valstspilsētas)
    postal_first: int
    postal_count: int
    atvk: str  # illustrative 7-digit ATVK code, not the official classification
    lat: float
    lon: float
    spread_km: float
    weight: float
    apartment_share: float


_CITIES: tuple[_City, ...] = (
    _City("Rīga", "Rīgas", "Rīgas valstspilsēta", None, 1001, 84, "0001000", 56.9496, 24.1052, 5.0, 33.0, 0.8),
    _City("Daugavpils", "Daugavpils", "Daugavpils valstspilsēta", None, 5401, 22, "0002000", 55.8747, 26.5362, 3.0, 4.5, 0.7),
    _City("Jelgava", "Jelgavas", "Jelgavas valstspilsēta", None, 3001, 8, "0003000", 56.6511, 23.7214, 2.5, 3.0, 0.6),
    _City("Jūrmala", "Jūrmalas", "Jūrmalas valstspilsēta", None, 2008, 9, "0004000", 56.9680, 23.7704, 4.0, 2.5, 0.5),
    _City("Liepāja", "Liepājas", "Liepājas valstspilsēta", None, 3401, 5, "0005000", 56.5047, 21.0108, 3.0, 3.6, 0.7),
    _City("Rēzekne", "Rēzeknes", "Rēzeknes valstspilsēta", None, 4601, 4, "0006000", 56.5099, 27.3331, 2.0, 1.4, 0.6),
    _City("Ventspils", "Ventspils", "Ventspils valstspilsēta", None, 3601, 2, "0007000", 57.3894, 21.5606, 2.5, 1.7, 0.6),
    _City("Valmiera", "Valmieras", "Valmieras novads", "Valmieras nov.", 4201, 1, "0094201", 57.5385, 25.4264, 2.0, 1.2, 0.5),
    _City("Jēkabpils", "Jēkabpils", "Jēkabpils novads", "Jēkabpils nov.", 5201, 2, "0056201", 56.4990, 25.8574, 2.0, 1.1, 0.5),
    _City("Ogre", "Ogres", "Ogres novads", "Ogres nov.", 5001, 1, "0074201", 56.8162, 24.6140, 2.0, 1.3, 0.5),
    _City("Tukums", "Tukuma", "Tukuma novads", "Tukuma nov.", 3101, 1, "0090201", 56.9669, 23.1553, 1.5, 0.9, 0.4),
    _City("Cēsis", "Cēsu", "Cēsu novads", "Cēsu nov.", 4101, 1, "0042201", 57.3119, 25.2706, 1.5, 0.8, 0.4),
    _City("Salaspils", "Salaspils", "Salaspils novads", "Salaspils nov.", 2121, 1, "0080201", 56.8614, 24.3497, 1.5, 1.0, 0.5),
    _City("Sigulda", "Siguldas", "Siguldas novads", "Siguldas nov.", 2150, 1, "0080801", 57.1537, 24.8534, 1.5, 0.9, 0.4),
    _City("Kuldīga", "Kuldīgas", "Kuldīgas novads", "Kuldīgas nov.", 3301, 1, "0062201", 56.9677, 21.9681, 1.5, 0.6, 0.3),
    _City("Talsi", "Talsu", "Talsu novads", "Talsu nov.", 3201, 1, "0088201", 57.2447, 22.5889, 1.5, 0.6, 0.3),
    _City("Saldus", "Saldus", "Saldus novads", "Saldus nov.", 3801, 1, "0084201", 56.6636, 22.4881, 1.5, 0.6, 0.3),
    _City("Dobele", "Dobeles", "Dobeles novads", "Dobeles nov.", 3701, 1, "0046201", 56.6256, 23.2783, 1.5, 0.6, 0.3),
    _City("Bauska", "Bauskas", "Bauskas novads", "Bauskas nov.", 3901, 1, "0040201", 56.4079, 24.1944, 1.5, 0.5, 0.3),
    _City("Madona", "Madonas", "Madonas novads", "Madonas nov.", 4801, 1, "0070201", 56.8537, 26.2170, 1.5, 0.5, 0.3),
    _City("Gulbene", "Gulbenes", "Gulbenes novads", "Gulbenes nov.", 4401, 1, "0050201", 57.1773, 26.7522, 1.5, 0.4, 0.3),
    _City("Alūksne", "Alūksnes", "Alūksnes novads", "Alūksnes nov.", 4301, 1, "0036201", 57.4224, 27.0468, 1.5, 0.4, 0.3),
    _City("Ludza", "Ludzas", "Ludzas novads", "Ludzas nov.", 5701, 1, "0068201", 56.5469, 27.7190, 1.5, 0.4, 0.3),
    _City("Krāslava", "Krāslavas", "Krāslavas novads", "Krāslavas nov.", 5601, 1, "0060201", 55.8951, 27.1680, 1.5, 0.4, 0.3),
    _City("Preiļi", "Preiļu", "Preiļu novads", "Preiļu nov.", 5301, 1, "0076201", 56.2943, 26.7246, 1.5, 0.3, 0.3),
    _City("Aizkraukle", "Aizkraukles", "Aizkraukles novads", "Aizkraukles nov.", 5101, 1, "0032201", 56.6048, 25.2551, 1.5, 0.4, 0.4),
    _City("Limbaži", "Limbažu", "Limbažu novads", "Limbažu nov.", 4001, 1, "0066201", 57.5147, 24.7136, 1.5, 0.4, 0.3),
    _City("Smiltene", "Smiltenes", "Smiltenes novads", "Smiltenes nov.", 4729, 1, "0094801", 57.4242, 25.9006, 1.5, 0.3, 0.3),
    _City("Ādaži", "Ādažu", "Ādažu novads", "Ādažu nov.", 2164, 1, "0020201", 57.0747, 24.3219, 1.5, 0.7, 0.3),
    _City("Mārupe", "Mārupes", "Mārupes novads", "Mārupes nov.", 2167, 1, "0072201", 56.9064, 24.0514, 1.5, 0.9, 0.3),
    _City("Olaine", "Olaines", "Olaines novads", "Olaines nov.", 2114, 1, "0074801", 56.7853, 23.9384, 1.5, 0.6, 0.5),
)
_CITY_CUM = _cumulative([c.weight for c in _CITIES])

_RIGA_STREETS = (
    "Brīvības iela", "Krišjāņa Barona iela", "Elizabetes iela", "Tērbatas iela", "Lāčplēša iela",
    "Dzirnavu iela", "Stabu iela", "Gertrūdes iela", "Aleksandra Čaka iela", "Avotu iela",
    "Krišjāņa Valdemāra iela", "Marijas iela", "Ganību dambis", "Maskavas iela", "Kurzemes prospekts",
    "Brīvības gatve", "Vienības gatve", "Dzelzavas iela", "Ulbrokas iela", "Zemitāna iela",
    "Lielvārdes iela", "Ieriķu iela", "Slokas iela", "Kalnciema iela", "Āgenskalna iela",
    "Imantas 8. līnija", "Anniņmuižas bulvāris", "Purvciema iela", "Rušonu iela", "Juglas iela",
    "Miera iela", "Hospitāļu iela", "Ropažu iela", "Valdeķu iela", "Kr. Valdemāra iela",
)
_TOWN_STREETS = (
    "Rīgas iela", "Skolas iela", "Brīvības iela", "Raiņa iela", "Pils iela", "Lielā iela",
    "Ezera iela", "Dārza iela", "Parka iela", "Meža iela", "Stacijas iela", "Baznīcas iela",
    "Tirgus iela", "Upes iela", "Liepu iela", "Ozolu iela", "Bērzu iela", "Kalna iela",
    "Jaunā iela", "Saules iela", "Zemnieku iela", "Smilšu iela", "Krišjāņa Barona iela",
    "Dzirnavu iela", "Pļavas iela", "Celtnieku iela", "Līvu iela", "Rūpniecības iela",
)


def _streets(city: _City) -> tuple[str, ...]:
    return _RIGA_STREETS if city.name == "Rīga" else _TOWN_STREETS


# --------------------------------------------------------------------------
# vzd_address
# --------------------------------------------------------------------------


class _Street:
    """Where the next building on one street goes; keeps house numbers ascending and unique."""

    __slots__ = ("postal_code", "house_no", "house", "flat", "flats", "lat", "lon")

    def __init__(self, postal_code: str) -> None:
        self.postal_code = postal_code
        self.house_no = 0
        self.house = ""
        self.flat = 0
        self.flats = 0  # flats in the current building; 0: a private house, done
        self.lat = Decimal(0)
        self.lon = Decimal(0)


def iter_addresses(size: int = 200, seed: int = 2026) -> Iterator[Record]:
    """Stream the ``vzd_address`` records of the world (:func:`address_count` of them).

    Buildings are laid out street by street with ascending house numbers and,
    in apartment buildings, ascending flat numbers, so no two records share a
    full address, and flats of one building share its coordinates.
    """
    rng = _rng(seed, "addresses")
    random_ = rng.random
    salt = _address_salt(seed)
    streets: dict[tuple[int, int], _Street] = {}
    for index in range(address_count(size)):
        city_index = bisect.bisect(_CITY_CUM, random_())
        city = _CITIES[city_index]
        names = _streets(city)
        street_index = int(random_() * len(names))
        street = streets.get((city_index, street_index))
        if street is None:
            postal = city.postal_first + int(random_() * city.postal_count)
            street = streets[(city_index, street_index)] = _Street(f"LV-{postal:04d}")
        if street.flat and street.flat + 1 <= street.flats:
            street.flat += 1 + int(random_() * min(4.0, street.flats - street.flat))
            street.flat = min(street.flat, street.flats)
        else:
            # A new building further along the street.
            street.house_no += 1 + int(random_() * 3)
            street.house = str(street.house_no) + ("A" if random_() < 0.04 else "")
            apartments = random_() < city.apartment_share
            street.flats = (4 + int(random_() * (56 if city.name == "Rīga" else 32))) if apartments else 0
            street.flat = 1 if apartments else 0
            km = city.spread_km
            lat = city.lat + rng.gauss(0.0, km / 111.0)
            lon = city.lon + rng.gauss(0.0, km / 62.0)  # ~62 km per degree of longitude at 57°N
            street.lat = Decimal(f"{lat:.6f}")
            street.lon = Decimal(f"{lon:.6f}")
        flat = str(street.flat) if street.flat else None
        line = names[street_index] + " " + street.house + (f" - {flat}" if flat else "")
        place = city.name if city.abbrev is None else f"{city.name}, {city.abbrev}"
        yield {
            "address_code": address_code(index, salt),
            "full_address": f"{line}, {place}, {street.postal_code}",
            "street": names[street_index],
            "house": street.house,
            "flat": flat,
            "city": city.name,
            "municipality": city.municipality,
            "postal_code": street.postal_code,
            "atvk_code": city.atvk,
            "latitude": street.lat,
            "longitude": street.lon,
        }


# --------------------------------------------------------------------------
# fpr_person
# --------------------------------------------------------------------------

_SERIAL_STRIDE = 379  # coprime with 1000: k -> (start + k * 379) % 1000 visits every serial once
_SERIAL_TEXT = tuple(f"{s:03d}" for s in range(1000))
_SERIAL_WEIGHT = tuple(
    PERSONAL_CODE_WEIGHTS[7] * (s // 100) + PERSONAL_CODE_WEIGHTS[8] * (s // 10 % 10) + PERSONAL_CODE_WEIGHTS[9] * (s % 10)
    for s in range(1000)
)


class _CodeAllocator:
    """Hands out unique personal codes per birth date without remembering the codes.

    Per birth date it keeps the date's seven-digit prefix, that prefix's
    weighted digit sum and how many serials it has used; serials are visited
    in a scrambled but fixed order, skipping those whose check digit would be 10.
    """

    def __init__(self, salt: int) -> None:
        self._salt = salt
        self._dates: dict[int, list[Any]] = {}

    def allocate(self, birth_ord: int) -> tuple[str, int] | None:
        """A new code for the date, or None when all of its 909 valid serials are used."""
        state = self._dates.get(birth_ord)
        if state is None:
            day = dt.date.fromordinal(birth_ord)
            first_seven = f"{day.day:02d}{day.month:02d}{day.year % 100:02d}{day.year // 100 - 18}"
            partial = sum(w * int(d) for w, d in zip(PERSONAL_CODE_WEIGHTS, first_seven))
            state = self._dates[birth_ord] = [first_seven[:6] + "-" + first_seven[6], partial, 0]
        prefix, partial, used = state
        start = (birth_ord * 37 + self._salt) % 1000
        while used < 1000:
            serial = (start + used * _SERIAL_STRIDE) % 1000
            used += 1
            check = (1 - partial - _SERIAL_WEIGHT[serial]) % 11
            if check != 10:
                state[2] = used
                return prefix + _SERIAL_TEXT[serial] + str(check), birth_ord
        state[2] = used
        return None


def iter_persons(size: int = 200, seed: int = 2026) -> Iterator[Record]:
    """Stream the ``fpr_person`` records of the world, identical to ``generate_world(...)["fpr_person"]``.

    Memory stays bounded (one small counter per birth date), so a benchmark can
    load a million persons without holding them.
    """
    if size < 0:
        raise ValueError(f"size must be >= 0, got {size}")
    rng = _rng(seed, "persons")
    random_ = rng.random
    codes = _CodeAllocator(rng.randrange(1000))
    salt = _address_salt(seed)
    n_addresses = address_count(size)
    fromordinal = dt.date.fromordinal
    n_male, n_female, n_surnames = len(_MALE_FIRST_NAMES), len(_FEMALE_FIRST_NAMES), len(_SURNAMES)
    for _ in range(size):
        age = bisect.bisect(_AGE_CUM, random_())
        birth_ord = _REF_ORD - 1 - int((age + random_()) * _DAYS_PER_YEAR)
        allocated = codes.allocate(birth_ord)
        while allocated is None:  # that birth date is full (only in worlds of tens of millions)
            birth_ord -= 1
            allocated = codes.allocate(birth_ord)
        code, birth_ord = allocated
        female = random_() < 0.53
        if female:
            first_name = _FEMALE_FIRST_NAMES[int(random_() * n_female)]
            last_name = _SURNAMES[int(random_() * n_surnames)][1]
        else:
            first_name = _MALE_FIRST_NAMES[int(random_() * n_male)]
            last_name = _SURNAMES[int(random_() * n_surnames)][0]
        citizenship = _CITIZENSHIP[bisect.bisect(_CITIZENSHIP_CUM, random_())]
        end_ord = _REF_ORD - 1
        death_date = None
        if random_() < age * _DECEASED_RATE_PER_YEAR_OF_AGE:
            low = min(max(birth_ord, _REF_ORD - 15 * 365), _REF_ORD - 1)
            end_ord = low + int(random_() * (_REF_ORD - low))
            death_date = fromordinal(end_ord)
        declared = address_code(int(random_() * n_addresses), salt)
        addresses = [{
            "address_code": declared,
            "kind": "declared",
            "valid_from": fromordinal(birth_ord + int(random_() * (end_ord - birth_ord + 1))),
        }]
        if random_() < 0.1:
            additional = address_code(int(random_() * n_addresses), salt)
            if additional != declared:
                addresses.append({
                    "address_code": additional,
                    "kind": "additional",
                    "valid_from": fromordinal(birth_ord + int(random_() * (end_ord - birth_ord + 1))),
                })
        yield {
            "person_code": code,
            "first_name": first_name,
            "last_name": last_name,
            "birth_date": fromordinal(birth_ord),
            "gender": "F" if female else "M",
            "citizenship": citizenship,
            "status": "deceased" if death_date else "active",
            "death_date": death_date,
            "declared_address_code": declared,
            "addresses": addresses,
        }


# --------------------------------------------------------------------------
# ur_company
# --------------------------------------------------------------------------

_LEGAL_FORMS = ("SIA", "AS", "IK", "biedrība", "nodibinājums")
_LEGAL_FORM_CUM = _cumulative((75.0, 4.0, 8.0, 11.0, 2.0))
# Register segments by legal form (commercial companies 4000x/5000x, associations 40008).
_REG_PREFIXES = {
    "SIA": ("40003", "40103", "50003", "42103", "44103"),
    "AS": ("40003", "50003"),
    "IK": ("40002", "42102"),
    "biedrība": ("40008",),
    "nodibinājums": ("40008",),
}
_NAME_FIRST = (
    "Kurzemes", "Vidzemes", "Latgales", "Zemgales", "Sēlijas", "Rīgas", "Baltijas", "Daugavas",
    "Gaujas", "Ventas", "Ziemeļu", "Jūras", "Meža", "Saules", "Dzintara", "Ozolu", "Lauku", "Pilsētas",
)
_NAME_SECOND = (
    "Koks", "Būve", "Serviss", "Transports", "Tirdzniecība", "Loģistika", "Dārzs", "Maize", "Piens",
    "Enerģija", "Projekti", "Konsultācijas", "Tehnoloģijas", "Nami", "Ceļi", "Metāls", "Stikls",
    "Aptieka", "Auto", "Dati", "Zivis", "Graudi", "Mēbeles", "Tekstils",
)
_ASSOCIATION_NAMES = (
    "Sporta klubs", "Vecāku biedrība", "Mednieku kolektīvs", "Kultūras biedrība", "Dārzkopju biedrība",
    "Jauniešu centrs", "Pensionāru biedrība", "Kora draugi", "Dzīvokļu īpašnieku biedrība",
)
_STATUS = ("active", "liquidation", "deregistered")
_STATUS_CUM = _cumulative((86.0, 4.0, 10.0))
_UR_START = dt.date(1991, 9, 1).toordinal()
_SIA_CAPITALS = (Decimal("2800.00"), Decimal("2800.00"), Decimal("2846.00"), Decimal("5000.00"),
                 Decimal("10000.00"), Decimal("1.00"), Decimal("35000.00"), Decimal("142287.00"))


class _RegNumberAllocator:
    """Unique registration numbers per register segment, in a scrambled fixed order."""

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng
        self._state: dict[str, list[int]] = {}

    def allocate(self, prefixes: Sequence[str]) -> str:
        for prefix in prefixes:
            space = 10 ** (10 - len(prefix))
            state = self._state.get(prefix)
            if state is None:
                state = self._state[prefix] = [self._rng.randrange(space), 0]
            start, used = state
            while used < space:
                serial = (start + used * 7919) % space  # 7919 is prime, coprime with 10**n
                used += 1
                number = company_reg_number(serial, prefix)
                if number is not None:
                    state[1] = used
                    return number
            state[1] = used
        raise ValueError(f"register segments {', '.join(prefixes)} are full; use a smaller world")


def _companies(size: int, seed: int, persons: Sequence[Record]) -> list[Record]:
    rng = _rng(seed, "companies")
    random_ = rng.random
    salt = _address_salt(seed)
    n_addresses = address_count(size)
    numbers = _RegNumberAllocator(rng)
    adults = [p for p in persons if p["status"] == "active" and _age(p["birth_date"]) >= _ADULT_AGE]
    names_used: set[str] = set()
    companies: list[Record] = []
    for _ in range(company_count(size)):
        form = _LEGAL_FORMS[bisect.bisect(_LEGAL_FORM_CUM, random_())]
        reg_number = numbers.allocate(_REG_PREFIXES[form])
        for attempt in itertools.count():
            if form in ("biedrība", "nodibinājums"):
                base = f'{rng.choice(_NAME_FIRST)} {rng.choice(_ASSOCIATION_NAMES).lower()}'
                base = base[0].upper() + base[1:]
            else:
                base = f"{rng.choice(_NAME_FIRST)} {rng.choice(_NAME_SECOND)}"
            if attempt >= 5:
                base = f"{base} {attempt - 3}"
            name = f'{form} "{base}"' if form != "biedrība" and form != "nodibinājums" else f'{form.capitalize()} "{base}"'
            if name not in names_used:
                names_used.add(name)
                break
        earliest = _UR_START if form != "IK" else dt.date(2002, 1, 1).toordinal()
        # Skewed towards recent years: more companies exist that were registered lately.
        registered_ord = earliest + int((random_() ** 0.7) * (_REF_ORD - 1 - earliest))
        if form == "AS":
            capital: Decimal | None = Decimal(25000 + 1000 * int(random_() ** 3 * 5000)).quantize(Decimal("0.01"))
        elif form == "SIA":
            capital = rng.choice(_SIA_CAPITALS)
        else:
            capital = None
        if form == "IK":
            roles = ["īpašnieks"]
        elif form == "AS":
            roles = ["valdes priekšsēdētājs"] + ["valdes loceklis"] * rng.randint(2, 4)
        elif form == "SIA":
            roles = ["valdes loceklis"] * rng.randint(1, 3) + (["prokūrists"] if random_() < 0.1 else [])
        else:
            roles = ["valdes priekšsēdētājs"] + ["valdes loceklis"] * rng.randint(0, 2)
        officers: list[Record] = []
        for position, (role, person) in enumerate(zip(roles, rng.sample(adults, min(len(roles), len(adults))))):
            low = max(registered_ord, _years_after(person["birth_date"], _ADULT_AGE).toordinal())
            # The owner or first board member usually founded the entity; others joined later.
            founder = position == 0 and (form == "IK" or random_() < 0.6)
            since = low if founder else low + int(random_() * (_REF_ORD - low))
            officers.append({"person_code": person["person_code"], "role": role, "since": dt.date.fromordinal(since)})
        companies.append({
            "reg_number": reg_number,
            "name": name,
            "legal_form": form,
            "registered": dt.date.fromordinal(registered_ord),
            "status": _STATUS[bisect.bisect(_STATUS_CUM, random_())],
            "address_code": address_code(int(random_() * n_addresses), salt),
            "share_capital": capital,
            "officers": officers,
        })
    return companies


# --------------------------------------------------------------------------
# viis_education
# --------------------------------------------------------------------------

_VOCATIONAL_SCHOOLS = (
    "Rīgas Valsts tehnikums", "Rīgas Tehniskā koledža", "Jelgavas Tehnikums", "Liepājas Valsts tehnikums",
    "Daugavpils Būvniecības tehnikums", "Valmieras tehnikums", "Ogres tehnikums",
    "Kuldīgas Tehnoloģiju un tūrisma tehnikums", "Rīgas Mākslas un mediju tehnikums",
)
_VOCATIONAL_PROGRAMMES = (
    "Datorsistēmu tehniķis", "Pavārs", "Elektriķis", "Grāmatvedis", "Automehāniķis",
    "Būvdarbu vadītājs", "Viesmīlības pakalpojumu speciālists", "Kokizstrādājumu izgatavotājs",
)
_UNIVERSITIES = (
    "Latvijas Universitāte", "Rīgas Tehniskā universitāte", "Rīgas Stradiņa universitāte",
    "Latvijas Biozinātņu un tehnoloģiju universitāte", "Daugavpils Universitāte", "Liepājas Universitāte",
    "Vidzemes Augstskola", "Ventspils Augstskola", "Rēzeknes Tehnoloģiju akadēmija", "Banku augstskola",
    "Rīgas Ekonomikas augstskola", "Latvijas Mākslas akadēmija",
)
_HIGHER_PROGRAMMES = (
    "Datorzinātnes", "Ekonomika", "Tiesību zinātne", "Vadības zinības", "Būvniecība", "Psiholoģija",
    "Filoloģija", "Ķīmija", "Fizika", "Bioloģija", "Vēsture", "Komunikācijas zinātne", "Mašīnbūve",
    "Pedagoģija", "Lauksaimniecība",
)
_SECONDARY_PROGRAMMES = (
    "Vispārējās vidējās izglītības programma",
    "Vispārējās vidējās izglītības matemātikas, dabaszinātņu un tehnikas virziena programma",
    "Vispārējās vidējās izglītības humanitārā un sociālā virziena programma",
)
# level -> (document series, years after birth when issued)
_LEVELS = {
    "basic": ("PA", 16),
    "general secondary": ("VA", 19),
    "vocational secondary": ("PK", 20),
    "bachelor": ("BD", 23),
    "master": ("MD", 25),
    "doctoral": ("DR", 30),
}


def _education(seed: int, persons: Sequence[Record], city_of: dict[str, _City]) -> list[Record]:
    rng = _rng(seed, "education")
    random_ = rng.random
    counters = {series: rng.randrange(10_000, 100_000) for series, _ in _LEVELS.values()}
    records: list[Record] = []
    for person in persons:
        birth: dt.date = person["birth_date"]
        if _age(birth) < _ADULT_AGE or random_() >= 0.8:
            continue
        last_day = person["death_date"] or REFERENCE_DATE - dt.timedelta(days=1)
        city = city_of[person["declared_address_code"]]
        path = ["basic"]
        roll = random_()
        if roll < 0.62:
            path.append("general secondary")
            if random_() < 0.5:
                path.append("bachelor")
                if random_() < 0.4:
                    path.append("master")
                    if random_() < 0.08:
                        path.append("doctoral")
        elif roll < 0.95:
            path.append("vocational secondary")
        documents: list[Record] = []
        delay = 0
        for level in path:
            series, years = _LEVELS[level]
            if level in ("bachelor", "master", "doctoral"):
                delay += int(random_() * 2) + (int(random_() * 4) if level == "doctoral" else 0)
            issued = dt.date(birth.year + years + delay, 6, 10 + int(random_() * 20))
            if issued > last_day:
                break
            if level == "basic":
                institution = f"{city.genitive} {1 + int(random_() * 9)}. pamatskola"
                programme = "Pamatizglītības programma"
            elif level == "general secondary":
                institution = (f"{city.genitive} Valsts ģimnāzija" if random_() < 0.3
                               else f"{city.genitive} {1 + int(random_() * 6)}. vidusskola")
                programme = rng.choice(_SECONDARY_PROGRAMMES)
            elif level == "vocational secondary":
                institution = rng.choice(_VOCATIONAL_SCHOOLS)
                programme = rng.choice(_VOCATIONAL_PROGRAMMES)
            else:
                institution = rng.choice(_UNIVERSITIES)
                programme = rng.choice(_HIGHER_PROGRAMMES)
            counters[series] += 1 + int(random_() * 3)
            documents.append({
                "document_number": f"{series} {counters[series]:06d}",
                "level": level,
                "institution": institution,
                "issued": issued,
                "programme": programme,
            })
        if documents:
            records.append({"person_code": person["person_code"], "documents": documents})
    return records


# --------------------------------------------------------------------------
# vsaa_social_insurance
# --------------------------------------------------------------------------

_INSURANCE_STATUS = ("employee", "self-employed", "voluntary", "not insured")
_INSURANCE_STATUS_CUM = _cumulative((74.0, 8.0, 3.0, 15.0))
_SAIS_START = dt.date(1996, 1, 1).toordinal()  # earliest contribution data the agency holds
_DAYS_PER_MONTH = 30.436875


def _social_insurance(seed: int, persons: Sequence[Record], companies: Sequence[Record]) -> list[Record]:
    rng = _rng(seed, "social-insurance")
    random_ = rng.random
    by_registration = sorted(companies, key=lambda c: (c["registered"], c["reg_number"]))
    registered_ords = [c["registered"].toordinal() for c in by_registration]
    records: list[Record] = []
    for person in persons:
        birth: dt.date = person["birth_date"]
        if person["status"] != "active" or not _ADULT_AGE <= _age(birth) < _RETIREMENT_AGE or random_() >= 0.9:
            continue
        status = _INSURANCE_STATUS[bisect.bisect(_INSURANCE_STATUS_CUM, random_())]
        adult_ord = _years_after(birth, _ADULT_AGE).toordinal()
        start = max(_SAIS_START, adult_ord + int(random_() * 6 * 365))
        periods: list[Record] = []
        months = 0
        while start < _REF_ORD - 1 and len(periods) < 8:
            eligible = bisect.bisect(registered_ords, start)
            if eligible == 0:  # no company existed yet: start with the first one
                start = max(start, registered_ords[0])
                if start >= _REF_ORD - 1:
                    break
                eligible = 1
            employer = by_registration[int(random_() * eligible)]
            end = start + 90 + int(random_() ** 2 * 10 * 365)
            if end >= _REF_ORD - 1:
                end = _REF_ORD - 1
            periods.append({"employer_reg_number": employer["reg_number"], "from_date": start, "to_date": end})
            start = end + 1 + int(random_() * 200)
        if not periods and status == "employee":
            status = "not insured"  # too young to have had a job yet
        if status == "employee":
            periods[-1]["to_date"] = None  # still employed
        elif periods and periods[-1]["to_date"] >= _REF_ORD - 1:
            # Left the last employer some time ago (not before the period began).
            last = periods[-1]
            last["to_date"] = max(last["from_date"], _REF_ORD - 2 - int(random_() * 300))
        last_event = max(_SAIS_START, adult_ord)  # the record exists from the 18th birthday
        for period in periods:
            end_ord = period["to_date"] if period["to_date"] is not None else _REF_ORD
            months += round((end_ord - period["from_date"]) / _DAYS_PER_MONTH)
            last_event = max(last_event, period["from_date"], period["to_date"] or 0)
            period["from_date"] = dt.date.fromordinal(period["from_date"])
            if period["to_date"] is not None:
                period["to_date"] = dt.date.fromordinal(period["to_date"])
        changed_day = dt.date.fromordinal(min(last_event + int(random_() * 3), _REF_ORD - 1))
        records.append({
            "person_code": person["person_code"],
            "insured": status != "not insured",
            "insurance_status": status,
            "contribution_months": months,
            "periods": periods,
            "last_changed": dt.datetime.combine(
                changed_day, dt.time(7 + int(random_() * 11), int(random_() * 60), int(random_() * 60)),
                tzinfo=dt.timezone.utc,
            ),
        })
    return records


# --------------------------------------------------------------------------
# csdd_vehicle
# --------------------------------------------------------------------------

_MAKES = (
    ("Volkswagen", "WVW", ("Golf", "Passat", "Tiguan"), 1300),
    ("Škoda", "TMB", ("Octavia", "Superb", "Fabia"), 1250),
    ("Toyota", "JTD", ("Corolla", "RAV4", "Yaris"), 1280),
    ("Volvo", "YV1", ("XC60", "V70", "S60"), 1650),
    ("BMW", "WBA", ("320d", "X5", "520d"), 1550),
    ("Renault", "VF1", ("Clio", "Megane", "Kangoo"), 1150),
    ("Tesla", "5YJ", ("Model 3", "Model Y"), 1850),
)
_MAKE_CUM = _cumulative((20.0, 18.0, 16.0, 12.0, 12.0, 14.0, 4.0))
_FUELS = ("petrol", "diesel", "electric", "hybrid", "lpg")
_FUEL_CUM = _cumulative((42.0, 38.0, 0.0, 14.0, 6.0))  # electric only for electric makes
_VIN_CHARS = "ABCDEFGHJKLMNPRSTUVWXYZ0123456789"  # no I, O, Q
_PLATE_LETTERS = "ABCDEFGHJKLMNPRSTUVZ"
_PLATE_SPACE = len(_PLATE_LETTERS) ** 2 * 9000
_PLATE_STEP = 1_234_567  # coprime with _PLATE_SPACE: index -> plate is a bijection
_CSDD_START = dt.date(1995, 1, 1).toordinal()


def _plate(index: int, offset: int) -> str:
    """The ``index``-th plate of the world: unique for every index below the plate space."""
    n = (index * _PLATE_STEP + offset) % _PLATE_SPACE
    letters, number = divmod(n, 9000)
    first, second = divmod(letters, len(_PLATE_LETTERS))
    return f"{_PLATE_LETTERS[first]}{_PLATE_LETTERS[second]}{1000 + number}"


def _ascii(text: str) -> str:
    import unicodedata

    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()


def _vehicles(seed: int, persons: Sequence[Record], companies: Sequence[Record] = ()) -> list[Record]:
    """About one vehicle per three adults; owners and keepers are living adult persons of the world.

    Holders (who had the vehicle registered to them, with periods) are the keeper and, for about one
    vehicle in four, a leasing company of the world before them (drawn from a stream of their own).
    The first adult co-owns about one vehicle in five, so a search by an owner has several pages."""
    rng = _rng(seed, "vehicles")
    holder_rng = _rng(seed, "vehicle-holders")
    random_ = rng.random
    offset = rng.randrange(_PLATE_SPACE)
    adults = [p for p in persons if p["status"] == "active" and _age(p["birth_date"]) >= _ADULT_AGE]
    records: list[Record] = []
    plates_used = 0
    for number, holder in enumerate(p for p in adults if random_() < 0.35):
        make, wmi, models, base_mass = _MAKES[bisect.bisect(_MAKE_CUM, random_())]
        model = models[int(random_() * len(models))]
        adult_ord = _years_after(holder["birth_date"], _ADULT_AGE).toordinal()
        first_ord = max(_CSDD_START, adult_ord) + int(random_() * (_REF_ORD - max(_CSDD_START, adult_ord)))
        first_ord = min(first_ord, _REF_ORD - 1)
        fuel = "electric" if make == "Tesla" else _FUELS[bisect.bisect(_FUEL_CUM, random_())]
        power = None if random_() < 0.15 else 50 + int(random_() * 200)
        vin = (wmi + "".join(_VIN_CHARS[int(random_() * len(_VIN_CHARS))] for _ in range(8))
               + f"{number:06d}")
        # owners: the keeper first, sometimes co-owners (a spouse, a family member)
        co_owners = [p for p in (adults[int(random_() * len(adults))] for _ in range(int(random_() ** 3 * 3)))
                     if p["person_code"] != holder["person_code"]]
        # a family fleet: the first adult co-owns about one vehicle in five (searches by owner have pages)
        if holder_rng.random() < 0.2 and adults[0]["person_code"] != holder["person_code"]:
            co_owners.append(adults[0])
        co_owners = list({p["person_code"]: p for p in co_owners}.values())
        people = [holder, *co_owners]
        shares = {1: [Decimal("1.00")], 2: [Decimal("0.50"), Decimal("0.50")],
                  3: [Decimal("0.50"), Decimal("0.25"), Decimal("0.25")]}.get(len(people), [Decimal("0.25")] * 4)
        owners: list[Record] = []
        for person, share in zip(people, shares):
            since_low = max(first_ord, _years_after(person["birth_date"], _ADULT_AGE).toordinal())
            since = min(since_low + int(random_() * max(1, _REF_ORD - since_low)), _REF_ORD - 1)
            contacts: list[Record] = []
            if random_() < 0.7:
                contacts.append({"kind": "phone", "value": f"+371 2{int(random_() * 10**7):07d}"})
            if random_() < 0.4:
                contacts.append({"kind": "email",
                                 "value": f"{_ascii(person['first_name'])}.{_ascii(person['last_name'])}@example.lv"})
            owners.append({"person_code": person["person_code"], "share": share,
                           "from": dt.date.fromordinal(since), "contacts": contacts})
        previous = [_plate(len(adults) + plates_used + i, offset) for i in range(int(random_() ** 2 * 3))]
        plates_used += len(previous)
        holders: list[Record] = []
        keeper_from = dt.date.fromordinal(first_ord)
        leasing = [c for c in companies if c["registered"].toordinal() <= first_ord]
        if leasing and holder_rng.random() < 0.25 and first_ord < _REF_ORD - 2:
            company = leasing[int(holder_rng.random() * len(leasing))]
            until = first_ord + 1 + int(holder_rng.random() * (_REF_ORD - 2 - first_ord))
            holders.append({"kind": "company", "code": company["reg_number"], "from": keeper_from,
                            "to": dt.date.fromordinal(until)})
            keeper_from = dt.date.fromordinal(until + 1)
        holders.append({"kind": "person", "code": holder["person_code"], "from": keeper_from, "to": None})
        records.append({
            "plate": _plate(number, offset),
            "vin": vin,
            "holder_code": holder["person_code"],
            "make": make,
            "model": model,
            "first_registered": dt.date.fromordinal(first_ord),
            "technical": {"mass": Decimal(base_mass + int(random_() * 40) * 10), "fuel": fuel, "power_kw": power},
            "owners": owners,
            "previous_plates": previous,
            "holders": holders,
        })
    return records


# --------------------------------------------------------------------------


def generate_world(size: int = 200, seed: int = 2026) -> dict[str, list[Record]]:
    """All six datasets of a world of ``size`` persons, keyed by dataset name.

    Records carry exactly their manifest's fields (None for an optional value
    that is absent). The same ``(size, seed)`` always gives equal output.
    """
    persons = list(iter_persons(size, seed))
    addresses = list(iter_addresses(size, seed))
    companies = _companies(size, seed, persons)
    city_by_name = {c.name: c for c in _CITIES}
    city_of = {a["address_code"]: city_by_name[a["city"]] for a in addresses}
    return {
        "fpr_person": persons,
        "ur_company": companies,
        "vzd_address": addresses,
        "viis_education": _education(seed, persons, city_of),
        "vsaa_social_insurance": _social_insurance(seed, persons, companies),
        "csdd_vehicle": _vehicles(seed, persons, companies),
    }
