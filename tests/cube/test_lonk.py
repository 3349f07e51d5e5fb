from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from oxidicom.cube import lonk

UID_TEXT = st.text(alphabet="0123456789.", min_size=1, max_size=64)


def test_done_is_one_zero_byte() -> None:
    assert lonk.DONE == b"\x00"
    assert lonk.encode(lonk.Done()) == b"\x00"


@pytest.mark.parametrize(
    ("count", "payload"),
    [
        (0, b"\x01\x00\x00\x00\x00"),
        (1, b"\x01\x01\x00\x00\x00"),
        (192, b"\x01\xc0\x00\x00\x00"),
        (0x01020304, b"\x01\x04\x03\x02\x01"),
        (2**32 - 1, b"\x01\xff\xff\xff\xff"),
    ],
)
def test_progress_is_tag_then_u32_little_endian(count: int, payload: bytes) -> None:
    assert lonk.progress(count) == payload


@pytest.mark.parametrize("count", [-1, 2**32])
def test_progress_outside_u32_is_refused(count: int) -> None:
    with pytest.raises(ValueError, match="u32"):
        lonk.progress(count)


def test_error_is_tag_then_utf8() -> None:
    assert lonk.error("Missing StudyDate") == b"\x02Missing StudyDate"
    assert lonk.error("é") == b"\x02\xc3\xa9"


def test_error_with_undecodable_text_still_encodes() -> None:
    assert lonk.error("a\udcffb") == b"\x02a?b"


@given(st.one_of(
    st.just(lonk.Done()),
    st.builds(lonk.Progress, st.integers(0, 2**32 - 1)),
    st.builds(lonk.Error, st.text()),
))  # fmt: skip
def test_decode_inverts_encode(message: lonk.Message) -> None:
    assert lonk.decode(lonk.encode(message)) == message


@pytest.mark.parametrize("payload", [b"", b"\x00\x00", b"\x01\x00", b"\x01" + bytes(5), b"\x03"])
def test_decode_rejects_other_payloads(payload: bytes) -> None:
    with pytest.raises(ValueError, match="LONK"):
        lonk.decode(payload)


@pytest.mark.parametrize(
    ("root", "pacs", "uid", "subject"),
    [
        ("oxidicom", "ORTHANC", "1.2.840.113619.2.1", "oxidicom.ORTHANC.1_2_840_113619_2_1"),
        ("oxidicom", "MY PACS", "1.2.3", "oxidicom.MY_PACS.1_2_3"),
        ("oxidicom", "A*B>C", "1.2\x00", "oxidicom.A_B_C.1_2"),
        ("oxidicom", "\x00PACS\x00", "1 .*>", "oxidicom.PACS.1____"),
        ("root.with.dots", "P", "UNKNOWN", "root.with.dots.P.UNKNOWN"),
    ],
)
def test_subject_vectors(root: str, pacs: str, uid: str, subject: str) -> None:
    assert lonk.subject(root, pacs, uid) == subject


@given(pacs=st.from_regex(r"[A-Z0-9_-]{1,16}", fullmatch=True), uid=UID_TEXT)
def test_subject_is_what_cube_subscribes_to(pacs: str, uid: str) -> None:
    """CUBE subscribes to ``oxidicom.{pacs}.{SeriesInstanceUID with . replaced by _}``."""
    assert lonk.subject("oxidicom", pacs, uid) == f"oxidicom.{pacs}.{uid.replace('.', '_')}"


@given(st.text())
def test_subject_token_is_one_plain_nats_token(text: str) -> None:
    token = lonk.subject_token(text)
    assert not set(token) & {"\0", " ", ".", "*", ">"}
    assert len(token) == len(text) - text.count("\0")
