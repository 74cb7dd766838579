"""Thai identifier and date rules, against vectors worked out by hand from the published formula."""

from __future__ import annotations

import random
from datetime import date

import pytest

from schemas.identifiers import (
    check_digit,
    gregorian_year_problem,
    is_valid_thai_id,
    random_thai_id,
    thai_id_problem,
    with_check_digit,
)


@pytest.mark.parametrize(
    ("prefix", "expected"),
    [
        # 1*13 + 1*12 + 0 + 1*10 + 7*9 + 0 + 0 + 1*6 + 2*5 + 3*4 + 4*3 + 5*2 = 148; 148 % 11 = 5; 11 - 5 = 6
        ("110170012345", 6),
        ("000000000000", 1),  # sum 0: (11 - 0) % 10 = 1
        ("000000000006", 0),  # sum 12, 12 % 11 = 1: (11 - 1) % 10 = 0
        ("000000000001", 9),  # sum 2: 11 - 2 = 9
    ],
)
def test_check_digit_follows_the_formula(prefix: str, expected: int) -> None:
    assert check_digit(prefix) == expected
    assert is_valid_thai_id(prefix + str(expected))


def test_every_other_last_digit_is_rejected_with_the_expected_one_named() -> None:
    good = with_check_digit("310060098765")
    for digit in "0123456789":
        candidate = good[:12] + digit
        assert is_valid_thai_id(candidate) is (candidate == good)
    wrong = good[:12] + str((int(good[12]) + 1) % 10)
    assert f"expected {good[12]}" in (thai_id_problem(wrong) or "")


@pytest.mark.parametrize(
    "value", ["", "110170012345", "11017001234566", "11017001234a6", "๑๑๐๑๗๐๐๑๒๓๔๕๖", " 1101700123456"]
)
def test_malformed_ids_are_not_13_ascii_digits(value: str) -> None:
    assert not is_valid_thai_id(value)
    assert "not 13 digits" in (thai_id_problem(value) or "")


def test_random_ids_are_valid_and_keep_their_category_digit() -> None:
    rng = random.Random(7)
    for first in (0, 1, 3, 8):
        generated = random_thai_id(rng, first_digit=first)
        assert is_valid_thai_id(generated) and generated[0] == str(first)


def test_buddhist_era_year_is_named_as_such() -> None:
    today = date(2026, 6, 1)
    assert gregorian_year_problem(2026, today=today) is None
    assert gregorian_year_problem(2027, today=today) is None
    problem = gregorian_year_problem(2566, today=today)
    assert problem is not None and "Buddhist-Era" in problem and "2023" in problem
    assert "before 1800" in (gregorian_year_problem(1799, today=today) or "")
    assert "future" in (gregorian_year_problem(3000, today=today) or "")
    assert gregorian_year_problem(2040, horizon_years=20, today=today) is None
