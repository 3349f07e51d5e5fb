"""Contract §3 paths: the Rust program's examples, its text rules, and path safety."""

from __future__ import annotations

import datetime
import logging
import re
import tracemalloc

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from oxidicom.storage.events import InstanceTags
from oxidicom.storage.layout import (
    NAME_MAX,
    BadStudyDateError,
    MissingTagError,
    hash7,
    instance_path,
    pacs_name,
    pad_number,
    parse_study_date,
    safe_component,
    sanitize,
)

SAG_MPRAGE = InstanceTags(
    PatientID="1449c1d ",
    PatientName="anonymized",
    PatientBirthDate="20090701",
    StudyDescription="MR-Brain w/o Contrast ",
    AccessionNumber="98edede8b2",
    StudyDate="20130308",
    StudyInstanceUID="1.2.840.113845.11.1000000001951524609.20200705182951.2689481\0",
    SeriesNumber="5 ",
    SeriesDescription="SAG MPRAGE 220 FOV ",
    SeriesInstanceUID="1.3.12.2.1107.5.2.19.45152.2013030808061520200285270.0.0.0",
    InstanceNumber="97",
    SOPInstanceUID="1.3.12.2.1107.5.2.19.45152.2013030808105190943789491\0",
)

JANE_DOE = InstanceTags(
    PatientID="02",
    PatientName="Jane Doe",
    PatientBirthDate="19660101",
    StudyDescription="Hanke_Stadler^0024_transrep",
    StudyDate="20130717",
    StudyInstanceUID="1.2.826.0.1.3680043.2.1143.2592092611698916978113112155415165916",
    SeriesNumber="401",
    SeriesDescription="anat-T1w",
    SeriesInstanceUID="1.2.826.0.1.3680043.2.1143.515404396022363061013111326823367652\0",
    InstanceNumber="1 ",
    SOPInstanceUID="1.2.826.0.1.3680043.2.1143.1590429688519720198888333603882344634\0",
)


def test_contract_example_sag_mprage() -> None:
    where = instance_path("OXITESTORTHANC", SAG_MPRAGE)
    assert where.series_folder == (
        "SERVICES/PACS/OXITESTORTHANC/1449c1d-anonymized-20090701/"
        "MR-Brain_w_o_Contrast-98edede8b2-20130308/00005-SAG_MPRAGE_220_FOV-a27cf06"
    )
    assert where.file_name == "0097-1.3.12.2.1107.5.2.19.45152.2013030808105190943789491.dcm"
    assert where.study_date == datetime.date(2013, 3, 8)


def test_contract_example_jane_doe() -> None:
    where = instance_path("OXITESTORTHANC", JANE_DOE)
    assert where.file_path == (
        "SERVICES/PACS/OXITESTORTHANC/02-Jane_Doe-19660101/"
        "Hanke_Stadler_0024_transrep-AccessionNumber-20130717/00401-anat-T1w-661b8fc/"
        "0001-1.2.826.0.1.3680043.2.1143.1590429688519720198888333603882344634.dcm"
    )


def test_missing_optional_values_become_keywords_or_nothing() -> None:
    tags = InstanceTags(
        PatientID="p",
        StudyDate="20200101",
        StudyInstanceUID="1.2",
        SeriesInstanceUID="1.3.12.2.1107.5.2.19.45152.2013030808061520200285270.0.0.0",
        SOPInstanceUID="1.4",
    )
    where = instance_path("AET", tags)
    assert where.file_path == (
        "SERVICES/PACS/AET/p--/StudyDescription-AccessionNumber-20200101/"
        "SeriesNumber-SeriesDescription-a27cf06/InstanceNumber-1.4.dcm"
    )


def test_present_but_empty_values_stay_empty() -> None:
    tags = attrs.evolve(
        JANE_DOE, PatientID="", StudyDescription=" ", AccessionNumber="", SeriesNumber=""
    )
    where = instance_path("AET", tags)
    assert where.series_folder == (
        "SERVICES/PACS/AET/-Jane_Doe-19660101/--20130717/00000-anat-T1w-661b8fc"
    )


@pytest.mark.parametrize(
    "keyword", ["StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "PatientID", "StudyDate"]
)
def test_missing_required_tag(keyword: str) -> None:
    with pytest.raises(MissingTagError, match=f"^missing required tag: {keyword}$") as caught:
        instance_path("AET", attrs.evolve(JANE_DOE, **{keyword: None}))
    assert caught.value.keyword == keyword


def test_the_first_missing_required_tag_is_reported() -> None:
    with pytest.raises(MissingTagError, match="StudyInstanceUID"):
        instance_path("AET", InstanceTags())


def test_bad_study_date_is_rejected() -> None:
    with pytest.raises(BadStudyDateError, match="invalid StudyDate: '2013'"):
        instance_path("AET", attrs.evolve(JANE_DOE, StudyDate="2013"))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("MR-Brain w/o Contrast", "MR-Brain_w_o_Contrast"),
        ("Hanke_Stadler^0024_transrep", "Hanke_Stadler_0024_transrep"),
        ("  a  b \t", "a_b"),
        ("a\0b\0", "ab"),
        ("1.2.3\0", "1.2.3"),
        ("Ünïcode^Näme", "_n_code_N_me"),
        ("../../etc/passwd", ".._.._etc_passwd"),
        ("\u3000x\u2003", "x"),
        # Rust's trim keeps U+001C, which Python's str.strip() would remove.
        ("\x1cX", "_X"),
        ("", ""),
    ],
)
def test_sanitize(text: str, expected: str) -> None:
    assert sanitize(text) == expected


@pytest.mark.parametrize(
    ("text", "width", "expected"),
    [
        ("5", 5, "00005"),
        (" 007 ", 5, "00007"),
        ("ab", 5, "000ab"),
        ("+5", 5, "00005"),
        ("-5", 5, "000-5"),
        ("1.5", 4, "01.5"),
        ("", 4, "0000"),
        ("5\0", 4, "0005"),
        ("a b", 5, "00a_b"),
        ("4294967295", 5, "4294967295"),
        ("004294967296", 5, "004294967296"),
        ("\uff15", 4, "000_"),  # a fullwidth digit is not a Rust u32
        ("123456", 4, "123456"),
    ],
)
def test_pad_number(text: str, width: int, expected: str) -> None:
    assert pad_number(text, width) == expected


@pytest.mark.parametrize(
    "uid",
    [
        "1.3.12.2.1107.5.2.19.45152.2013030808061520200285270.0.0.0",
        "1.3.12.2.1107.5.2.19.45152.2013030808061520200285270.0.0.0\0",
        " 1.3.12.2.1107.5.2.19.45152.2013030808061520200285270.0.0.0 ",
    ],
)
def test_hash7_ignores_padding(uid: str) -> None:
    assert hash7(uid) == "a27cf06"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("20130308", datetime.date(2013, 3, 8)),
        (" 20130308\0", datetime.date(2013, 3, 8)),
        ("19000101", datetime.date(1900, 1, 1)),
    ],
)
def test_parse_study_date(text: str, expected: datetime.date) -> None:
    assert parse_study_date(text) == expected


def test_dashed_study_date_is_accepted_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="oxidicom.storage.layout"):
        assert parse_study_date("2013-03-08") == datetime.date(2013, 3, 8)
    assert "2013-03-08" in caplog.text
    where = instance_path("AET", attrs.evolve(JANE_DOE, StudyDate="2013-03-08"))
    assert "/Hanke_Stadler_0024_transrep-AccessionNumber-2013-03-08/" in where.series_folder


def test_a_dashed_study_date_is_reported_every_time(caplog: pytest.LogCaptureFixture) -> None:
    # Parsed dates are cached per series; the warning is per instance all the same.
    with caplog.at_level(logging.WARNING, logger="oxidicom.storage.layout"):
        for _ in range(3):
            assert parse_study_date("2014-03-08") == datetime.date(2014, 3, 8)
    assert caplog.text.count("2014-03-08") == 3


def test_a_study_date_with_much_padding_is_still_a_date() -> None:
    assert parse_study_date("20130308" + " \0" * 5000) == datetime.date(2013, 3, 8)


def test_huge_values_are_not_kept_after_the_path_is_made() -> None:
    # Series folders are cached (they repeat for every instance of a series), but values
    # of up to 64 KiB from a peer must not turn the cache into hundreds of MB.
    description = "y" * 60_000
    tracemalloc.start()
    try:
        before, _ = tracemalloc.get_traced_memory()
        for number in range(40):
            tags = attrs.evolve(
                JANE_DOE,
                StudyDescription=description,
                StudyDate="20130717" + " " * 50_000,
                SeriesInstanceUID=f"1.2.3.{number}",
            )
            instance_path("AET", tags)
            del tags
        after, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert after - before < 1_000_000  # 40 series of 110 KB each would be 4.4 MB


@pytest.mark.parametrize(
    "text",
    [
        "",
        "2013",
        "20130230",
        "2013030",
        "201303081",
        "2013/03/08",
        "13-03-08",
        "\uff12\uff10\uff11\uff130308",
    ],
)
def test_invalid_study_dates(text: str) -> None:
    with pytest.raises(BadStudyDateError):
        parse_study_date(text)


@pytest.mark.parametrize(
    ("aet", "expected"),
    [
        ("OXITESTORTHANC ", "OXITESTORTHANC"),
        ("", "_"),
        ("  ", "_"),
        (".", "_"),
        ("..", "__"),
        (" .. ", "__"),
        ("...", "..."),
        ("MY PACS/1", "MY_PACS_1"),
    ],
)
def test_pacs_name(aet: str, expected: str) -> None:
    assert pacs_name(aet) == expected


def test_long_components_are_shortened_deterministically_and_uniquely() -> None:
    first = safe_component("a" * 300)
    second = safe_component("a" * 299 + "b")
    assert len(first) == len(second) == NAME_MAX
    assert first != second
    assert first == safe_component("a" * 300)
    assert re.fullmatch(r"a+~[0-9a-f]{20}", first)


def test_long_file_names_keep_their_suffix() -> None:
    name = safe_component("1" * 400, ".dcm")
    assert len(name) == NAME_MAX
    assert name.endswith(".dcm")
    assert safe_component("1" * 251, ".dcm") == "1" * 251 + ".dcm"


def test_long_tags_give_a_valid_path() -> None:
    tags = attrs.evolve(JANE_DOE, SeriesDescription="x" * 1000, SOPInstanceUID="1." * 200)
    where = instance_path("AET", tags)
    for component in where.file_path.split("/"):
        assert len(component.encode()) <= NAME_MAX
    assert where.file_name.endswith(".dcm")
    assert len(where.series_folder.rsplit("/", 1)[1]) == NAME_MAX


_ANY_TEXT = st.text(st.characters(codec="utf-8"), max_size=300)
_OPTIONAL_TEXT = st.none() | _ANY_TEXT


@st.composite
def _tags(draw: st.DrawFn) -> InstanceTags:
    date = draw(st.dates(min_value=datetime.date(1, 1, 1)))
    date_text = draw(st.sampled_from([date.strftime("%Y%m%d"), date.isoformat()]))
    if date.year < 1000:
        date_text = f"{date.year:04d}{date.month:02d}{date.day:02d}"
    pad = draw(st.sampled_from(["", " ", "\0", "  \0"]))
    return InstanceTags(
        PatientID=draw(_ANY_TEXT),
        PatientName=draw(_OPTIONAL_TEXT),
        PatientBirthDate=draw(_OPTIONAL_TEXT),
        StudyDescription=draw(_OPTIONAL_TEXT),
        AccessionNumber=draw(_OPTIONAL_TEXT),
        StudyDate=date_text + pad,
        StudyInstanceUID=draw(_ANY_TEXT),
        SeriesInstanceUID=draw(_ANY_TEXT),
        SeriesNumber=draw(_OPTIONAL_TEXT),
        SeriesDescription=draw(_OPTIONAL_TEXT),
        InstanceNumber=draw(_OPTIONAL_TEXT),
        SOPInstanceUID=draw(_ANY_TEXT),
    )


@given(_ANY_TEXT, _tags())
def test_any_input_gives_a_safe_path(aet: str, tags: InstanceTags) -> None:
    where = instance_path(aet, tags)
    components = where.file_path.split("/")
    assert components[:2] == ["SERVICES", "PACS"]
    assert len(components) == 7
    for component in components:
        assert component not in ("", ".", "..")
        assert len(component.encode()) <= NAME_MAX
        assert re.fullmatch(r"[A-Za-z0-9._~-]+", component)
    assert where.file_path == f"{where.series_folder}/{where.file_name}"
    assert where.file_name.endswith(".dcm")
