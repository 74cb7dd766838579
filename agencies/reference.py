"""Small built-in tables of real Thai names, places and institutions for the synthetic population.

Built in (not downloaded) so a seed reproduces the same population anywhere. Every name carries its
romanised form (Royal Thai General System), because agencies publish both.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Name:
    th: str
    en: str


@dataclass(frozen=True)
class SubDistrict:
    """One real sub-district with its district, province, postcode and registration office code."""

    province: Name
    province_code: str
    district: Name
    sub_district: Name
    postcode: str
    office_code: str  # four-digit province+district code, the prefix of house IDs registered there


MALE_FIRST_NAMES: tuple[Name, ...] = tuple(
    Name(th, en)
    for th, en in (
        ("สมชาย", "Somchai"),
        ("สมศักดิ์", "Somsak"),
        ("ประเสริฐ", "Prasoet"),
        ("วิชัย", "Wichai"),
        ("สุรชัย", "Surachai"),
        ("ธนากร", "Thanakon"),
        ("ณัฐพล", "Natthaphon"),
        ("กิตติ", "Kitti"),
        ("อนุชา", "Anucha"),
        ("ปรีชา", "Pricha"),
        ("ชัยวัฒน์", "Chaiwat"),
        ("วีระ", "Wira"),
        ("สุทธิพงษ์", "Sutthiphong"),
        ("พงศกร", "Phongsakon"),
        ("ธีรวัฒน์", "Thirawat"),
        ("ศุภชัย", "Suphachai"),
        ("อภิชาติ", "Aphichat"),
        ("ภานุวัฒน์", "Phanuwat"),
        ("จักรพันธ์", "Chakkraphan"),
        ("ธนพล", "Thanaphon"),
        ("บุญชัย", "Bunchai"),
        ("สมบัติ", "Sombat"),
    )
)

FEMALE_FIRST_NAMES: tuple[Name, ...] = tuple(
    Name(th, en)
    for th, en in (
        ("สมหญิง", "Somying"),
        ("มาลี", "Mali"),
        ("สุดารัตน์", "Sudarat"),
        ("วันเพ็ญ", "Wanphen"),
        ("กาญจนา", "Kanchana"),
        ("ปราณี", "Prani"),
        ("นภัสสร", "Naphatsorn"),
        ("อรุณี", "Aruni"),
        ("ศิริพร", "Siriphon"),
        ("พิมพ์ชนก", "Phimchanok"),
        ("สุภาพร", "Suphaphon"),
        ("รัตนา", "Rattana"),
        ("จิราพร", "Chiraphon"),
        ("ณัฐธิดา", "Natthathida"),
        ("กมลวรรณ", "Kamonwan"),
        ("ปวีณา", "Pawina"),
        ("ธิดารัตน์", "Thidarat"),
        ("อัญชลี", "Anchali"),
        ("วรรณา", "Wanna"),
        ("เบญจวรรณ", "Benchawan"),
        ("สุนิสา", "Sunisa"),
        ("พรทิพย์", "Phonthip"),
    )
)

SURNAMES: tuple[Name, ...] = tuple(
    Name(th, en)
    for th, en in (
        ("ศรีสุข", "Sisuk"),
        ("แสงทอง", "Saengthong"),
        ("ใจดี", "Chaidi"),
        ("สุขสวัสดิ์", "Suksawat"),
        ("วงศ์สวัสดิ์", "Wongsawat"),
        ("ทองดี", "Thongdi"),
        ("บุญมา", "Bunma"),
        ("จันทร์เพ็ญ", "Chanphen"),
        ("พรหมมา", "Phromma"),
        ("รุ่งเรือง", "Rungrueang"),
        ("ศรีวงศ์", "Siwong"),
        ("เพชรรัตน์", "Phetcharat"),
        ("สมบูรณ์", "Sombun"),
        ("มั่นคง", "Mankhong"),
        ("ชัยมงคล", "Chaimongkhon"),
        ("ประเสริฐสุข", "Prasoetsuk"),
        ("อินทร์แก้ว", "Inkaeo"),
        ("แก้วมณี", "Kaeomani"),
        ("ทองคำ", "Thongkham"),
        ("กาญจนวงศ์", "Kanchanawong"),
        ("ศักดิ์ศรี", "Saksi"),
        ("นาคสวัสดิ์", "Naksawat"),
        ("บุญเรือง", "Bunrueang"),
        ("สายทอง", "Saithong"),
        ("ปัญญาดี", "Panyadi"),
        ("ศรีประเสริฐ", "Siprasoet"),
        ("วงษ์ใหญ่", "Wongyai"),
        ("จันทร์แก้ว", "Chankaeo"),
        ("สุวรรณรัตน์", "Suwannarat"),
        ("พูลสวัสดิ์", "Phunsawat"),
        ("เจริญผล", "Charoenphon"),
        ("ทองมา", "Thongma"),
    )
)

# Titles by sex and adulthood (เด็กชาย/เด็กหญิง under 15, นาง for a married woman).
TITLE_BOY = Name("เด็กชาย", "Master")
TITLE_GIRL = Name("เด็กหญิง", "Miss")
TITLE_MR = Name("นาย", "Mr.")
TITLE_MISS = Name("นางสาว", "Miss")
TITLE_MRS = Name("นาง", "Mrs.")

_PLACES: tuple[tuple[str, str, str, str, str, str, str, str], ...] = (
    (
        "กรุงเทพมหานคร",
        "Bangkok",
        "10",
        "เขตพระนคร",
        "Phra Nakhon",
        "พระบรมมหาราชวัง",
        "Phra Borom Maha Ratchawang",
        "10200",
    ),
    ("กรุงเทพมหานคร", "Bangkok", "10", "เขตบางรัก", "Bang Rak", "สีลม", "Si Lom", "10500"),
    ("กรุงเทพมหานคร", "Bangkok", "10", "เขตปทุมวัน", "Pathum Wan", "ลุมพินี", "Lumphini", "10330"),
    ("กรุงเทพมหานคร", "Bangkok", "10", "เขตจตุจักร", "Chatuchak", "จตุจักร", "Chatuchak", "10900"),
    ("กรุงเทพมหานคร", "Bangkok", "10", "เขตบางกะปิ", "Bang Kapi", "หัวหมาก", "Hua Mak", "10240"),
    ("นนทบุรี", "Nonthaburi", "12", "เมืองนนทบุรี", "Mueang Nonthaburi", "บางกระสอ", "Bang Kraso", "11000"),
    ("นนทบุรี", "Nonthaburi", "12", "ปากเกร็ด", "Pak Kret", "ปากเกร็ด", "Pak Kret", "11120"),
    ("ชลบุรี", "Chon Buri", "20", "เมืองชลบุรี", "Mueang Chon Buri", "บางปลาสร้อย", "Bang Pla Soi", "20000"),
    ("ชลบุรี", "Chon Buri", "20", "บางละมุง", "Bang Lamung", "หนองปรือ", "Nong Prue", "20150"),
    ("ชลบุรี", "Chon Buri", "20", "ศรีราชา", "Si Racha", "ศรีราชา", "Si Racha", "20110"),
    (
        "นครราชสีมา",
        "Nakhon Ratchasima",
        "30",
        "เมืองนครราชสีมา",
        "Mueang Nakhon Ratchasima",
        "ในเมือง",
        "Nai Mueang",
        "30000",
    ),
    ("นครราชสีมา", "Nakhon Ratchasima", "30", "ปากช่อง", "Pak Chong", "ปากช่อง", "Pak Chong", "30130"),
    ("ขอนแก่น", "Khon Kaen", "40", "เมืองขอนแก่น", "Mueang Khon Kaen", "ในเมือง", "Nai Mueang", "40000"),
    ("ขอนแก่น", "Khon Kaen", "40", "ชุมแพ", "Chum Phae", "ชุมแพ", "Chum Phae", "40130"),
    ("อุดรธานี", "Udon Thani", "41", "เมืองอุดรธานี", "Mueang Udon Thani", "หมากแข้ง", "Mak Khaeng", "41000"),
    ("เชียงใหม่", "Chiang Mai", "50", "เมืองเชียงใหม่", "Mueang Chiang Mai", "ศรีภูมิ", "Si Phum", "50200"),
    ("เชียงใหม่", "Chiang Mai", "50", "เมืองเชียงใหม่", "Mueang Chiang Mai", "ช้างคลาน", "Chang Khlan", "50100"),
    ("เชียงใหม่", "Chiang Mai", "50", "สันทราย", "San Sai", "หนองหาร", "Nong Han", "50290"),
    ("เชียงใหม่", "Chiang Mai", "50", "หางดง", "Hang Dong", "หางดง", "Hang Dong", "50230"),
    ("ภูเก็ต", "Phuket", "83", "เมืองภูเก็ต", "Mueang Phuket", "ตลาดใหญ่", "Talat Yai", "83000"),
    ("ภูเก็ต", "Phuket", "83", "กะทู้", "Kathu", "ป่าตอง", "Patong", "83150"),
    ("ภูเก็ต", "Phuket", "83", "ถลาง", "Thalang", "เทพกระษัตรี", "Thep Krasattri", "83110"),
    ("สุราษฎร์ธานี", "Surat Thani", "84", "เมืองสุราษฎร์ธานี", "Mueang Surat Thani", "ตลาด", "Talat", "84000"),
    ("สุราษฎร์ธานี", "Surat Thani", "84", "เกาะสมุย", "Ko Samui", "บ่อผุด", "Bo Phut", "84320"),
    ("สงขลา", "Songkhla", "90", "หาดใหญ่", "Hat Yai", "หาดใหญ่", "Hat Yai", "90110"),
    ("สงขลา", "Songkhla", "90", "เมืองสงขลา", "Mueang Songkhla", "บ่อยาง", "Bo Yang", "90000"),
)


def _sub_districts() -> tuple[SubDistrict, ...]:
    """Number the districts of each province in table order, as registration office codes."""
    districts: dict[str, list[str]] = {}
    out = []
    for p_th, p_en, code, d_th, d_en, s_th, s_en, postcode in _PLACES:
        seen = districts.setdefault(code, [])
        if d_en not in seen:
            seen.append(d_en)
        office = f"{code}{seen.index(d_en) + 1:02d}"
        out.append(SubDistrict(Name(p_th, p_en), code, Name(d_th, d_en), Name(s_th, s_en), postcode, office))
    return tuple(out)


SUB_DISTRICTS: tuple[SubDistrict, ...] = _sub_districts()

# Relative population weights of the sub-districts above (Bangkok and the big cities dominate).
SUB_DISTRICT_WEIGHTS: tuple[int, ...] = (
    5,
    5,
    5,
    6,
    6,
    4,
    4,
    3,
    3,
    3,
    4,
    2,
    3,
    2,
    3,
    3,
    2,
    2,
    2,
    2,
    1,
    1,
    2,
    1,
    3,
    2,
)

COMPANY_WORDS: tuple[Name, ...] = tuple(
    Name(th, en)
    for th, en in (
        ("สยาม", "Siam"),
        ("ไทย", "Thai"),
        ("รุ่งเรือง", "Rungrueang"),
        ("ศรีสยาม", "Si Siam"),
        ("เจริญ", "Charoen"),
        ("มั่งมี", "Mangmi"),
        ("ทองไทย", "Thong Thai"),
        ("พัฒนา", "Phatthana"),
        ("อุดม", "Udom"),
        ("สุขใจ", "Sukchai"),
        ("อรุณ", "Arun"),
        ("ล้านนา", "Lanna"),
    )
)

BUSINESS_LINES: tuple[tuple[Name, str], ...] = tuple(
    (Name(th, en), tsic)
    for th, en, tsic in (
        ("เทรดดิ้ง", "Trading", "46900"),
        ("คอนสตรัคชั่น", "Construction", "41001"),
        ("ฟู้ด", "Food", "10799"),
        ("เทคโนโลยี", "Technology", "62011"),
        ("ขนส่ง", "Transport", "49332"),
        ("พร็อพเพอร์ตี้", "Property", "68101"),
        ("การเกษตร", "Agriculture", "01110"),
        ("ออโต้", "Auto", "45101"),
        ("เอ็นจิเนียริ่ง", "Engineering", "71109"),
    )
)

# Finance lines: these juristic persons lend, so they appear as mortgagees and hire-purchase owners.
FINANCE_LINE: tuple[Name, str] = (Name("ลิสซิ่ง", "Leasing"), "64910")

# Legal form, Thai name pattern, English name pattern, share of active juristic persons.
JURISTIC_TYPES: tuple[tuple[str, str, str, int], ...] = (
    ("LIMITED_COMPANY", "บริษัท {} จำกัด", "{} Co., Ltd.", 70),
    ("LIMITED_PARTNERSHIP", "ห้างหุ้นส่วนจำกัด {}", "{} Limited Partnership", 28),
    ("PUBLIC_LIMITED_COMPANY", "บริษัท {} จำกัด (มหาชน)", "{} Public Co., Ltd.", 2),
)

SHOP_LINES: tuple[Name, ...] = tuple(
    Name(th, en)
    for th, en in (
        ("ร้านขายของชำ", "Grocery"),
        ("ร้านอาหาร", "Restaurant"),
        ("ร้านซ่อมรถ", "Garage"),
        ("ร้านเสริมสวย", "Beauty Salon"),
        ("ร้านกาแฟ", "Coffee Shop"),
        ("ร้านวัสดุก่อสร้าง", "Hardware Store"),
    )
)

# Thai consonants used in vehicle plates (the letter pairs of กข 1234).
PLATE_LETTERS: str = "กขคฆงจฉชซญฐฒณดตถทธนบปผพฟภมยรลวศษสหฬอฮ"

# Registration class (Ror.Yor. 1 sedan, 2 microbus, 3 pickup, 12 motorcycle), share of the fleet.
VEHICLE_CLASSES: tuple[tuple[str, int], ...] = (("SEDAN", 26), ("PICKUP", 16), ("MOTORCYCLE", 55), ("MICROBUS", 3))

# Makers assembling in Thailand: world manufacturer identifier, make, class -> (model, engine cc).
MAKERS: tuple[tuple[str, str, dict[str, tuple[str, int]]], ...] = (
    ("MR0", "Toyota", {"SEDAN": ("Yaris Ativ", 1200), "PICKUP": ("Hilux Revo", 2400), "MICROBUS": ("Commuter", 2800)}),
    ("MRH", "Honda", {"SEDAN": ("City", 1000)}),
    ("MPA", "Isuzu", {"PICKUP": ("D-Max", 1900)}),
    ("MLH", "Honda", {"MOTORCYCLE": ("Wave 110i", 110)}),
    ("MH3", "Yamaha", {"MOTORCYCLE": ("Fino", 125)}),
    ("MM8", "Mazda", {"SEDAN": ("Mazda2", 1300), "PICKUP": ("BT-50", 1900)}),
)

COLOURS: tuple[Name, ...] = tuple(
    Name(th, en)
    for th, en in (
        ("ขาว", "white"),
        ("ดำ", "black"),
        ("เทา", "grey"),
        ("แดง", "red"),
        ("น้ำเงิน", "blue"),
        ("บรอนซ์เงิน", "silver"),
    )
)

# Licence class and share of licences issued.
LICENCE_CLASSES: tuple[tuple[str, int], ...] = (("PRIVATE_CAR", 45), ("PRIVATE_MOTORCYCLE", 50), ("PUBLIC_CAR", 5))

CONDOMINIUMS: tuple[Name, ...] = tuple(
    Name(th, en)
    for th, en in (
        ("ลุมพินี วิลล์", "Lumpini Ville"),
        ("ศุภาลัย ซิตี้", "Supalai City"),
        ("ไอดีโอ", "Ideo"),
        ("เดอะ เบส", "The Base"),
        ("แชปเตอร์", "Chapter"),
        ("ดิ เอ็กซ์โซ", "The Excel"),
    )
)
