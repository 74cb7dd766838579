"""Department of Lands (DOL) dataset 32: land title deeds and condominium unit titles."""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum
from fractions import Fraction
from typing import Annotated

from pydantic import Field, model_validator

from schemas.models.common import (
    ENTITY_KEY_MAX_LENGTH,
    Baht,
    FactDate,
    Party,
    PartyKind,
    Payload,
    ProvinceCode,
    Record,
    Text,
    party_ids,
    require,
)
from schemas.models.envelope import event_model


class TitleKind(StrEnum):
    LAND_TITLE_DEED = "LAND_TITLE_DEED"
    CONDOMINIUM_UNIT_TITLE = "CONDOMINIUM_UNIT_TITLE"


class Parcel(Record):
    parcel_number: Text
    survey_page: str | None = None
    condominium_name: str | None = None
    subdistrict: Text
    district: Text


class LandArea(Record):
    """Rai-ngan-square wah; 1 rai = 4 ngan = 400 square wah, so ngan < 4 and square wah < 100."""

    rai: Annotated[int, Field(ge=0)]
    ngan: Annotated[int, Field(ge=0, le=3)]
    square_wah: Annotated[Decimal, Field(ge=0, lt=100, max_digits=5, decimal_places=1)]


class Ownership(Record):
    owner: Party
    share_numerator: Annotated[int, Field(gt=0)]
    share_denominator: Annotated[int, Field(gt=0)]

    @model_validator(mode="after")
    def _proper_share(self) -> Ownership:
        require(self.share_numerator <= self.share_denominator, "a share is more than the whole")
        return self


class Mortgage(Record):
    mortgagee: Party
    amount: Baht
    registered_on: FactDate


class TransferType(StrEnum):
    SALE = "SALE"
    GIFT = "GIFT"
    INHERITANCE = "INHERITANCE"
    EXCHANGE = "EXCHANGE"
    COURT_ORDER = "COURT_ORDER"


class Transfer(Record):
    transfer_type: TransferType
    registered_on: FactDate
    declared_price: Baht | None = None


class TitleDeed(Payload):
    AVRO_NAME = "th.go.gdx.dol.TitleDeed"
    AGENCY, DATASET, CODES = "dol", "title-deed", (32,)

    kind: TitleKind
    province_code: ProvinceCode
    deed_number: Annotated[str, Field(pattern=r"^[0-9A-Za-z/]+$", max_length=ENTITY_KEY_MAX_LENGTH - len("00-"))]
    parcel: Parcel
    land_area: LandArea | None = None
    unit_area_sqm: Annotated[Decimal, Field(gt=0, max_digits=9, decimal_places=2)] | None = None
    owners: list[Ownership]
    mortgages: list[Mortgage]
    last_transfer: Transfer | None = None

    @model_validator(mode="after")
    def _consistent_title(self) -> TitleDeed:
        if self.kind is TitleKind.LAND_TITLE_DEED:
            require(
                self.land_area is not None and self.unit_area_sqm is None,
                "a land title has a land_area and no unit_area_sqm",
            )
        else:
            require(
                self.unit_area_sqm is not None and self.land_area is None,
                "a unit title has a unit_area_sqm and no land_area",
            )
            require(bool(self.parcel.condominium_name), "a unit title names its condominium")
        require(bool(self.owners), "a title has at least one owner")
        total = sum((Fraction(o.share_numerator, o.share_denominator) for o in self.owners), Fraction(0))
        require(total == 1, f"owners' shares add up to {total}, not 1")
        ids = [o.owner.id for o in self.owners]
        require(len(ids) == len(set(ids)), "an owner is listed twice")
        return self

    def entity_key(self) -> str:
        return f"{self.province_code}-{self.deed_number}"

    def _parties(self) -> list[Party]:
        return [o.owner for o in self.owners] + [m.mortgagee for m in self.mortgages]

    def citizen_ids(self) -> set[str]:
        return party_ids(self._parties(), PartyKind.CITIZEN)

    def juristic_ids(self) -> set[str]:
        return party_ids(self._parties(), PartyKind.JURISTIC_PERSON)


TitleDeedEvent = event_model(TitleDeed)
