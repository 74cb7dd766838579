"""Field types and records shared by every dataset's model, carrying the domain rules.

Each rule lives in a type (CitizenId, FactDate, Baht, ...) rather than in each model, so a rule
is stated once and a dataset cannot forget it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, ClassVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, model_validator

from schemas.identifiers import gregorian_year_problem, thai_id_problem

EXPIRY_HORIZON_YEARS = 20
JURISTIC_ID_PREFIX = "0"
ENTITY_KEY_MAX_LENGTH = 64
"""An entity key is a column of the index's primary key (`linkage/tables.py` sizes it by this), so
the contract bounds it: a key the column cannot hold would stop the index on PostgreSQL."""


def _thai_id(value: str) -> str:
    problem = thai_id_problem(value)
    if problem:
        raise ValueError(problem)
    return value


def _year_checker(horizon_years: int) -> Callable[[date], date]:
    def check(value: date) -> date:
        problem = gregorian_year_problem(value.year, horizon_years)
        if problem:
            raise ValueError(problem)
        return value

    return check


def _utc_millis(value: datetime) -> datetime:
    """Timestamps travel as UTC milliseconds; normalising here keeps round trips exact."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("timestamp has no time zone; the wire carries UTC")
    problem = gregorian_year_problem(value.year)
    if problem:
        raise ValueError(problem)
    utc = value.astimezone(UTC)
    return utc.replace(microsecond=utc.microsecond // 1000 * 1000)


def _juristic_id(value: str) -> str:
    """DBD juristic-person IDs start with 0; a citizen ID in a juristic field is a mix-up."""
    _thai_id(value)
    if not value.startswith(JURISTIC_ID_PREFIX):
        raise ValueError(f"{value} is not a juristic-person ID: those start with {JURISTIC_ID_PREFIX}")
    return value


CitizenId = Annotated[str, AfterValidator(_thai_id)]
JuristicId = Annotated[str, AfterValidator(_juristic_id)]
FactDate = Annotated[date, AfterValidator(_year_checker(1))]
ExpiryDate = Annotated[date, AfterValidator(_year_checker(EXPIRY_HORIZON_YEARS))]
UtcMillis = Annotated[datetime, AfterValidator(_utc_millis)]
Baht = Annotated[Decimal, Field(ge=0, max_digits=18, decimal_places=2)]
HouseId = Annotated[str, StringConstraints(pattern=r"^\d{11}$")]
ProvinceCode = Annotated[str, StringConstraints(pattern=r"^\d{2}$")]
Postcode = Annotated[str, StringConstraints(pattern=r"^\d{5}$")]
Text = Annotated[str, StringConstraints(min_length=1, strip_whitespace=False)]
KeyText = Annotated[
    str, StringConstraints(min_length=1, max_length=ENTITY_KEY_MAX_LENGTH, pattern=r"^[^\x00-\x1f\x7f]+$")
]
"""Free text that keys an entity: bounded as the key column is, and without control characters
(PostgreSQL's text cannot hold NUL)."""


class Record(BaseModel):
    """Base of every model: immutable, no fields beyond the schema's."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Payload(Record):
    """A dataset's payload record; knows its Avro name, owner, dataset and how it is keyed."""

    AVRO_NAME: ClassVar[str]
    AGENCY: ClassVar[str]
    DATASET: ClassVar[str]
    CODES: ClassVar[tuple[int, ...]]

    def entity_key(self) -> str:
        raise NotImplementedError

    def citizen_ids(self) -> set[str]:
        return set()

    def juristic_ids(self) -> set[str]:
        return set()


class Sex(StrEnum):
    MALE = "MALE"
    FEMALE = "FEMALE"


class PartyKind(StrEnum):
    CITIZEN = "CITIZEN"
    JURISTIC_PERSON = "JURISTIC_PERSON"


class Address(Record):
    house_number: Text
    village_number: Annotated[int, Field(ge=1, le=99)] | None = None
    street: str | None = None
    subdistrict: Text
    district: Text
    province_code: ProvinceCode
    postcode: Postcode


class PersonName(Record):
    prefix: Text
    first_name: Text
    middle_name: str | None = None
    last_name: Text


class Party(Record):
    kind: PartyKind
    id: CitizenId
    name: Text

    @model_validator(mode="after")
    def _id_fits_kind(self) -> Party:
        if self.kind is PartyKind.JURISTIC_PERSON:
            _juristic_id(self.id)
        return self


def party_ids(parties: Iterable[Party | None], kind: PartyKind) -> set[str]:
    return {p.id for p in parties if p is not None and p.kind is kind}


def require(condition: bool, message: str) -> None:
    """Raise the ValueError pydantic turns into a located validation error."""
    if not condition:
        raise ValueError(message)
