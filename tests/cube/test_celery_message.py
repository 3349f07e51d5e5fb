from __future__ import annotations

import datetime
import decimal
import inspect
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from oxidicom.cube.celery_message import (
    REGISTER_PACS_SERIES,
    CeleryTaskMessage,
    SeriesRegistration,
    clean_text,
    patient_age_days,
    registration_message,
    task_message,
)
from oxidicom.storage.events import AssociationInfo, InstanceStored, InstanceTags
from oxidicom.storage.layout import trim
from tests.peers.celery_stub_app import register_pacs_series

ASSOCIATION = AssociationInfo("01J0000000000000000000000", "OXITESTORTHANC", "ChRIS", "::1", 4242)
SERIES_FOLDER = (
    "SERVICES/PACS/OXITESTORTHANC/1449c1d-anonymized-20090701/"
    "MR-Brain_w_o_Contrast-98edede8b2-20130308/00005-SAG_MPRAGE_220_FOV-a27cf06"
)


def stored(tags: InstanceTags, *, folder: str = SERIES_FOLDER) -> InstanceStored:
    return InstanceStored(
        association=ASSOCIATION,
        tags=tags,
        study_date=datetime.date(2013, 3, 8),
        series_folder=folder,
        file_path=f"{folder}/0001-1.3.12.2.dcm",
        size=1234,
    )


FULL_TAGS = InstanceTags(
    PatientID="1449c1d ",
    PatientName="anonymized",
    PatientBirthDate="20090701",
    PatientAge="030Y",
    PatientSex="M ",
    StudyDate="20130308",
    StudyDescription="MR-Brain w/o Contrast",
    AccessionNumber="98edede8b2",
    Modality="MR",
    ProtocolName="SAG MPRAGE 220 FOV",
    StudyInstanceUID="1.2.826.0.1.3680043.2.1143.1\x00",
    SeriesInstanceUID="1.3.12.2.1107.5.2.19.45152.2013030808061520200285270.0.0.0",
    SeriesDescription="SAG MPRAGE 220 FOV",
    SeriesNumber="5",
    InstanceNumber="1",
    SOPInstanceUID="1.3.12.2.1107.5.2.19.45152.2013030808061586246086611",
)

EXPECTED_KWARGS = {
    "PatientID": "1449c1d",
    "StudyDate": "2013-03-08",
    "StudyInstanceUID": "1.2.826.0.1.3680043.2.1143.1",
    "SeriesInstanceUID": "1.3.12.2.1107.5.2.19.45152.2013030808061520200285270.0.0.0",
    "pacs_name": "OXITESTORTHANC",
    "path": SERIES_FOLDER,
    "ndicom": 192,
    "PatientName": "anonymized",
    "PatientBirthDate": "20090701",
    "PatientAge": 10957,
    "PatientSex": "M",
    "AccessionNumber": "98edede8b2",
    "Modality": "MR",
    "ProtocolName": "SAG MPRAGE 220 FOV",
    "StudyDescription": "MR-Brain w/o Contrast",
    "SeriesDescription": "SAG MPRAGE 220 FOV",
}


def test_kwargs_of_a_series() -> None:
    registration = SeriesRegistration.of_series(stored(FULL_TAGS), ndicom=192)
    assert registration.kwargs() == EXPECTED_KWARGS


def test_kwargs_follow_cubes_signature_order() -> None:
    registration = SeriesRegistration.of_series(stored(FULL_TAGS), ndicom=1)
    assert list(registration.kwargs()) == list(inspect.signature(register_pacs_series).parameters)


def test_absent_optional_values_are_null_and_present_ones_cleaned() -> None:
    tags = InstanceTags(
        PatientID="\x00P1\x00",
        StudyInstanceUID=" 1.2.3 ",
        SeriesInstanceUID="1.2.3.4\x00",
        PatientName=" Jane^Doe\x00 ",
        Modality="",
    )
    kwargs = SeriesRegistration.of_series(stored(tags, folder="a/b/"), ndicom=2).kwargs()
    assert kwargs["PatientID"] == "P1"
    assert kwargs["StudyInstanceUID"] == "1.2.3"
    assert kwargs["SeriesInstanceUID"] == "1.2.3.4"
    assert kwargs["PatientName"] == "Jane^Doe"
    assert kwargs["Modality"] == ""
    assert kwargs["path"] == "a/b"
    assert [k for k, v in kwargs.items() if v is None] == [
        "PatientBirthDate", "PatientAge", "PatientSex", "AccessionNumber",
        "ProtocolName", "StudyDescription", "SeriesDescription",
    ]  # fmt: skip


@pytest.mark.parametrize("missing", ["PatientID", "StudyInstanceUID", "SeriesInstanceUID"])
def test_series_without_a_required_value_is_refused(missing: str) -> None:
    values: dict[str, str | None] = {
        "PatientID": "P",
        "StudyInstanceUID": "1.2",
        "SeriesInstanceUID": "1.2.3",
    }
    values[missing] = None
    with pytest.raises(ValueError, match=missing):
        SeriesRegistration.of_series(stored(InstanceTags(**values)), ndicom=1)


@pytest.mark.parametrize("empty", ["PatientID", "StudyInstanceUID", "SeriesInstanceUID"])
def test_a_present_but_empty_required_value_is_registered_empty(empty: str) -> None:
    values = {"PatientID": "P", "StudyInstanceUID": "1.2", "SeriesInstanceUID": "1.2.3"}
    values[empty] = " \x00"
    registration = SeriesRegistration.of_series(stored(InstanceTags(**values)), ndicom=1)
    assert registration.kwargs()[empty] == ""


@pytest.mark.parametrize(
    ("age", "days"),
    [
        ("030Y", 10957),
        ("020D", 20),
        ("2W", 14),
        ("5M", 152),
        ("001Y", 365),
        ("000D", 0),
        (" 012M ", 365),
        ("1.5D", 2),  # half away from zero, like Rust's f64::round
        ("0.5D", 1),
        ("2.5D", 3),
        ("0.49999999999999994D", 0),  # the double just below 0.5: floor(x + 0.5) would say 1
        ("5880000Y", None),  # beyond CUBE's integer column
        ("030", None),
        ("Y", None),
        ("-1Y", None),
        ("30y", None),
        ("1e2D", None),
        ("abc", None),
        ("", None),
        (None, None),
    ],
)
def test_patient_age_in_days(age: str | None, days: int | None) -> None:
    assert patient_age_days(age) == days


@given(st.integers(0, 999), st.sampled_from("DWMY"))
def test_patient_age_rounds_like_rust(number: int, unit: str) -> None:
    exact = float(number) * {"D": 1.0, "W": 7.0, "M": 30.44, "Y": 365.24}[unit]
    rounded = int(decimal.Decimal(exact).quantize(0, rounding=decimal.ROUND_HALF_UP))
    assert patient_age_days(f"{number:03d}{unit}") == rounded


@given(st.text())
def test_patient_age_never_raises(text: str) -> None:
    days = patient_age_days(text)
    assert days is None or 0 <= days < 2**31


@given(st.text())
def test_clean_text_is_trimmed_utf8_without_nul(text: str) -> None:
    cleaned = clean_text(text)
    assert cleaned is not None
    assert "\0" not in cleaned
    assert cleaned == trim(cleaned)  # Rust's str::trim, as the path rules
    cleaned.encode("utf-8")


def test_message_layout_is_celery_protocol_2() -> None:
    registration = SeriesRegistration.of_series(stored(FULL_TAGS), ndicom=192)
    task_id = "0c8a4d2e-3c4f-4b8e-9f00-8d1b0a1d2e3f"
    message = registration_message(registration, task_id=task_id, origin="gen42@oxidicom")
    assert message.task_id == message.correlation_id == task_id
    assert message.task_name == REGISTER_PACS_SERIES
    assert (message.content_type, message.content_encoding) == ("application/json", "utf-8")
    assert (message.delivery_mode, message.priority) == (2, 0)
    assert dict(message.headers) == {
        "lang": "py",
        "task": "pacsfiles.tasks.register_pacs_series",
        "id": task_id,
        "shadow": None,
        "eta": None,
        "expires": None,
        "group": None,
        "group_index": None,
        "retries": 0,
        "timelimit": [None, None],
        "root_id": task_id,
        "parent_id": None,
        "argsrepr": "()",
        "kwargsrepr": repr(EXPECTED_KWARGS),
        "origin": "gen42@oxidicom",
        "ignore_result": None,
    }
    assert message.body == (
        b'[[],{"PatientID":"1449c1d","StudyDate":"2013-03-08",'
        b'"StudyInstanceUID":"1.2.826.0.1.3680043.2.1143.1",'
        b'"SeriesInstanceUID":"1.3.12.2.1107.5.2.19.45152.2013030808061520200285270.0.0.0",'
        b'"pacs_name":"OXITESTORTHANC","path":"' + SERIES_FOLDER.encode() + b'",'
        b'"ndicom":192,"PatientName":"anonymized","PatientBirthDate":"20090701",'
        b'"PatientAge":10957,"PatientSex":"M","AccessionNumber":"98edede8b2","Modality":"MR",'
        b'"ProtocolName":"SAG MPRAGE 220 FOV","StudyDescription":"MR-Brain w/o Contrast",'
        b'"SeriesDescription":"SAG MPRAGE 220 FOV"},'
        b'{"callbacks":null,"errbacks":null,"chain":null,"chord":null}]'
    )


def test_every_message_gets_its_own_task_id() -> None:
    first, second = (task_message("t", {}) for _ in range(2))
    assert first.task_id != second.task_id
    assert first.headers["origin"].startswith("gen")


def test_long_kwargs_repr_is_truncated_like_celery() -> None:
    message = task_message("t", {"x": "y" * 5000})
    assert len(message.headers["kwargsrepr"]) == 1024
    assert json.loads(message.body)[1] == {"x": "y" * 5000}


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**40), 2**40) | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=10,
)


@given(st.dictionaries(st.text(), json_values, max_size=5), st.text(min_size=1))
def test_stored_form_round_trips(kwargs: dict[str, object], name: str) -> None:
    message = task_message(name, kwargs)
    assert CeleryTaskMessage.from_json(message.to_json()) == message


@pytest.mark.parametrize(
    "data",
    [b"", b"not json", b"[]", b'{"task_id": 1}', b"\xff\xfe", b'{"task_id":"x","headers":[]}'],
)
def test_stored_form_rejects_anything_else(data: bytes) -> None:
    with pytest.raises(ValueError, match="stored Celery task message"):
        CeleryTaskMessage.from_json(data)
