import io
import json
import logging
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from oxidicom.logs import bind, configure_logging, fields, record_fields

TIMESTAMP = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    named = [logging.getLogger(name) for name in ("oxidicom", "aiormq", "aio_pika")]
    saved = root.handlers[:], root.level, [logger.level for logger in named]
    yield
    root.handlers[:], root.level = saved[0], saved[1]
    for logger, level in zip(named, saved[2], strict=True):
        logger.setLevel(level)
    logging.captureWarnings(False)


@pytest.fixture
def stream() -> io.StringIO:
    return io.StringIO()


def lines(stream: io.StringIO) -> list[str]:
    return stream.getvalue().splitlines()


def test_text_line(stream: io.StringIO) -> None:
    configure_logging("info", "text", stream)
    logging.getLogger("oxidicom.test").info(
        "association ended", extra=fields(association_ulid="01ARZ3NDEKTSV4RRFFQ69G5FAV", n=12)
    )
    [line] = lines(stream)
    assert re.fullmatch(
        TIMESTAMP + r" INFO oxidicom\.test association ended"
        r" association_ulid=01ARZ3NDEKTSV4RRFFQ69G5FAV n=12",
        line,
    ), line


def test_text_quotes_values_that_would_be_ambiguous(stream: io.StringIO) -> None:
    configure_logging("info", "text", stream)
    logging.getLogger("oxidicom.test").warning(
        "odd values",
        extra=fields(pacs="MY PACS", empty="", eq="a=b", quote='say "hi"', newline="a\nb"),
    )
    [line] = lines(stream)
    assert line.endswith(
        r' WARNING oxidicom.test odd values pacs="MY PACS" empty="" eq="a=b"'
        r' quote="say \"hi\"" newline="a\nb"'
    )


def test_text_traceback_follows_the_line(stream: io.StringIO) -> None:
    configure_logging("info", "text", stream)
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        logging.getLogger("oxidicom.test").exception("failed", extra=fields(step=3))
    first, *rest = lines(stream)
    assert first.endswith(" ERROR oxidicom.test failed step=3")
    assert rest[0] == "Traceback (most recent call last):"
    assert rest[-1] == "RuntimeError: boom"


def test_json_line(stream: io.StringIO) -> None:
    configure_logging("info", "json", stream)
    logging.getLogger("oxidicom.test").info(
        "stored %d files", 3, extra=fields(path=Path("/a b"), n=3, ok=True, ratio=0.5)
    )
    [line] = lines(stream)
    obj = json.loads(line)
    assert re.fullmatch(TIMESTAMP, obj.pop("ts"))
    assert obj == {
        "level": "info",
        "logger": "oxidicom.test",
        "msg": "stored 3 files",
        "path": "/a b",
        "n": 3,
        "ok": True,
        "ratio": 0.5,
    }


def test_json_keeps_its_own_keys_and_valid_json(stream: io.StringIO) -> None:
    configure_logging("info", "json", stream)
    logging.getLogger("oxidicom.test").info(
        "x", extra=fields(msg="field", level="field", nan=float("nan"), inf=float("-inf"))
    )
    obj = json.loads(lines(stream)[0], parse_constant=pytest.fail)
    assert obj["msg"] == "x"
    assert obj["level"] == "info"
    assert obj["msg_"] == obj["level_"] == "field"
    assert obj["nan"] == "nan"
    assert obj["inf"] == "-inf"


def test_json_traceback_stays_on_one_line(stream: io.StringIO) -> None:
    configure_logging("info", "json", stream)
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        logging.getLogger("oxidicom.test").exception("failed")
    [line] = lines(stream)
    exc = json.loads(line)["exc"]
    assert exc.startswith("Traceback (most recent call last):")
    assert exc.endswith("RuntimeError: boom")


def test_bound_fields_merge_and_call_fields_win(stream: io.StringIO) -> None:
    configure_logging("info", "json", stream)
    log = bind(logging.getLogger("oxidicom.test"), association_ulid="U", pacs="A")
    log.info("one")
    log.info("two", extra=fields(pacs="B", n=1))
    log.bind(series="S").info("three")
    objs = [json.loads(line) for line in lines(stream)]
    assert [(o["msg"], o["association_ulid"], o["pacs"]) for o in objs] == [
        ("one", "U", "A"),
        ("two", "U", "B"),
        ("three", "U", "A"),
    ]
    assert objs[1]["n"] == 1
    assert objs[2]["series"] == "S"
    assert "series" not in objs[0]


def test_debug_is_ours_only(stream: io.StringIO) -> None:
    configure_logging("debug", "text", stream)
    logging.getLogger("oxidicom.test").debug("ours")
    logging.getLogger("aio_pika").debug("theirs")
    logging.getLogger("aio_pika").info("theirs too")
    assert [line.split(" ", 3)[3] for line in lines(stream)] == ["ours", "theirs too"]


def test_amqp_client_is_quiet_unless_debugging(stream: io.StringIO) -> None:
    """Its per-attempt reconnect errors repeat what our throttled warning says."""
    configure_logging("info", "text", stream)
    logging.getLogger("aiormq.connection").error("error when creating transport")
    logging.getLogger("aio_pika.robust_connection").warning("reader exited abnormally")
    logging.getLogger("aiormq").critical("shown")
    configure_logging("debug", "text", stream)
    logging.getLogger("aiormq.connection").error("shown when debugging")
    assert [line.split(" ", 3)[3] for line in lines(stream)] == ["shown", "shown when debugging"]


@pytest.mark.parametrize("level", ["WARNING", "warning", logging.WARNING])
def test_level_filters(stream: io.StringIO, level: str | int) -> None:
    configure_logging(level, "text", stream)
    logging.getLogger("oxidicom.test").info("hidden")
    logging.getLogger("aio_pika").info("hidden")
    logging.getLogger("oxidicom.test").warning("shown")
    assert [line.split(" ", 3)[3] for line in lines(stream)] == ["shown"]


def test_configuring_again_replaces_the_handler(stream: io.StringIO) -> None:
    first = io.StringIO()
    configure_logging("info", "text", first)
    configure_logging("info", "json", stream)
    logging.getLogger("oxidicom.test").info("once")
    assert first.getvalue() == ""
    assert len(lines(stream)) == 1


def test_default_stream_is_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("info", "text")
    logging.getLogger("oxidicom.test").info("to stderr")
    out, err = capsys.readouterr()
    assert out == ""
    assert err.rstrip().endswith(" INFO oxidicom.test to stderr")


def test_fields_reach_other_handlers(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="oxidicom")
    bind(logging.getLogger("oxidicom.test"), a=1).info("hello", extra=fields(b=2))
    [record] = caplog.records
    assert record_fields(record) == {"a": 1, "b": 2}
    assert record.getMessage() == "hello"


def test_record_without_fields_has_none(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="oxidicom")
    logging.getLogger("oxidicom.test").info("plain")
    assert record_fields(caplog.records[0]) == {}


@pytest.mark.parametrize(
    ("level", "fmt", "message"),
    [("verbose", "text", "unknown log level 'verbose'"), ("info", "xml", "unknown log format")],
)
def test_bad_configuration(level: str, fmt: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        configure_logging(level, fmt)  # type: ignore[arg-type]
