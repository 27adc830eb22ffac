"""Latvian identifiers for synthetic data: personal codes, company numbers, address codes.

Demo data goes through the same validators a real consumer's data would meet
(a facade or a legacy provider may reject a personal code with a wrong check
digit), so the generator must produce identifiers that are structurally right,
not just eleven random digits. Everything here is pure and dependency-free so
the generator can call it a million times.

Sources for the rules (none is an official specification; documented so a
reader can judge them):

* Personal code (personas kods), old format ``DDMMYY-CNNNN``: birth date,
  century digit ``C`` (0: 1800s, 1: 1900s, 2: 2000s), three serial digits and a
  check digit: weights ``(1, 6, 3, 7, 9, 10, 5, 8, 4, 2)`` over the first ten
  digits, check ``= (1101 - sum) mod 11``. A remainder of 10 has no digit, so
  such serials are never issued and such codes are invalid. Confirmed on the
  widely used example ``161175-19997``; python-stdnum (``stdnum.lv.pvn``) uses
  the equivalent form ``(1 + sum(w' * d)) mod 11`` with ``w' = -w mod 11``.
* Personal code, new format (issued from 1 July 2017): ``32XXXX-XXXXX``, no
  birth date inside. python-stdnum (2026) applies the same check digit rule to
  it (its example ``328673-00679`` passes, ``328673-00677`` fails), and that
  example is consistent with the rule above, so it is applied here too.
* Legal entity registration number (reģistrācijas numurs, also the VAT
  number's digits): 11 digits, first digit 4-9 (commercial companies ``4000...``
  / ``5000...``, state institutions ``9000...``); weights
  ``(9, 1, 4, 8, 3, 10, 2, 5, 7, 6, 1)`` over all eleven digits, the weighted sum
  mod 11 must be 3 (python-stdnum; holds for the example ``40003521600``).
* Address code (adreses kods, State Address Register): 9 digits; real codes
  start with 1. No public check digit rule is known, so only the shape is
  checked; uniqueness comes from :func:`address_code` being a bijection.
"""

from __future__ import annotations

import datetime as dt

__all__ = [
    "PERSONAL_CODE_WEIGHTS",
    "COMPANY_WEIGHTS",
    "personal_code",
    "personal_code_check_digit",
    "is_valid_personal_code",
    "birth_date_from_personal_code",
    "company_reg_number",
    "is_valid_company_reg_number",
    "address_code",
    "is_valid_address_code",
]

PERSONAL_CODE_WEIGHTS: tuple[int, ...] = (1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
COMPANY_WEIGHTS: tuple[int, ...] = (9, 1, 4, 8, 3, 10, 2, 5, 7, 6, 1)

_CENTURY_DIGIT = {18: 0, 19: 1, 20: 2}
_NEW_FORMAT_PREFIX = "32"
_COMPANY_CHECK_REMAINDER = 3

# Address codes: i -> 100000000 + (i * A + salt) mod 10**8 is a bijection on
# [0, 10**8) because A is coprime with 10**8 (odd, not a multiple of 5). That
# gives unique, scattered codes without keeping a set of the ones already used.
_ADDRESS_SPACE = 10**8
_ADDRESS_MULTIPLIER = 282_475_249  # 7**10


def _digits(code: str) -> str | None:
    """The code without one optional hyphen after the sixth digit, if the rest are digits."""
    if len(code) == 12 and code[6] == "-":
        code = code[:6] + code[7:]
    if len(code) != 11 or not code.isdigit() or not code.isascii():
        return None
    return code


def personal_code_check_digit(first_ten: str) -> int | None:
    """Check digit for the first ten digits of a personal code; None if none exists (remainder 10)."""
    total = sum(w * int(d) for w, d in zip(PERSONAL_CODE_WEIGHTS, first_ten))
    check = (1101 - total) % 11
    return None if check == 10 else check


def personal_code(birth_date: dt.date, serial: int) -> str | None:
    """Old-format personal code ``DDMMYY-CNNNN`` for a birth date and a serial 0..999.

    Returns None when the serial would need check digit 10: such codes are not
    issued, and the caller should simply try the next serial.
    """
    if not 0 <= serial <= 999:
        raise ValueError(f"serial must be 0..999, got {serial}")
    century = _CENTURY_DIGIT.get(birth_date.year // 100)
    if century is None:
        raise ValueError(f"personal codes encode years 1800-2099, got {birth_date.year}")
    first_ten = f"{birth_date.day:02d}{birth_date.month:02d}{birth_date.year % 100:02d}{century}{serial:03d}"
    check = personal_code_check_digit(first_ten)
    if check is None:
        return None
    return f"{first_ten[:6]}-{first_ten[6:]}{check}"


def birth_date_from_personal_code(code: str) -> dt.date | None:
    """Birth date encoded in an old-format code; None for new-format or malformed codes."""
    digits = _digits(code)
    if digits is None or digits.startswith(_NEW_FORMAT_PREFIX) or digits[6] not in "012":
        return None
    year = 1800 + 100 * int(digits[6]) + int(digits[4:6])
    try:
        return dt.date(year, int(digits[2:4]), int(digits[0:2]))
    except ValueError:
        return None


def is_valid_personal_code(code: str) -> bool:
    """True for a well-formed personal code with a correct check digit.

    Accepts ``DDMMYY-CNNNN`` / ``32XXXX-XXXXX`` with or without the hyphen.
    Old-format codes must also encode a real calendar date (century digit
    0-2). New-format codes carry no date; they get the same check digit rule
    (see the module docstring for why that rule is trusted).
    """
    digits = _digits(code)
    if digits is None:
        return False
    if not digits.startswith(_NEW_FORMAT_PREFIX) and birth_date_from_personal_code(digits) is None:
        return False
    return personal_code_check_digit(digits[:10]) == int(digits[10])


def _company_checksum(digits: str) -> int:
    return sum(w * int(d) for w, d in zip(COMPANY_WEIGHTS, digits)) % 11


def company_reg_number(serial: int, prefix: str = "40003") -> str | None:
    """Registration number ``prefix + serial + check digit`` (11 digits).

    ``prefix`` sets the register segment (``40003`` and ``50003`` commercial
    companies, ``40008`` associations, ``9000`` state institutions); the serial
    fills the remaining digits before the check digit. Returns None when no
    check digit satisfies the rule (the needed value is 10): skip that serial.
    """
    width = 10 - len(prefix)
    if not prefix.isdigit() or width < 1 or prefix[0] not in "456789":
        raise ValueError(f"prefix must be 1-9 digits starting with 4-9, got {prefix!r}")
    if not 0 <= serial < 10**width:
        raise ValueError(f"serial must fit in {width} digits, got {serial}")
    first_ten = f"{prefix}{serial:0{width}d}"
    check = (_COMPANY_CHECK_REMAINDER - _company_checksum(first_ten)) % 11
    if check == 10:
        return None
    return f"{first_ten}{check}"


def is_valid_company_reg_number(code: str) -> bool:
    """True for 11 ASCII digits, first digit 4-9, weighted sum mod 11 equal to 3."""
    return (
        len(code) == 11
        and code.isascii()
        and code.isdigit()
        and code[0] in "456789"
        and _company_checksum(code) == _COMPANY_CHECK_REMAINDER
    )


def address_code(index: int, salt: int = 0) -> str:
    """The ``index``-th address code of a world; distinct indexes give distinct codes.

    ``salt`` shifts the sequence so that different seeds produce different
    codes; any integer is fine.
    """
    if not 0 <= index < _ADDRESS_SPACE:
        raise ValueError(f"address index must be 0..{_ADDRESS_SPACE - 1}, got {index}")
    return str(_ADDRESS_SPACE + (index * _ADDRESS_MULTIPLIER + salt) % _ADDRESS_SPACE)


def is_valid_address_code(code: str) -> bool:
    """True for 9 ASCII digits starting with 1 (shape only; see the module docstring)."""
    return len(code) == 9 and code.isascii() and code.isdigit() and code[0] == "1"
