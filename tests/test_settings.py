import ipaddress
import logging
import re
from pathlib import Path

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from oxidicom.humantime import format_duration
from oxidicom.settings import (
    Settings,
    SettingsError,
    environment_warnings,
    settings_table_markdown,
    variables,
)

REQUIRED = {"OXIDICOM_AMQP_ADDRESS": "amqp://localhost:5672", "OXIDICOM_FILES_ROOT": "/data"}


def settings(**env: str) -> Settings:
    return Settings.from_env({**REQUIRED, **env})


def problems(**env: str) -> list[str]:
    with pytest.raises(SettingsError) as error:
        Settings.from_env({**REQUIRED, **env})
    assert str(error.value).splitlines() == list(error.value.problems)
    return list(error.value.problems)


def problem(**env: str) -> str:
    [line] = problems(**env)
    return line


# --- Defaults


def test_defaults_of_the_contract() -> None:
    s = settings()
    assert s.cube.amqp_address == "amqp://localhost:5672"
    assert s.storage.files_root == Path("/data")
    assert s.cube.queue_name == "main2"
    assert s.cube.nats_address is None
    assert s.cube.progress_interval == 0.5
    assert s.cube.root_subject == "oxidicom"
    assert s.scp.aet == "ChRIS"
    assert s.scp.strict is False
    assert s.scp.uncompressed_only is False
    assert s.scp.promiscuous is False
    assert s.scp.max_pdu_length == 16384
    assert s.listener.max_connections == 8
    assert s.listener.port == 11111
    assert s.cube.dev_sleep is None
    assert s.telemetry.otlp_endpoint is None
    assert s.telemetry.resource() == {"service.name": "oxidicom"}


def test_defaults_of_our_additions() -> None:
    s = settings()
    assert s.listener.address == "0.0.0.0"
    assert s.scp.artim_timeout == 30.0
    assert s.scp.idle_timeout == 60.0
    assert s.listener.slot_wait_timeout == 20.0
    assert s.listener.slot_wait_queue == 256
    assert s.storage.fsync is False
    assert s.storage.outbox_dir == Path("/data/.oxidicom/outbox")
    assert s.listener.workers == 1
    assert s.storage.writer_threads == 0
    assert s.listener.shutdown_grace == 30.0
    assert s.log.level == logging.INFO
    assert s.log.format == "text"
    assert not s.tls.enabled
    assert s.scp.allowed_calling_aets == ()
    assert s.scp.check_called_aet is False
    assert s.listener.allowed_peers == ()
    assert s.listener.max_associations_per_peer == 0
    assert s.listener.connection_limit == 1024


def test_reads_os_environ_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in REQUIRED.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("OXIDICOM_SCP_AET", "FROMENV")
    assert Settings.from_env().scp.aet == "FROMENV"


def test_settings_are_frozen() -> None:
    s = settings()
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        s.scp.aet = "OTHER"  # type: ignore[misc]


# --- Errors


def test_required_variables() -> None:
    with pytest.raises(SettingsError) as error:
        Settings.from_env({})
    assert str(error.value) == (
        "OXIDICOM_AMQP_ADDRESS is required (AMQP URL of CUBE's RabbitMQ, e.g. "
        "amqp://guest:guest@localhost:5672)\n"
        "OXIDICOM_FILES_ROOT is required (directory where CUBE's storage is mounted, e.g. /data)"
    )


def test_one_bad_variable_is_one_line() -> None:
    with pytest.raises(SettingsError) as error:
        settings(OXIDICOM_SCP_MAX_PDU_LENGTH="abc")
    assert str(error.value) == (
        "OXIDICOM_SCP_MAX_PDU_LENGTH: expected an integer from 4096 to 16777216, got 'abc'"
    )


def test_every_bad_variable_is_reported() -> None:
    assert problems(
        OXIDICOM_FSYNC="maybe",
        OXIDICOM_LISTENER_PORT="70000",
        OXIDICOM_PROGRESS_INTERVAL="5",
        OXIDICOM_LOG_FORMAT="xml",
    ) == [
        "OXIDICOM_PROGRESS_INTERVAL: expected a duration such as 500ms, 30s or 1m 30s, "
        "got '5' (a time unit is needed after 5, e.g. 5s or 5ms)",
        "OXIDICOM_FSYNC: expected true or false (or 1/0, yes/no), got 'maybe'",
        "OXIDICOM_LISTENER_PORT: expected an integer from 0 to 65535, got '70000'",
        "OXIDICOM_LOG_FORMAT: expected one of text, json, got 'xml'",
    ]


def test_empty_means_unset() -> None:
    s = settings(OXIDICOM_NATS_ADDRESS="", OXIDICOM_QUEUE_NAME="  ", OXIDICOM_TLS_CERT="")
    assert s.cube.nats_address is None
    assert s.cube.queue_name == "main2"
    assert not s.tls.enabled
    with pytest.raises(SettingsError, match=r"^OXIDICOM_FILES_ROOT is required"):
        Settings.from_env({**REQUIRED, "OXIDICOM_FILES_ROOT": " "})


def test_values_are_stripped() -> None:
    assert settings(OXIDICOM_LISTENER_PORT=" 104\n").listener.port == 104


# --- Booleans, integers, durations


def case_variants(word: str) -> st.SearchStrategy[str]:
    return st.tuples(*(st.sampled_from([c.lower(), c.upper()]) for c in word)).map("".join)


@given(st.sampled_from(["true", "1", "yes"]).flatmap(case_variants))
def test_true(text: str) -> None:
    assert settings(OXIDICOM_SCP_STRICT=text).scp.strict is True


@given(st.sampled_from(["false", "0", "no"]).flatmap(case_variants))
def test_false(text: str) -> None:
    assert settings(OXIDICOM_SCP_STRICT=text).scp.strict is False


@pytest.mark.parametrize("text", ["on", "off", "2", "y", "t", "truee"])
def test_not_a_boolean(text: str) -> None:
    assert problem(OXIDICOM_SCP_PROMISCUOUS=text) == (
        f"OXIDICOM_SCP_PROMISCUOUS: expected true or false (or 1/0, yes/no), got {text!r}"
    )


@given(st.integers(min_value=4096, max_value=16_777_216))
def test_pdu_length_in_range(n: int) -> None:
    assert settings(OXIDICOM_SCP_MAX_PDU_LENGTH=str(n)).scp.max_pdu_length == n


@pytest.mark.parametrize("text", ["4095", "16777217", "-5000", "+5000", "5_000", "1e4", "0x1000"])
def test_pdu_length_out_of_range_or_not_an_integer(text: str) -> None:
    assert problem(OXIDICOM_SCP_MAX_PDU_LENGTH=text) == (
        f"OXIDICOM_SCP_MAX_PDU_LENGTH: expected an integer from 4096 to 16777216, got {text!r}"
    )


@pytest.mark.parametrize(
    ("variable", "text", "message"),
    [
        ("OXIDICOM_LISTENER_THREADS", "0", "from 1 to 65535"),
        ("OXIDICOM_WORKERS", "0", "from 1 to 256"),
        ("OXIDICOM_WRITER_THREADS", "257", "from 0 to 256"),
        ("OXIDICOM_SLOT_WAIT_QUEUE", "-1", "from 0 to 65535"),
        ("OXIDICOM_MAX_ASSOCIATIONS_PER_PEER", "x", "from 0 to 65535"),
        ("OXIDICOM_MAX_CONNECTIONS", "0", "from 1 to 1000000"),
    ],
)
def test_integer_ranges(variable: str, text: str, message: str) -> None:
    assert problem(**{variable: text}).startswith(f"{variable}: expected an integer {message}")


@pytest.mark.parametrize(
    ("text", "seconds"), [("5ms", 0.005), ("2s", 2.0), ("1m 30s", 90.0), ("1.5s", 1.5), ("0s", 0)]
)
def test_progress_interval(text: str, seconds: float) -> None:
    assert settings(OXIDICOM_PROGRESS_INTERVAL=text).cube.progress_interval == seconds


def test_durations_that_must_be_positive() -> None:
    assert problem(OXIDICOM_ARTIM_TIMEOUT="0s") == (
        "OXIDICOM_ARTIM_TIMEOUT: expected a duration above 0s, got '0s'"
    )
    assert settings(OXIDICOM_IDLE_TIMEOUT="0s").scp.idle_timeout == 0  # 0 = never


@given(st.integers(min_value=0, max_value=10**12))
def test_durations_round_trip(ms: int) -> None:
    text = format_duration(ms / 1000)
    s = settings(OXIDICOM_SHUTDOWN_GRACE=text, OXIDICOM_DEV_SLEEP=text)
    assert s.listener.shutdown_grace == s.cube.dev_sleep == ms / 1000


def test_bad_duration() -> None:
    assert problem(OXIDICOM_DEV_SLEEP="1 fortnight") == (
        "OXIDICOM_DEV_SLEEP: expected a duration such as 500ms, 30s or 1m 30s, got "
        "'1 fortnight' (unknown time unit 'fortnight' (known units: ns, us, ms, s, "
        "m (minutes), h, d, w, M (months), y and long forms like sec, min, hours))"
    )


# --- Addresses


@pytest.mark.parametrize(
    ("text", "url"),
    [
        ("localhost:4222", "nats://localhost:4222"),
        ("nats://localhost:4222", "nats://localhost:4222"),
        ("nats.example.org", "nats://nats.example.org:4222"),
        ("nats://nats:4223/", "nats://nats:4223"),
        ("tls://nats:4222", "tls://nats:4222"),
        ("nats://user:pass@nats", "nats://user:pass@nats:4222"),
        ("[::1]:4222", "nats://[::1]:4222"),
        ("127.0.0.1:4222", "nats://127.0.0.1:4222"),
    ],
)
def test_nats_address(text: str, url: str) -> None:
    assert settings(OXIDICOM_NATS_ADDRESS=text).cube.nats_address == url


@pytest.mark.parametrize(
    "text",
    ["http://nats:4222", "nats:port", "nats:99999", "nats://nats:4222/x", "nats://", ":4222"],
)
def test_bad_nats_address(text: str) -> None:
    assert problem(OXIDICOM_NATS_ADDRESS=text) == (
        f"OXIDICOM_NATS_ADDRESS: expected host:port or nats://host:port, got {text!r}"
    )


@pytest.mark.parametrize(
    "url",
    [
        "amqp://guest:guest@localhost:5672",
        "amqp://localhost:5672",
        "amqp://rabbitmq",
        "amqps://user:pass@rabbitmq.example.org:5671/vhost",
    ],
)
def test_amqp_address(url: str) -> None:
    assert settings(OXIDICOM_AMQP_ADDRESS=url).cube.amqp_address == url


@pytest.mark.parametrize(
    "text", ["localhost:5672", "http://localhost:5672", "amqp://:5672", "amqp://h:port", "amqp"]
)
def test_bad_amqp_address(text: str) -> None:
    assert problem(OXIDICOM_AMQP_ADDRESS=text) == (
        "OXIDICOM_AMQP_ADDRESS: expected an AMQP URL such as amqp://guest:guest@localhost:5672, "
        f"got {text!r}"
    )


def test_passwords_stay_out_of_messages() -> None:
    [amqp, nats] = problems(
        OXIDICOM_AMQP_ADDRESS="amqp://user:s3cret@host:bad",
        OXIDICOM_NATS_ADDRESS="nats://u:s3cret@",
    )
    assert "s3cret" not in amqp
    assert "'amqp://user:***@host:bad'" in amqp
    assert "s3cret" not in nats


@pytest.mark.parametrize(
    ("text", "host"),
    [
        ("0.0.0.0", "0.0.0.0"),
        ("::", "::"),
        ("[::]", "::"),
        ("0:0::0", "::"),
        ("127.0.0.1", "127.0.0.1"),
        ("localhost", "localhost"),
        ("oxidicom.example.org", "oxidicom.example.org"),
    ],
)
def test_listener_address(text: str, host: str) -> None:
    assert settings(OXIDICOM_LISTENER_ADDRESS=text).listener.address == host


@pytest.mark.parametrize("text", ["not a host", "host_name", "-x", "1.2.3.4:11111"])
def test_bad_listener_address(text: str) -> None:
    assert problem(OXIDICOM_LISTENER_ADDRESS=text) == (
        f"OXIDICOM_LISTENER_ADDRESS: expected an IP address such as 0.0.0.0 or ::, got {text!r}"
    )


# --- Names


@pytest.mark.parametrize(
    ("text", "title"),
    [("ChRIS", "ChRIS"), ("  PACS  ", "PACS"), ("A" * 16, "A" * 16), ("MY PACS", "MY PACS")],
)
def test_ae_title(text: str, title: str) -> None:
    assert settings(OXIDICOM_SCP_AET=text).scp.aet == title


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("A" * 17, "longer than 16 characters"),
        ("BACK\\SLASH", "only printable ASCII characters other than backslash are allowed"),
        ("TAB\tX", "only printable ASCII characters other than backslash are allowed"),
        ("ÉCOLE", "only printable ASCII characters other than backslash are allowed"),
    ],
)
def test_bad_ae_title(text: str, reason: str) -> None:
    assert (
        problem(OXIDICOM_SCP_AET=text) == f"OXIDICOM_SCP_AET: {text!r} is not an AE title: {reason}"
    )


@given(st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1))
def test_ae_titles_of_printable_ascii(title: str) -> None:
    if "\\" in title or len(title) > 16:
        assert problem(OXIDICOM_SCP_AET=title).startswith("OXIDICOM_SCP_AET: ")
    else:
        assert settings(OXIDICOM_SCP_AET=title).scp.aet == title


@pytest.mark.parametrize("subject", ["oxidicom", "chris.oxidicom", "a-b_c"])
def test_root_subject(subject: str) -> None:
    assert settings(OXIDICOM_ROOT_SUBJECT=subject).cube.root_subject == subject


@pytest.mark.parametrize("subject", ["a..b", ".a", "a.", "a b", "a.*", "a.>"])
def test_bad_root_subject(subject: str) -> None:
    assert problem(OXIDICOM_ROOT_SUBJECT=subject) == (
        "OXIDICOM_ROOT_SUBJECT: expected NATS subject tokens separated by dots, without spaces, "
        f"'*' or '>', got {subject!r}"
    )


def test_queue_name_length() -> None:
    assert settings(OXIDICOM_QUEUE_NAME="q" * 255).cube.queue_name == "q" * 255
    assert problem(OXIDICOM_QUEUE_NAME="é" * 128).startswith(
        "OXIDICOM_QUEUE_NAME: expected a queue name of at most 255 bytes"
    )


# --- Access control


def test_allowed_calling_aets() -> None:
    scp = settings(OXIDICOM_ALLOWED_CALLING_AETS=" ORTHANC, PACS 2 ,,").scp
    assert scp.allowed_calling_aets == ("ORTHANC", "PACS 2")
    assert scp.accepts_calling_aet("ORTHANC")
    assert scp.accepts_calling_aet("PACS 2  ")
    assert not scp.accepts_calling_aet("orthanc")
    assert not scp.accepts_calling_aet("OTHER")


def test_every_calling_aet_by_default() -> None:
    assert settings().scp.accepts_calling_aet("ANYONE")


def test_bad_allowed_calling_aet() -> None:
    assert problem(OXIDICOM_ALLOWED_CALLING_AETS="OK,WAY_TOO_LONG_AE_TITLE") == (
        "OXIDICOM_ALLOWED_CALLING_AETS: 'WAY_TOO_LONG_AE_TITLE' is not an AE title: "
        "longer than 16 characters"
    )


def test_called_aet() -> None:
    assert settings().scp.accepts_called_aet("ANY")
    scp = settings(OXIDICOM_CHECK_CALLED_AET="yes", OXIDICOM_SCP_AET="OXI").scp
    assert scp.accepts_called_aet("OXI")
    assert scp.accepts_called_aet("OXI ")
    assert not scp.accepts_called_aet("ChRIS")


def test_allowed_peers() -> None:
    listener = settings(OXIDICOM_ALLOWED_PEERS="10.0.0.0/8, 192.168.1.7,fd00::/8").listener
    assert listener.allowed_peers == (
        ipaddress.ip_network("10.0.0.0/8"),
        ipaddress.ip_network("192.168.1.7/32"),
        ipaddress.ip_network("fd00::/8"),
    )
    assert listener.accepts_peer("10.1.2.3")
    assert listener.accepts_peer("192.168.1.7")
    assert not listener.accepts_peer("192.168.1.8")
    assert listener.accepts_peer("::ffff:10.1.2.3")  # IPv4 through a dual-stack socket
    assert listener.accepts_peer("fd12::1")
    assert not listener.accepts_peer("fe80::1%eth0")
    assert not listener.accepts_peer("::1")


def test_every_peer_by_default() -> None:
    assert settings().listener.accepts_peer("203.0.113.9")


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("10.0.0.1/8", "10.0.0.1/8 has host bits set"),
        ("10.0.0.0/33", "'10.0.0.0/33' does not appear to be an IPv4 or IPv6 network"),
        ("example.org", "'example.org' does not appear to be an IPv4 or IPv6 network"),
    ],
)
def test_bad_allowed_peer(text: str, reason: str) -> None:
    assert problem(OXIDICOM_ALLOWED_PEERS=f"127.0.0.1,{text}") == (
        f"OXIDICOM_ALLOWED_PEERS: {text!r} is not an IP address or network such as "
        f"192.168.1.7 or 10.0.0.0/8 ({reason})"
    )


# --- TLS, storage, logging, telemetry


def test_tls() -> None:
    tls = settings(OXIDICOM_TLS_CERT="/tls/cert.pem", OXIDICOM_TLS_KEY="/tls/key.pem").tls
    assert tls.enabled
    assert (tls.cert, tls.key, tls.ca) == (Path("/tls/cert.pem"), Path("/tls/key.pem"), None)
    tls = settings(
        OXIDICOM_TLS_CERT="/c.pem", OXIDICOM_TLS_KEY="/k.pem", OXIDICOM_TLS_CA="/ca.pem"
    ).tls
    assert tls.ca == Path("/ca.pem")


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"OXIDICOM_TLS_CERT": "/c"},
            "OXIDICOM_TLS_CERT and OXIDICOM_TLS_KEY must be set together",
        ),
        ({"OXIDICOM_TLS_KEY": "/k"}, "OXIDICOM_TLS_CERT and OXIDICOM_TLS_KEY must be set together"),
        (
            {"OXIDICOM_TLS_CA": "/ca"},
            "OXIDICOM_TLS_CA needs OXIDICOM_TLS_CERT and OXIDICOM_TLS_KEY",
        ),
    ],
)
def test_bad_tls(env: dict[str, str], message: str) -> None:
    assert problem(**env) == message


def test_tls_problem_is_reported_with_the_others() -> None:
    assert problems(OXIDICOM_TLS_KEY="/k", OXIDICOM_FSYNC="x", OXIDICOM_LOG_LEVEL="x") == [
        "OXIDICOM_FSYNC: expected true or false (or 1/0, yes/no), got 'x'",
        "OXIDICOM_TLS_CERT and OXIDICOM_TLS_KEY must be set together",
        "OXIDICOM_LOG_LEVEL: expected one of debug, info, warning, error, got 'x'",
    ]


def test_outbox_dir() -> None:
    assert settings(OXIDICOM_FILES_ROOT="/mnt/cube/").storage.outbox_dir == Path(
        "/mnt/cube/.oxidicom/outbox"
    )
    assert settings(OXIDICOM_OUTBOX_DIR="/var/outbox").storage.outbox_dir == Path("/var/outbox")


def test_path_with_nul() -> None:
    assert (
        problem(OXIDICOM_FILES_ROOT="/a\0b")
        == "OXIDICOM_FILES_ROOT: a path cannot contain NUL: '/a\\x00b'"
    )


@pytest.mark.parametrize(
    ("text", "level"),
    [
        ("debug", logging.DEBUG),
        ("INFO", logging.INFO),
        ("Warning", logging.WARNING),
        ("error", logging.ERROR),
    ],
)
def test_log_level(text: str, level: int) -> None:
    assert settings(OXIDICOM_LOG_LEVEL=text).log.level == level


def test_log_format() -> None:
    assert settings(OXIDICOM_LOG_FORMAT="JSON").log.format == "json"


def test_telemetry() -> None:
    telemetry = settings(
        OTEL_EXPORTER_OTLP_ENDPOINT="http://collector:4317",
        OTEL_RESOURCE_ATTRIBUTES="deployment.environment=prod, team=fnndsc%2Cbch,note=a%3Db",
    ).telemetry
    assert telemetry.otlp_endpoint == "http://collector:4317"
    assert telemetry.resource() == {
        "deployment.environment": "prod",
        "team": "fnndsc,bch",
        "note": "a=b",
        "service.name": "oxidicom",
    }


def test_service_name() -> None:
    by_attribute = settings(OTEL_RESOURCE_ATTRIBUTES="service.name=oxidicom-test")
    assert by_attribute.telemetry.resource() == {"service.name": "oxidicom-test"}
    by_name = settings(OTEL_RESOURCE_ATTRIBUTES="service.name=a", OTEL_SERVICE_NAME="b")
    assert by_name.telemetry.resource() == {"service.name": "b"}


@pytest.mark.parametrize("text", ["a=b,c", "=b", "a=b, =c"])
def test_bad_resource_attributes(text: str) -> None:
    assert problem(OTEL_RESOURCE_ATTRIBUTES=text).startswith(
        "OTEL_RESOURCE_ATTRIBUTES: expected key=value pairs separated by commas, got "
    )


# --- Writing back, warnings, documentation

FULL_ENV = {
    "OXIDICOM_AMQP_ADDRESS": "amqp://user:pass@rabbit:5672/vh",
    "OXIDICOM_FILES_ROOT": "/data",
    "OXIDICOM_QUEUE_NAME": "q",
    "OXIDICOM_NATS_ADDRESS": "nats://u:pw@nats:4222",
    "OXIDICOM_PROGRESS_INTERVAL": "1.25s",
    "OXIDICOM_ROOT_SUBJECT": "a.b",
    "OXIDICOM_DEV_SLEEP": "3ms",
    "OXIDICOM_FSYNC": "YES",
    "OXIDICOM_WRITER_THREADS": "4",
    "OXIDICOM_OUTBOX_DIR": "/outbox",
    "OXIDICOM_SCP_AET": "OXI",
    "OXIDICOM_SCP_STRICT": "1",
    "OXIDICOM_SCP_UNCOMPRESSED_ONLY": "true",
    "OXIDICOM_SCP_PROMISCUOUS": "True",
    "OXIDICOM_SCP_MAX_PDU_LENGTH": "65536",
    "OXIDICOM_CHECK_CALLED_AET": "yes",
    "OXIDICOM_ALLOWED_CALLING_AETS": "A,B C",
    "OXIDICOM_ARTIM_TIMEOUT": "10s",
    "OXIDICOM_IDLE_TIMEOUT": "1h 2m",
    "OXIDICOM_LISTENER_ADDRESS": "::",
    "OXIDICOM_LISTENER_PORT": "104",
    "OXIDICOM_LISTENER_THREADS": "32",
    "OXIDICOM_SLOT_WAIT_TIMEOUT": "0s",
    "OXIDICOM_SLOT_WAIT_QUEUE": "0",
    "OXIDICOM_MAX_ASSOCIATIONS_PER_PEER": "4",
    "OXIDICOM_MAX_CONNECTIONS": "300",
    "OXIDICOM_ALLOWED_PEERS": "10.0.0.0/8,::1",
    "OXIDICOM_WORKERS": "2",
    "OXIDICOM_SHUTDOWN_GRACE": "5m",
    "OXIDICOM_EVENT_LOOP": "asyncio",
    "OXIDICOM_TLS_CERT": "/c.pem",
    "OXIDICOM_TLS_KEY": "/k.pem",
    "OXIDICOM_TLS_CA": "/ca.pem",
    "OXIDICOM_LOG_LEVEL": "debug",
    "OXIDICOM_LOG_FORMAT": "json",
    "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4317",
    "OTEL_RESOURCE_ATTRIBUTES": "a=1,b=x%2Cy",
    "OTEL_SERVICE_NAME": "oxi",
}


def test_full_env_sets_every_variable() -> None:
    assert set(FULL_ENV) == {variable.name for variable in variables()}
    assert Settings.from_env(FULL_ENV) != settings()


@pytest.mark.parametrize("env", [REQUIRED, FULL_ENV])
def test_to_env_round_trip(env: dict[str, str]) -> None:
    s = Settings.from_env(env)
    assert Settings.from_env(s.to_env(redact=False)) == s


def test_to_env_redacts_passwords() -> None:
    env = Settings.from_env(FULL_ENV).to_env()
    assert env["OXIDICOM_AMQP_ADDRESS"] == "amqp://user:***@rabbit:5672/vh"
    assert env["OXIDICOM_NATS_ADDRESS"] == "nats://u:***@nats:4222"
    assert env["OXIDICOM_IDLE_TIMEOUT"] == "1h 2m"
    assert env["OXIDICOM_ALLOWED_PEERS"] == "10.0.0.0/8,::1/128"
    assert env["OXIDICOM_LOG_LEVEL"] == "debug"
    assert env["OXIDICOM_FSYNC"] == "true"


def test_to_env_leaves_out_unset_settings() -> None:
    env = settings().to_env()
    assert "OXIDICOM_NATS_ADDRESS" not in env
    assert "OXIDICOM_TLS_CERT" not in env
    assert env["OXIDICOM_PROGRESS_INTERVAL"] == "500ms"


def test_no_warnings_for_a_clean_environment() -> None:
    assert environment_warnings({**FULL_ENV, "OXIDICOM_DEV_SLEEP": "", "PATH": "/bin"}) == []


def test_warnings() -> None:
    assert environment_warnings(
        {
            "RUST_LOG": "oxidicom=info",
            "TOKIO_WORKER_THREADS": "4",
            "OXIDICOM_DEV_SLEEP": " 1s ",
            "OXIDICOM_SCP_AE_TITLE": "X",
            "OXIDICOM_FROBNICATE": "1",
        }
    ) == [
        "TOKIO_WORKER_THREADS is ignored (it configured the Rust oxidicom); set "
        "OXIDICOM_WRITER_THREADS (threads writing files) and OXIDICOM_WORKERS (processes "
        "sharing the port) instead",
        "RUST_LOG is ignored (it configured the Rust oxidicom); set OXIDICOM_LOG_LEVEL (debug, "
        "info, warning or error) instead",
        "OXIDICOM_DEV_SLEEP=1s slows down progress messages on purpose: for development only",
        "OXIDICOM_FROBNICATE is not a setting of oxidicom and is ignored",
        "OXIDICOM_SCP_AE_TITLE is not a setting of oxidicom and is ignored; did you mean "
        "OXIDICOM_SCP_AET?",
    ]


def test_warnings_read_os_environ_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUST_LOG", "debug")
    assert any(w.startswith("RUST_LOG is ignored") for w in environment_warnings())


def test_every_variable_is_documented() -> None:
    names = [variable.name for variable in variables()]
    assert len(names) == len(set(names))
    for variable in variables():
        assert re.fullmatch(r"(OXIDICOM|OTEL)_[A-Z_]+", variable.name)
        assert len(variable.doc) > 20, variable.name
        assert variable.default_text
        assert not variable.required or variable.example


# The table of section 1 of the CUBE contract: variable and default.
CONTRACT_DEFAULTS = {
    "OXIDICOM_AMQP_ADDRESS": "required",
    "OXIDICOM_FILES_ROOT": "required",
    "OXIDICOM_QUEUE_NAME": "`main2`",
    "OXIDICOM_NATS_ADDRESS": "unset",
    "OXIDICOM_PROGRESS_INTERVAL": "`500ms`",
    "OXIDICOM_ROOT_SUBJECT": "`oxidicom`",
    "OXIDICOM_SCP_AET": "`ChRIS`",
    "OXIDICOM_SCP_STRICT": "`false`",
    "OXIDICOM_SCP_UNCOMPRESSED_ONLY": "`false`",
    "OXIDICOM_SCP_PROMISCUOUS": "`false`",
    "OXIDICOM_SCP_MAX_PDU_LENGTH": "`16384`",
    "OXIDICOM_LISTENER_THREADS": "`8`",
    "OXIDICOM_LISTENER_PORT": "`11111`",
    "OXIDICOM_DEV_SLEEP": "unset",
    "OTEL_EXPORTER_OTLP_ENDPOINT": "unset",
    "OTEL_RESOURCE_ATTRIBUTES": "unset",
}


def test_table_has_a_row_per_variable_with_the_contract_defaults() -> None:
    table = settings_table_markdown()
    rows = {}
    for line in table.splitlines()[2:]:
        if not line.startswith("| "):
            break
        name, default, meaning = (cell.strip() for cell in line.strip("|").split(" | "))
        rows[name.strip("`")] = default
        assert meaning
    assert list(rows) == [variable.name for variable in variables()]
    assert {name: rows[name] for name in CONTRACT_DEFAULTS} == CONTRACT_DEFAULTS
    assert "`RUST_LOG`" in table
    assert "`TOKIO_WORKER_THREADS`" in table
