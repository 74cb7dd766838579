"""Thai identifier rules, as pure functions shared by models, simulators and tests.

Citizen IDs (DOPA) and juristic-person IDs (DBD) are both 13 digits whose last digit is a check
digit over the first twelve: (11 - sum(d[i] * (13 - i)) mod 11) mod 10. A wrong digit is the most
common keying error the check catches, and a record with one must not reach the Linkage Center.
"""

from __future__ import annotations

import random
from datetime import date
from functools import lru_cache
from operator import mul

THAI_ID_LENGTH = 13
BUDDHIST_ERA_OFFSET = 543
EARLIEST_YEAR = 1800
_WEIGHTS = range(THAI_ID_LENGTH, 1, -1)
_ZEROS = ord("0") * sum(_WEIGHTS)
"""The check sum over the digits' ASCII codes, less what their '0' offsets add: no int() per digit."""


def check_digit(first_twelve: str) -> int:
    """The 13th digit for the given first twelve digits."""
    if len(first_twelve) != THAI_ID_LENGTH - 1 or not first_twelve.isascii() or not first_twelve.isdigit():
        raise ValueError(f"expected 12 ASCII digits, got {first_twelve!r}")
    total: int = sum(map(mul, first_twelve.encode(), _WEIGHTS)) - _ZEROS
    return (11 - total % 11) % 10


@lru_cache(maxsize=1 << 16)
def thai_id_problem(value: str) -> str | None:
    """Why `value` is not a valid 13-digit Thai ID, or None when it is. Remembered: one person's ID
    comes back in event after event (their records, their references), and the stream checks each."""
    if len(value) != THAI_ID_LENGTH or not value.isascii() or not value.isdigit():
        return f"{value!r} is not 13 digits"
    expected = check_digit(value[:12])
    if int(value[12]) != expected:
        return f"{value} has check digit {value[12]}, expected {expected}"
    return None


def is_valid_thai_id(value: str) -> bool:
    return thai_id_problem(value) is None


def with_check_digit(first_twelve: str) -> str:
    """Complete a 12-digit prefix into a valid 13-digit ID."""
    return first_twelve + str(check_digit(first_twelve))


def random_thai_id(rng: random.Random, first_digit: int = 1) -> str:
    """A valid ID for synthetic data; citizen IDs start with the registration category 1-8, juristic IDs with 0."""
    return with_check_digit(str(first_digit) + "".join(str(rng.randrange(10)) for _ in range(11)))


def gregorian_year_problem(year: int, horizon_years: int = 1, today: date | None = None) -> str | None:
    """Why `year` cannot be a Gregorian year of a master record, or None when it can.

    Dates of facts (births, registrations) may reach one year ahead (time zones, year end);
    expiry dates reach `horizon_years` ahead. Beyond that the usual cause is a Buddhist-Era year
    (C.E. + 543) keyed into a Gregorian field, and the reason says so.
    """
    latest = (today or date.today()).year + horizon_years
    if year > latest:
        if EARLIEST_YEAR <= year - BUDDHIST_ERA_OFFSET <= latest:
            return (
                f"year {year} looks like a Buddhist-Era year in a Gregorian field (C.E. {year - BUDDHIST_ERA_OFFSET})"
            )
        return f"year {year} is in the future"
    if year < EARLIEST_YEAR:
        return f"year {year} is before {EARLIEST_YEAR}"
    return None
