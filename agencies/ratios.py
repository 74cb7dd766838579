"""How big each registry is for a given number of persons, scaled from the real Thai registries.

The real registries (see ../shared/domain.md): about 66 million persons, about 0.9 million active
juristic persons, about 44 million registered vehicles and tens of millions of title deeds. Per
1,000 persons this simulation keeps:

| registry                          | per 1,000 persons | real-world basis                           |
|-----------------------------------|-------------------|--------------------------------------------|
| houses (house registrations)      | ~344              | households of 1-6 persons, mean ~2.9       |
| juristic persons (DBD)            | 14                | 0.9 M / 66 M                               |
| commercial registrations (DBD)    | 30                | ~2 M sole traders registered (estimate)    |
| title deeds + condominium titles  | 450 (12% condo)   | ~30 M titles / 66 M ("tens of millions")   |
| vehicles (DLT)                    | 660 (55% motorcycles) | 44 M / 66 M                            |
| driving licences (DLT)            | 500               | ~33 M licences / 66 M (estimate)           |

Marriages are not sized by a ratio (they come to ~213 per 1,000): every household whose second
member is the head's spouse has one registered marriage.
"""

from __future__ import annotations

from dataclasses import dataclass

from agencies.errors import SimulationError

MIN_PERSONS = 1_000
MAX_PERSONS = 1_000_000

JURISTIC_PER_1000 = 14
COMMERCIAL_PER_1000 = 30
TITLE_DEEDS_PER_1000 = 450
CONDOMINIUM_SHARE = 0.12
VEHICLES_PER_1000 = 660
LICENCES_PER_1000 = 500
# One juristic person in twenty is a bank or leasing company: the mortgagees and hire-purchase owners.
FINANCE_SHARE = 0.05


@dataclass(frozen=True)
class Sizes:
    persons: int
    juristic_persons: int
    finance_companies: int
    commercial_registrations: int
    title_deeds: int
    vehicles: int
    driving_licences: int


def sizes(persons: int) -> Sizes:
    """Registry sizes for `persons`, refusing a scale the generator is not built for."""
    if not MIN_PERSONS <= persons <= MAX_PERSONS:
        raise SimulationError(
            f"scale {persons:,} persons is out of range",
            f"choose between {MIN_PERSONS:,} and {MAX_PERSONS:,}",
        )
    juristic = persons * JURISTIC_PER_1000 // 1000
    return Sizes(
        persons=persons,
        juristic_persons=juristic,
        finance_companies=max(1, int(juristic * FINANCE_SHARE)),
        commercial_registrations=persons * COMMERCIAL_PER_1000 // 1000,
        title_deeds=persons * TITLE_DEEDS_PER_1000 // 1000,
        vehicles=persons * VEHICLES_PER_1000 // 1000,
        driving_licences=persons * LICENCES_PER_1000 // 1000,
    )
