"""Fake PII with valid checksums, so the PII gate's recognisers (which verify
Luhn and IBAN mod-97) fire on the planted records.

All values are synthetic: e-mails use the reserved example.com/example.org
domains, phone numbers the 555-01xx fiction range, IPv4 addresses the
documentation range 203.0.113.0/24, card numbers test-style issuer prefixes.
"""

from __future__ import annotations

import random
import string

FIRST_NAMES = ["alex", "jordan", "sam", "taylor", "casey", "morgan", "riley", "jamie", "drew", "quinn"]
LAST_NAMES = ["rivera", "chen", "okafor", "novak", "haddad", "lindqvist", "moreau", "tanaka", "silva", "kowalski"]
AREA_CODES = ["212", "415", "312", "617", "206"]
#: Issuer prefix -> total length (test-style numbers: Visa, Mastercard, Amex, Discover).
CARD_PREFIXES = {"4111": 16, "5500": 16, "3400": 15, "3700": 15, "6011": 16, "4012": 16}


def luhn_check_digit(partial: str) -> str:
    """The Luhn check digit that makes ``partial + digit`` pass the Luhn test."""
    total = 0
    # Walking from the right, the digit next to the (future) check digit is doubled.
    for index, char in enumerate(reversed(partial)):
        digit = int(char)
        if index % 2 == 0:
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return str((10 - total % 10) % 10)


def luhn_valid(number: str) -> bool:
    """Whether a digit string (spaces and dashes ignored) passes the Luhn test."""
    digits = [c for c in number if c.isdigit()]
    return len(digits) > 1 and luhn_check_digit("".join(digits[:-1])) == digits[-1]


def card_number(rng: random.Random, prefix: str) -> str:
    """A Luhn-valid card number with an issuer ``prefix``, grouped like a printed card."""
    length = CARD_PREFIXES[prefix]
    body = prefix + "".join(rng.choice(string.digits) for _ in range(length - len(prefix) - 1))
    number = body + luhn_check_digit(body)
    if length == 15:  # Amex prints 4-6-5
        return f"{number[:4]} {number[4:10]} {number[10:]}"
    return " ".join(number[i : i + 4] for i in range(0, 16, 4))


def _iban_numeric(text: str) -> int:
    return int("".join(str(int(c, 36)) for c in text))


def iban_check_digits(country: str, bban: str) -> str:
    """ISO 13616 check digits: 98 - (BBAN + country + '00' as digits) mod 97."""
    return f"{98 - _iban_numeric(bban + country + '00') % 97:02d}"


def iban_valid(iban: str) -> bool:
    """Whether an IBAN (spaces ignored) passes the mod-97 test."""
    compact = iban.replace(" ", "").upper()
    return len(compact) > 4 and _iban_numeric(compact[4:] + compact[:4]) % 97 == 1


def iban(rng: random.Random, country: str) -> str:
    """A mod-97-valid DE (18-digit BBAN) or GB (4-letter bank, 14 digits) IBAN, printed in groups of 4."""
    if country == "DE":
        bban = "".join(rng.choice(string.digits) for _ in range(18))
    elif country == "GB":
        bban = rng.choice(["NWBK", "BARC", "LOYD", "MIDL"]) + "".join(rng.choice(string.digits) for _ in range(14))
    else:
        raise ValueError(f"unsupported IBAN country {country!r} (expected DE or GB)")
    compact = country + iban_check_digits(country, bban) + bban
    return " ".join(compact[i : i + 4] for i in range(0, len(compact), 4))


def email(rng: random.Random) -> str:
    """A personal-looking address at example.com or example.org."""
    name = f"{rng.choice(FIRST_NAMES)}.{rng.choice(LAST_NAMES)}"
    if rng.random() < 0.4:
        name += str(rng.randint(1, 99))
    return f"{name}@{rng.choice(['example.com', 'example.org'])}"


def phone(rng: random.Random) -> str:
    """A US number in the fictional 555-0100..555-0199 range, e.g. ``(212) 555-0147``."""
    return f"({rng.choice(AREA_CODES)}) 555-01{rng.randint(0, 99):02d}"


def ssn(rng: random.Random) -> str:
    """A US SSN in valid format: area not 000/666/9xx, group not 00, serial not 0000."""
    area = rng.choice([a for a in range(100, 666) if a != 666])
    return f"{area:03d}-{rng.randint(1, 99):02d}-{rng.randint(1, 9999):04d}"


def ipv4(rng: random.Random) -> str:
    """An address from the documentation range 203.0.113.0/24."""
    return f"203.0.113.{rng.randint(2, 254)}"


def full_name(rng: random.Random) -> str:
    """A capitalised first and last name from the fake pools."""
    return f"{rng.choice(FIRST_NAMES).title()} {rng.choice(LAST_NAMES).title()}"
