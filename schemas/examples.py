"""One typical, valid event per dataset: the message examples of the AsyncAPI document, and the
reference inputs of the codec benchmark and the round-trip tests.

Identifiers are fixed (with correct check digits) so the examples are stable across runs.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from uuid import NAMESPACE_URL, uuid5

from schemas.identifiers import with_check_digit
from schemas.models import EVENT_MODELS
from schemas.models.common import Address, Party, PartyKind, Payload, PersonName, Sex
from schemas.models.dbd import (
    CommercialRegistration,
    CommercialStatus,
    Director,
    JuristicPerson,
    JuristicStatus,
    JuristicType,
    Shareholder,
)
from schemas.models.dlt import DrivingLicence, LicenceClass, LicenceStatus, Plate, Vehicle, VehicleClass, VehicleStatus
from schemas.models.dol import LandArea, Mortgage, Ownership, Parcel, TitleDeed, TitleKind, Transfer, TransferType
from schemas.models.dopa import (
    Birth,
    CivilRegistration,
    Death,
    House,
    HouseType,
    IdCard,
    MaritalEvent,
    Marriage,
    NameChange,
    NameChangeKind,
    Person,
    PersonStatus,
    RegistrationAct,
    Residence,
    ResidentRole,
)
from schemas.models.envelope import Agency, ChangeEvent, ChangeType, References

SOMCHAI = with_check_digit("110170012345")
MALEE = with_check_digit("310060098765")
NIRAN = with_check_digit("120990045678")
SIAM_TRADING = with_check_digit("010555501234")
KRUNG_BANK = with_check_digit("010753600010")
HOUSE = "10300123456"

_SOMCHAI_NAME = PersonName(prefix="นาย", first_name="สมชาย", last_name="ใจดี")
_MALEE_NAME = PersonName(prefix="นาง", first_name="มาลี", last_name="ใจดี")
_ADDRESS = Address(
    house_number="99/12",
    village_number=None,
    street="ซอยสุขุมวิท 21 ถนนสุขุมวิท",
    subdistrict="คลองเตยเหนือ",
    district="วัฒนา",
    province_code="10",
    postcode="10110",
)


def _payloads() -> tuple[Payload, ...]:
    return (
        Person(
            citizen_id=SOMCHAI,
            name=_SOMCHAI_NAME,
            name_en=PersonName(prefix="Mr.", first_name="Somchai", last_name="Jaidee"),
            sex=Sex.MALE,
            date_of_birth=date(1985, 3, 14),
            nationality="THA",
            house_id=HOUSE,
            card=IdCard(
                card_request_number="1017-02-03141234", issued_on=date(2022, 3, 14), expires_on=date(2030, 3, 13)
            ),
            status=PersonStatus.ACTIVE,
        ),
        House(
            house_id=HOUSE,
            address=_ADDRESS,
            house_type=HouseType.TOWNHOUSE,
            householder_citizen_id=SOMCHAI,
            registered_on=date(2004, 6, 1),
        ),
        Residence(citizen_id=MALEE, house_id=HOUSE, role=ResidentRole.RESIDENT, moved_in_on=date(2012, 11, 20)),
        CivilRegistration(
            registration_number="1030-2024-000815",
            citizen_id=MALEE,
            act=RegistrationAct.MOVE_IN,
            house_id=HOUSE,
            registered_on=date(2024, 2, 5),
            registrar_office="สำนักงานเขตวัฒนา",
        ),
        Birth(
            certificate_number="1030-2023-004211",
            child_citizen_id=NIRAN,
            child_name=PersonName(prefix="เด็กชาย", first_name="นิรันดร์", last_name="ใจดี"),
            sex=Sex.MALE,
            date_of_birth=date(2023, 7, 2),
            birth_province_code="10",
            mother_citizen_id=MALEE,
            father_citizen_id=SOMCHAI,
            registered_on=date(2023, 7, 10),
        ),
        Death(
            certificate_number="1030-2024-000102",
            citizen_id=with_check_digit("310060011111"),
            date_of_death=date(2024, 1, 9),
            death_province_code="10",
            cause="heart failure",
            informant_citizen_id=SOMCHAI,
            registered_on=date(2024, 1, 10),
        ),
        Marriage(
            registration_number="1030-2011-000377",
            event=MaritalEvent.MARRIAGE,
            spouse_a_citizen_id=SOMCHAI,
            spouse_b_citizen_id=MALEE,
            registered_on=date(2011, 2, 14),
            registrar_office="สำนักงานเขตวัฒนา",
        ),
        NameChange(
            certificate_number="1030-2011-ช5-0042",
            citizen_id=MALEE,
            kind=NameChangeKind.SURNAME,
            previous_name=PersonName(prefix="นางสาว", first_name="มาลี", last_name="รักไทย"),
            new_name=_MALEE_NAME,
            effective_on=date(2011, 3, 1),
        ),
        JuristicPerson(
            juristic_id=SIAM_TRADING,
            name_th="บริษัท สยามเทรดดิ้ง จำกัด",
            name_en="Siam Trading Co., Ltd.",
            juristic_type=JuristicType.LIMITED_COMPANY,
            status=JuristicStatus.ACTIVE,
            registered_on=date(2012, 5, 8),
            registered_capital=Decimal("5000000.00"),
            objectives="ค้าส่งเครื่องใช้ไฟฟ้า",
            head_office=_ADDRESS,
            directors=[Director(citizen_id=SOMCHAI, name=_SOMCHAI_NAME, authorised_signatory=True)],
            partners=[],
            shareholders=[
                Shareholder(holder=Party(kind=PartyKind.CITIZEN, id=SOMCHAI, name="สมชาย ใจดี"), shares=30000),
                Shareholder(holder=Party(kind=PartyKind.CITIZEN, id=MALEE, name="มาลี ใจดี"), shares=19999),
                Shareholder(
                    holder=Party(kind=PartyKind.JURISTIC_PERSON, id=KRUNG_BANK, name="ธนาคารกรุงสยาม จำกัด (มหาชน)"),
                    shares=1,
                ),
            ],
        ),
        CommercialRegistration(
            registration_number="1030-2015-001234",
            owner=Party(kind=PartyKind.CITIZEN, id=MALEE, name="มาลี ใจดี"),
            trade_name="ร้านมาลีขนมไทย",
            business_category="10712",
            business_address=_ADDRESS,
            capital=Decimal("200000.00"),
            registered_on=date(2015, 9, 1),
            status=CommercialStatus.ACTIVE,
        ),
        TitleDeed(
            kind=TitleKind.LAND_TITLE_DEED,
            province_code="12",
            deed_number="45872",
            parcel=Parcel(parcel_number="118", survey_page="4712", subdistrict="บางกระสอ", district="เมืองนนทบุรี"),
            land_area=LandArea(rai=0, ngan=1, square_wah=Decimal("25.5")),
            owners=[
                Ownership(
                    owner=Party(kind=PartyKind.CITIZEN, id=SOMCHAI, name="สมชาย ใจดี"),
                    share_numerator=1,
                    share_denominator=2,
                ),
                Ownership(
                    owner=Party(kind=PartyKind.CITIZEN, id=MALEE, name="มาลี ใจดี"),
                    share_numerator=1,
                    share_denominator=2,
                ),
            ],
            mortgages=[
                Mortgage(
                    mortgagee=Party(kind=PartyKind.JURISTIC_PERSON, id=KRUNG_BANK, name="ธนาคารกรุงสยาม จำกัด (มหาชน)"),
                    amount=Decimal("2500000.00"),
                    registered_on=date(2019, 4, 3),
                ),
            ],
            last_transfer=Transfer(
                transfer_type=TransferType.SALE, registered_on=date(2019, 4, 3), declared_price=Decimal("3850000.00")
            ),
        ),
        Vehicle(
            chassis_number="MR0FZ29G201234567",
            plate=Plate(prefix="1กข", number=1234, province_code="10"),
            vehicle_class=VehicleClass.PICKUP,
            make="TOYOTA",
            model="HILUX REVO",
            colour="ขาว",
            engine_cc=2393,
            first_registered_on=date(2021, 8, 17),
            owner=Party(kind=PartyKind.JURISTIC_PERSON, id=KRUNG_BANK, name="ธนาคารกรุงสยาม จำกัด (มหาชน)"),
            possessor=Party(kind=PartyKind.CITIZEN, id=SOMCHAI, name="สมชาย ใจดี"),
            status=VehicleStatus.ACTIVE,
            engine_number="2GD-C123456",
        ),
        DrivingLicence(
            licence_number="63001234",
            citizen_id=SOMCHAI,
            licence_class=LicenceClass.PRIVATE_CAR,
            issued_on=date(2020, 5, 4),
            expires_on=date(2025, 5, 4),
            status=LicenceStatus.VALID,
        ),
    )


def example_event(payload: Payload, version: int = 3) -> ChangeEvent:
    """A typical UPDATE of `payload`, with the envelope filled in consistently."""
    model = EVENT_MODELS[payload.AVRO_NAME + "Event"]
    key = payload.entity_key()
    return model(
        event_id=uuid5(NAMESPACE_URL, f"gdx:{payload.AVRO_NAME}:{key}:{version}"),
        dataset_code=payload.CODES[0],
        source_agency=Agency(payload.AGENCY.upper()),
        entity_key=key,
        entity_version=version,
        change_type=ChangeType.UPDATE,
        source_time=datetime(2024, 6, 1, 9, 30, 0, 125000, tzinfo=UTC),
        published_time=datetime(2024, 6, 1, 9, 30, 0, 412000, tzinfo=UTC),
        trace_id="4bf92f3577b34da6a3ce929d0e0e4736",
        references=References(citizen_ids=sorted(payload.citizen_ids()), juristic_ids=sorted(payload.juristic_ids())),
        payload=payload,
    )


def example_events() -> dict[str, ChangeEvent]:
    """Event schema name -> a typical event of that dataset."""
    events = (example_event(p) for p in _payloads())
    return {type(e).avro_name(): e for e in events}
