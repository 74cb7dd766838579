"""Unique, realistic-looking identifiers computed from an entity's ordinal, without a lookup table.

An ordinal goes through an affine bijection modulo 10^n, so IDs look scattered yet never collide,
and any registry can compute person i's citizen ID without holding the population in memory.
"""

from __future__ import annotations

import math

from schemas.identifiers import check_digit, with_check_digit


def with_wrong_check_digit(identifier: str) -> str:
    """The same 13-digit ID with a check digit that does not validate (a fault to inject)."""
    return identifier[:12] + str((check_digit(identifier[:12]) + 1) % 10)


class Scrambler:
    """A seeded bijection on 0..modulus-1, so ordinals map to distinct, scattered numbers."""

    def __init__(self, modulus: int, seed: int, salt: int) -> None:
        self.modulus = modulus
        multiplier = (seed * 7_919 + salt * 104_729 + 1_000_003) % modulus or 1
        while math.gcd(multiplier, modulus) != 1:  # coprime multiplier: the affine map is a bijection
            multiplier += 1
        self.multiplier = multiplier
        self.offset = (seed * 2_654_435_761 + salt * 40_503) % modulus

    def __call__(self, ordinal: int) -> int:
        if not 0 <= ordinal < self.modulus:
            raise ValueError(f"ordinal {ordinal} outside 0..{self.modulus - 1}")
        return (ordinal * self.multiplier + self.offset) % self.modulus


def citizen_id(body11: str, born_before_1984: bool) -> str:
    """A citizen ID: type digit (1 born after the 1984 register began, 3 registered then), body, check."""
    return with_check_digit(("3" if born_before_1984 else "1") + body11)


def juristic_id(body8: str) -> str:
    """A juristic-person ID registered at the Bangkok office (0-10-5), with its check digit."""
    return with_check_digit("0105" + body8)
