"""oxidicom's configuration, read once at start-up from environment variables.

Each setting is a field of a frozen attrs class whose metadata names its
variable, its default (as the text one would write in the environment) and
what it means. That metadata is the one source of truth for parsing, for the
error messages and for the README table (:func:`settings_table_markdown`).

Values are parsed by a cattrs converter whose hooks understand the text of
environment variables: humantime durations, ``true/false/1/0/yes/no`` in any
case, integers within a range, AE titles, comma-separated lists. An empty
variable counts as unset, as compose files and Helm charts often write them.

All bad variables are reported at once: :class:`SettingsError` has one line
per problem, each naming its variable, so a deployment is fixed in one go.
"""

import abc
import difflib
import ipaddress
import logging
import os
import re
import urllib.parse
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Annotated, Any, get_args, get_origin

import attrs
import cattrs
from cattrs.errors import ClassValidationError

from oxidicom.humantime import format_duration, parse_duration
from oxidicom.logs import LogFormat

__all__ = [
    "CubeSettings",
    "ListenerSettings",
    "LogSettings",
    "PeerNetwork",
    "ScpSettings",
    "Settings",
    "SettingsError",
    "StorageSettings",
    "TelemetrySettings",
    "TlsSettings",
    "Variable",
    "environment_warnings",
    "settings_table_markdown",
    "variables",
]

PeerNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class SettingsError(ValueError):
    """Bad configuration: ``str()`` is one line per problem, each naming its variable."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = tuple(problems)


# --- Metadata of a setting

_VARIABLE = "oxidicom.variable"


@attrs.frozen
class Variable:
    """The environment variable of one setting, and its documentation."""

    name: str
    doc: str
    default: str | None = None
    """Text used when the variable is unset; None: the setting is unset too."""
    required: bool = False
    example: str | None = None
    """What to set, shown when a required variable is missing."""
    default_doc: str | None = None
    """The default column of the table, when it is not simply ``default``."""
    secret: bool = False
    """Passwords in the value (URL user info) are masked in messages and descriptions."""

    @property
    def default_text(self) -> str:
        if self.required:
            return "required"
        if self.default_doc is not None:
            return self.default_doc
        return "unset" if self.default is None else f"`{self.default}`"


def _env(
    name: str,
    doc: str,
    default: str | None = None,
    *,
    required: bool = False,
    example: str | None = None,
    default_doc: str | None = None,
    secret: bool = False,
) -> dict[str, Variable]:
    return {_VARIABLE: Variable(name, doc, default, required, example, default_doc, secret)}


# --- Parsers of environment text, used as Annotated[...] markers


class _Text(abc.ABC):
    """Parses the text of a variable into a value, and writes a value back as text."""

    @abc.abstractmethod
    def parse(self, text: str) -> Any: ...

    def format(self, value: Any) -> str:
        return str(value)


@attrs.frozen
class _IntRange(_Text):
    low: int
    high: int

    def parse(self, text: str) -> int:
        if not re.fullmatch(r"[0-9]+", text) or not self.low <= int(text) <= self.high:
            raise ValueError(f"expected an integer from {self.low} to {self.high}, got {text!r}")
        return int(text)


@attrs.frozen
class _Duration(_Text):
    positive: bool = False

    def parse(self, text: str) -> float:
        try:
            seconds = parse_duration(text)
        except ValueError as e:
            raise ValueError(
                f"expected a duration such as 500ms, 30s or 1m 30s, got {text!r} ({e})"
            ) from None
        if self.positive and seconds <= 0:
            raise ValueError(f"expected a duration above 0s, got {text!r}")
        return seconds

    def format(self, value: Any) -> str:
        return format_duration(value)


@attrs.frozen
class _Choice(_Text):
    choices: tuple[tuple[str, object], ...]  # (lowercase name, value); hashable for Annotated

    def parse(self, text: str) -> object:
        for name, value in self.choices:
            if text.lower() == name:
                return value
        expected = ", ".join(name for name, _ in self.choices)
        raise ValueError(f"expected one of {expected}, got {text!r}")

    def format(self, value: Any) -> str:
        return next(name for name, choice in self.choices if choice == value)


_AE_TITLE_CHARS = frozenset(chr(c) for c in range(0x20, 0x7F)) - {"\\"}


@attrs.frozen
class _AeTitle(_Text):
    """1 to 16 characters of the DICOM default repertoire, no backslash; spaces around are
    not significant (PS3.5 6.2)."""

    def parse(self, text: str) -> str:
        title = text.strip(" ")
        if not title:
            raise ValueError(f"{text!r} is not an AE title: it is blank")
        if len(title) > 16:
            raise ValueError(f"{text!r} is not an AE title: longer than 16 characters")
        if not set(title) <= _AE_TITLE_CHARS:
            raise ValueError(
                f"{text!r} is not an AE title: only printable ASCII characters other than "
                "backslash are allowed"
            )
        return title


@attrs.frozen
class _CommaList(_Text):
    item: _Text

    def parse(self, text: str) -> tuple[object, ...]:
        return tuple(self.item.parse(part.strip()) for part in text.split(",") if part.strip())

    def format(self, value: Any) -> str:
        return ",".join(self.item.format(item) for item in value)


@attrs.frozen
class _IpNetwork(_Text):
    def parse(self, text: str) -> PeerNetwork:
        try:
            return ipaddress.ip_network(text)
        except ValueError as e:
            raise ValueError(
                f"{text!r} is not an IP address or network such as 192.168.1.7 or 10.0.0.0/8 ({e})"
            ) from None


def _redact_url(text: str) -> str:
    """``text`` with the password of its user info, if any, replaced by ``***``."""
    return re.sub(r"(//[^/@:]*:)[^/@]*@", r"\1***@", text)


@attrs.frozen
class _AmqpUrl(_Text):
    def parse(self, text: str) -> str:
        error = ValueError(
            "expected an AMQP URL such as amqp://guest:guest@localhost:5672, "
            f"got {_redact_url(text)!r}"
        )
        try:
            parts = urllib.parse.urlsplit(text)
            _ = parts.port  # raises on a bad port
        except ValueError:
            raise error from None
        if parts.scheme not in ("amqp", "amqps") or not parts.hostname:
            raise error
        return text


@attrs.frozen
class _NatsUrl(_Text):
    """``host``, ``host:port`` or ``nats://host:port`` (the Rust program's syntax), as the
    URL nats-py wants: ``nats://host:4222``."""

    def parse(self, text: str) -> str:
        url = text if "://" in text else f"nats://{text}"
        error = ValueError(f"expected host:port or nats://host:port, got {_redact_url(text)!r}")
        try:
            parts = urllib.parse.urlsplit(url)
            port = parts.port
        except ValueError:
            raise error from None
        if parts.scheme not in ("nats", "tls") or not parts.hostname or parts.path not in ("", "/"):
            raise error
        if parts.query or parts.fragment:
            raise error
        netloc = parts.netloc if port is not None else f"{parts.netloc}:4222"
        return f"{parts.scheme}://{netloc}"


_HOST_NAME = re.compile(
    r"(?=.{1,253}\.?$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?"
)


@attrs.frozen
class _Host(_Text):
    def parse(self, text: str) -> str:
        host = text[1:-1] if text.startswith("[") and text.endswith("]") else text
        try:
            return str(ipaddress.ip_address(host))
        except ValueError:
            pass
        if not _HOST_NAME.fullmatch(host):
            raise ValueError(f"expected an IP address such as 0.0.0.0 or ::, got {text!r}")
        return host


@attrs.frozen
class _Token(_Text):
    """A NATS subject prefix: dot-separated tokens, no spaces or wildcards."""

    def parse(self, text: str) -> str:
        tokens = text.split(".")
        if any(not t or any(c.isspace() or c in "*>" for c in t) for t in tokens):
            raise ValueError(
                "expected NATS subject tokens separated by dots, without spaces, "
                f"'*' or '>', got {text!r}"
            )
        return text


@attrs.frozen
class _QueueName(_Text):
    def parse(self, text: str) -> str:
        if len(text.encode()) > 255:
            raise ValueError(f"expected a queue name of at most 255 bytes, got {text!r}")
        return text


@attrs.frozen
class _KeyValues(_Text):
    """W3C-baggage-like ``key=value,key=value`` with percent-encoding, as OpenTelemetry
    specifies for OTEL_RESOURCE_ATTRIBUTES."""

    def parse(self, text: str) -> tuple[tuple[str, str], ...]:
        pairs = []
        for item in filter(None, (part.strip() for part in text.split(","))):
            key, equals, value = item.partition("=")
            if not equals or not key.strip():
                raise ValueError(f"expected key=value pairs separated by commas, got {item!r}")
            pairs.append((urllib.parse.unquote(key.strip()), urllib.parse.unquote(value.strip())))
        return tuple(pairs)

    def format(self, value: Any) -> str:
        return ",".join(
            f"{urllib.parse.quote(k, safe='')}={urllib.parse.quote(v, safe='')}" for k, v in value
        )


_TRUE = frozenset({"true", "1", "yes"})
_FALSE = frozenset({"false", "0", "no"})


def _parse_bool(text: str, _: object) -> bool:
    if text.lower() in _TRUE:
        return True
    if text.lower() in _FALSE:
        return False
    raise ValueError(f"expected true or false (or 1/0, yes/no), got {text!r}")


def _parse_path(text: str, _: object) -> Path:
    if "\0" in text:
        raise ValueError(f"a path cannot contain NUL: {text!r}")
    return Path(text)


def _marker(type_: object) -> _Text | None:
    if get_origin(type_) is Annotated:
        return next((m for m in type_.__metadata__ if isinstance(m, _Text)), None)  # type: ignore[attr-defined]
    return None


def _make_converter() -> cattrs.Converter:
    converter = cattrs.Converter(detailed_validation=True)
    converter.register_structure_hook(bool, _parse_bool)
    converter.register_structure_hook(Path, _parse_path)

    def annotated_hook(type_: object) -> Callable[[str, object], object]:
        marker = _marker(type_)
        assert marker is not None
        return lambda text, _: marker.parse(text)

    converter.register_structure_hook_factory(lambda t: _marker(t) is not None, annotated_hook)
    return converter


_CONVERTER = _make_converter()

Seconds = Annotated[float, _Duration()]
PositiveSeconds = Annotated[float, _Duration(positive=True)]
AeTitle = Annotated[str, _AeTitle()]

_LOG_LEVELS = (
    ("debug", logging.DEBUG),
    ("info", logging.INFO),
    ("warning", logging.WARNING),
    ("error", logging.ERROR),
)
_EVENT_LOOPS = (("auto", "auto"), ("asyncio", "asyncio"), ("uvloop", "uvloop"))
_LOG_FORMATS = (("text", "text"), ("json", "json"))


# --- The settings


@attrs.frozen(kw_only=True)
class CubeSettings:
    """How to reach CUBE: Celery tasks over AMQP, progress messages over NATS."""

    amqp_address: Annotated[str, _AmqpUrl()] = attrs.field(
        metadata=_env(
            "OXIDICOM_AMQP_ADDRESS",
            "AMQP URL of the RabbitMQ that CUBE's Celery workers consume, e.g. "
            "`amqp://guest:guest@localhost:5672` (`amqp://localhost:5672` means user and "
            "password `guest`)",
            required=True,
            example="AMQP URL of CUBE's RabbitMQ, e.g. amqp://guest:guest@localhost:5672",
            secret=True,
        )
    )
    queue_name: Annotated[str, _QueueName()] = attrs.field(
        metadata=_env(
            "OXIDICOM_QUEUE_NAME", "queue of CUBE's `register_pacs_series` Celery task", "main2"
        )
    )
    nats_address: Annotated[str, _NatsUrl()] | None = attrs.field(
        metadata=_env(
            "OXIDICOM_NATS_ADDRESS",
            "NATS server for progress messages, e.g. `localhost:4222` or "
            "`nats://localhost:4222`; unset = no progress messages",
            secret=True,
        )
    )
    progress_interval: Seconds = attrs.field(
        metadata=_env(
            "OXIDICOM_PROGRESS_INTERVAL",
            "minimum delay between two optional progress messages of one series; humantime "
            "syntax: `5ms`, `2s`, `1m 30s`, `1.5s`",
            "500ms",
        )
    )
    root_subject: Annotated[str, _Token()] = attrs.field(
        metadata=_env("OXIDICOM_ROOT_SUBJECT", "first token of every NATS subject", "oxidicom")
    )
    dev_sleep: Seconds | None = attrs.field(
        metadata=_env(
            "OXIDICOM_DEV_SLEEP",
            "sleep between two NATS messages (development only; a warning is logged when set)",
        )
    )


def _default_outbox(storage: "StorageSettings") -> Path:
    return storage.files_root / ".oxidicom" / "outbox"


@attrs.frozen(kw_only=True)
class StorageSettings:
    """Where and how DICOM files are written."""

    files_root: Path = attrs.field(
        metadata=_env(
            "OXIDICOM_FILES_ROOT",
            "directory where CUBE's storage is mounted",
            required=True,
            example="directory where CUBE's storage is mounted, e.g. /data",
        )
    )
    fsync: bool = attrs.field(
        metadata=_env(
            "OXIDICOM_FSYNC",
            "flush each file and its directory to disk before it counts as stored "
            "(slower; survives a power loss)",
            "false",
        )
    )
    writer_threads: Annotated[int, _IntRange(0, 256)] = attrs.field(
        metadata=_env(
            "OXIDICOM_WRITER_THREADS",
            "threads for blocking file work; `0` = write instance files and outbox entries "
            "on the event loop (the outbox flushes its entries to disk in a thread of its own)",
            "0",
        )
    )
    outbox_dir: Path = attrs.field(
        default=attrs.Factory(_default_outbox, takes_self=True),
        metadata=_env(
            "OXIDICOM_OUTBOX_DIR",
            "directory of the messages to CUBE not delivered yet; replicas on one "
            "`OXIDICOM_FILES_ROOT` share it",
            default_doc="`{FILES_ROOT}/.oxidicom/outbox`",
        ),
    )


@attrs.frozen(kw_only=True)
class ScpSettings:
    """What the DICOM Storage SCP accepts."""

    aet: AeTitle = attrs.field(
        metadata=_env(
            "OXIDICOM_SCP_AET",
            "our AE title (PACS push to this name)",
            "ChRIS",
        )
    )
    strict: bool = attrs.field(
        metadata=_env(
            "OXIDICOM_SCP_STRICT",
            "reject (abort) any received PDU longer than our maximum PDU length",
            "false",
        )
    )
    uncompressed_only: bool = attrs.field(
        metadata=_env(
            "OXIDICOM_SCP_UNCOMPRESSED_ONLY",
            "accept only Implicit VR Little Endian and Explicit VR Little Endian",
            "false",
        )
    )
    promiscuous: bool = attrs.field(
        metadata=_env(
            "OXIDICOM_SCP_PROMISCUOUS", "accept abstract syntaxes we do not know", "false"
        )
    )
    max_pdu_length: Annotated[int, _IntRange(4096, 16_777_216)] = attrs.field(
        metadata=_env(
            "OXIDICOM_SCP_MAX_PDU_LENGTH",
            "our Maximum Length Received, from 4096 to 16777216 bytes",
            "16384",
        )
    )
    check_called_aet: bool = attrs.field(
        metadata=_env(
            "OXIDICOM_CHECK_CALLED_AET",
            "reject associations whose called AE title is not `OXIDICOM_SCP_AET`",
            "false",
        )
    )
    allowed_calling_aets: Annotated[tuple[str, ...], _CommaList(_AeTitle())] = attrs.field(
        metadata=_env(
            "OXIDICOM_ALLOWED_CALLING_AETS",
            "comma-separated calling AE titles to accept; empty = all",
            "",
            default_doc="empty",
        )
    )
    artim_timeout: PositiveSeconds = attrs.field(
        metadata=_env(
            "OXIDICOM_ARTIM_TIMEOUT",
            "how long to wait for the A-ASSOCIATE-RQ of a new connection, and for the peer "
            "to close after a release or abort",
            "30s",
        )
    )
    idle_timeout: Seconds = attrs.field(
        metadata=_env(
            "OXIDICOM_IDLE_TIMEOUT",
            "abort an established association whose peer sends nothing for this long when "
            "it is its turn (counted from the last PDU either way, and not while the receiver "
            "waits on its disk); `0s` = never",
            "60s",
        )
    )

    def accepts_calling_aet(self, aet: str) -> bool:
        """Whether an association from calling AE title ``aet`` may proceed."""
        return not self.allowed_calling_aets or aet.strip(" ") in self.allowed_calling_aets

    def accepts_called_aet(self, aet: str) -> bool:
        """Whether an association to called AE title ``aet`` may proceed."""
        return not self.check_called_aet or aet.strip(" ") == self.aet


@attrs.frozen(kw_only=True)
class ListenerSettings:
    """The TCP listener: where, how many connections, from whom."""

    address: Annotated[str, _Host()] = attrs.field(
        metadata=_env(
            "OXIDICOM_LISTENER_ADDRESS",
            "IP address to listen on; `::` for all IPv6 and IPv4 addresses",
            "0.0.0.0",  # noqa: S104 (listening on every address is the point of a receiver)
        )
    )
    port: Annotated[int, _IntRange(0, 65535)] = attrs.field(
        metadata=_env("OXIDICOM_LISTENER_PORT", "TCP port; `0` = any free port", "11111")
    )
    max_connections: Annotated[int, _IntRange(1, 65535)] = attrs.field(
        metadata=_env(
            "OXIDICOM_LISTENER_THREADS",
            "the most SCU connections served at once, in each worker process",
            "8",
        )
    )
    slot_wait_timeout: Seconds = attrs.field(
        metadata=_env(
            "OXIDICOM_SLOT_WAIT_TIMEOUT",
            "how long a connection beyond `OXIDICOM_LISTENER_THREADS` waits for a free slot "
            "before it is rejected (A-ASSOCIATE-RJ transient, local limit exceeded); below "
            "the 30 s association timeout of DCMTK and pynetdicom, so they hear the answer",
            "20s",
        )
    )
    slot_wait_queue: Annotated[int, _IntRange(0, 65535)] = attrs.field(
        metadata=_env(
            "OXIDICOM_SLOT_WAIT_QUEUE",
            "the most connections waiting for a free slot; more are rejected at once",
            "256",
        )
    )
    max_associations_per_peer: Annotated[int, _IntRange(0, 65535)] = attrs.field(
        metadata=_env(
            "OXIDICOM_MAX_ASSOCIATIONS_PER_PEER",
            "the most associations served at once from one IP address, more are rejected "
            "(A-ASSOCIATE-RJ transient, local limit exceeded), and connections from it "
            "beyond twice as many are closed at once; `0` = no limit (PACS open several "
            "associations at once, and NAT may put many behind one address)",
            "0",
        )
    )
    connection_limit: Annotated[int, _IntRange(1, 1_000_000)] = attrs.field(
        metadata=_env(
            "OXIDICOM_MAX_CONNECTIONS",
            "the most TCP connections open at once in each worker process, associated or "
            "not (waiting for a slot, or not yet past the A-ASSOCIATE-RQ); more are closed "
            "at once. Each holds a file descriptor, and up to 1 MiB of an unfinished request "
            "until the ARTIM timeout",
            "1024",
        )
    )
    allowed_peers: Annotated[tuple[PeerNetwork, ...], _CommaList(_IpNetwork())] = attrs.field(
        metadata=_env(
            "OXIDICOM_ALLOWED_PEERS",
            "comma-separated IP addresses and networks (e.g. `10.0.0.0/8`) allowed to "
            "connect; empty = all",
            "",
            default_doc="empty",
        )
    )
    workers: Annotated[int, _IntRange(1, 256)] = attrs.field(
        metadata=_env(
            "OXIDICOM_WORKERS",
            "processes sharing the TCP port (one listening socket; the least busy takes each "
            "connection)",
            "1",
        )
    )
    event_loop: Annotated[str, _Choice(_EVENT_LOOPS)] = attrs.field(
        metadata=_env(
            "OXIDICOM_EVENT_LOOP",
            "`auto` (uvloop when the `oxidicom[uvloop]` extra is installed, else asyncio's own), "
            "`asyncio` or `uvloop`",
            "auto",
        )
    )
    shutdown_grace: Seconds = attrs.field(
        metadata=_env(
            "OXIDICOM_SHUTDOWN_GRACE",
            "on SIGTERM or SIGINT, how long running associations may go on before they are aborted",
            "30s",
        )
    )

    def accepts_peer(self, address: str) -> bool:
        """Whether a connection from IP ``address`` may proceed.

        An IPv4-mapped IPv6 address (``::ffff:10.1.2.3``, seen when listening on ``::``)
        is also checked as the IPv4 address it maps.
        """
        if not self.allowed_peers:
            return True
        ip = ipaddress.ip_address(address.partition("%")[0])
        candidates = [ip]
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            candidates.append(ip.ipv4_mapped)
        return any(
            candidate in network
            for candidate in candidates
            for network in self.allowed_peers
            if candidate.version == network.version
        )


@attrs.frozen(kw_only=True)
class TlsSettings:
    """DICOM over TLS (PS3.15 B.1): off unless a certificate and its key are given."""

    cert: Path | None = attrs.field(
        metadata=_env(
            "OXIDICOM_TLS_CERT",
            "PEM certificate (chain) file; with `OXIDICOM_TLS_KEY`, the listener speaks TLS",
        )
    )
    key: Path | None = attrs.field(
        metadata=_env("OXIDICOM_TLS_KEY", "PEM private key file of `OXIDICOM_TLS_CERT`")
    )
    ca: Path | None = attrs.field(
        metadata=_env(
            "OXIDICOM_TLS_CA",
            "PEM file of CA certificates; when set, clients must present a certificate "
            "signed by one of them",
        )
    )

    def __attrs_post_init__(self) -> None:
        if (self.cert is None) != (self.key is None):
            raise ValueError("OXIDICOM_TLS_CERT and OXIDICOM_TLS_KEY must be set together")
        if self.ca is not None and self.cert is None:
            raise ValueError("OXIDICOM_TLS_CA needs OXIDICOM_TLS_CERT and OXIDICOM_TLS_KEY")

    @property
    def enabled(self) -> bool:
        return self.cert is not None


@attrs.frozen(kw_only=True)
class LogSettings:
    """Log records on stderr; ``level`` is a :mod:`logging` level number."""

    level: Annotated[int, _Choice(_LOG_LEVELS)] = attrs.field(
        metadata=_env("OXIDICOM_LOG_LEVEL", "`debug`, `info`, `warning` or `error`", "info")
    )
    format: Annotated[LogFormat, _Choice(_LOG_FORMATS)] = attrs.field(
        metadata=_env(
            "OXIDICOM_LOG_FORMAT",
            "`text` (for people) or `json` (one object per line, for log collectors)",
            "text",
        )
    )


@attrs.frozen(kw_only=True)
class TelemetrySettings:
    """OpenTelemetry trace export, with the variables the OpenTelemetry SDKs use."""

    otlp_endpoint: str | None = attrs.field(
        metadata=_env(
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            "OpenTelemetry collector gRPC endpoint, e.g. `http://localhost:4317`; unset = "
            "no traces are exported",
        )
    )
    resource_attributes: Annotated[tuple[tuple[str, str], ...], _KeyValues()] = attrs.field(
        metadata=_env(
            "OTEL_RESOURCE_ATTRIBUTES",
            "resource attributes of the traces, e.g. `service.name=oxidicom-test` "
            "(`service.name` is `oxidicom` unless set here or in `OTEL_SERVICE_NAME`)",
            "",
            default_doc="unset",
        )
    )
    service_name: str | None = attrs.field(
        metadata=_env(
            "OTEL_SERVICE_NAME",
            "`service.name` of the traces; wins over `OTEL_RESOURCE_ATTRIBUTES`",
        )
    )

    def resource(self) -> dict[str, str]:
        """The resource attributes, with ``service.name`` resolved."""
        attributes = dict(self.resource_attributes)
        attributes.setdefault("service.name", "oxidicom")
        if self.service_name is not None:
            attributes["service.name"] = self.service_name
        return attributes


@attrs.frozen(kw_only=True)
class Settings:
    """All of oxidicom's configuration, read with :meth:`from_env`.

    The groups follow the parts of the receiver that use them; the variable
    names stay flat (``OXIDICOM_*``, ``OTEL_*``) as deployments already write them.
    """

    cube: CubeSettings
    storage: StorageSettings
    scp: ScpSettings
    listener: ListenerSettings
    tls: TlsSettings
    log: LogSettings
    telemetry: TelemetrySettings

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "Settings":
        """Read the settings from ``env`` (default: ``os.environ``).

        Raises :class:`SettingsError` naming every bad or missing variable.
        """
        raw = _raw_values(cls, os.environ if env is None else env)
        try:
            return _CONVERTER.structure(raw, cls)
        except ClassValidationError as e:
            raise SettingsError(_problems(e)) from None

    def to_env(self, *, redact: bool = True) -> dict[str, str]:
        """The settings as environment variables, e.g. to log them at start-up.

        Unset settings are left out. With ``redact``, passwords in URLs are masked;
        without, ``Settings.from_env(settings.to_env(redact=False)) == settings``.
        """
        env = {}
        for attribute, variable, value in _leaves(self):
            text = "" if value is None else _format(attribute.type, value)
            if text:
                env[variable.name] = _redact_url(text) if redact and variable.secret else text
        return env


# --- Reading, error reporting, documentation


def _is_group(attribute: "attrs.Attribute[Any]") -> bool:
    return _VARIABLE not in attribute.metadata


def _raw_values(cls: type, env: Mapping[str, str]) -> dict[str, object]:
    raw: dict[str, object] = {}
    for attribute in attrs.fields(cls):
        if _is_group(attribute):
            raw[attribute.name] = _raw_values(attribute.type, env)
            continue
        variable: Variable = attribute.metadata[_VARIABLE]
        text = env.get(variable.name, "").strip()
        if text:
            raw[attribute.name] = text
        elif not variable.required and attribute.default is attrs.NOTHING:
            raw[attribute.name] = variable.default
        # else: left out, for cattrs to report as missing or for attrs to default.
    return raw


def _problems(error: ClassValidationError) -> list[str]:
    problems: list[str] = []
    with_notes, without_notes = error.group_exceptions()
    attributes = attrs.fields_dict(error.cl)
    for exception, note in with_notes:
        variable = attributes[note.name].metadata.get(_VARIABLE)
        if isinstance(exception, ClassValidationError):
            problems.extend(_problems(exception))
        elif isinstance(exception, KeyError) and variable is not None and variable.required:
            problems.append(f"{variable.name} is required ({variable.example})")
        elif isinstance(exception, ValueError) and variable is not None:
            problems.append(f"{variable.name}: {exception}")
        else:
            raise exception
    for exception in without_notes:
        # A check of the whole group (TLS); its message names the variables.
        if not isinstance(exception, ValueError):
            raise exception
        problems.append(str(exception))
    return problems


def _leaves(
    obj: attrs.AttrsInstance,
) -> Iterator[tuple["attrs.Attribute[Any]", Variable, Any]]:
    for attribute in attrs.fields(type(obj)):
        value = getattr(obj, attribute.name)
        if _is_group(attribute):
            yield from _leaves(value)
        else:
            yield attribute, attribute.metadata[_VARIABLE], value


def _format(type_: object, value: object) -> str:
    if get_origin(type_) is not Annotated:
        # X | None: the value is not None here, so format it as X.
        args = [arg for arg in get_args(type_) if arg is not type(None)]
        type_ = args[0] if args else type_
    marker = _marker(type_)
    if marker is not None:
        return marker.format(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def variables(cls: type = Settings) -> list[Variable]:
    """Every environment variable of ``cls``, in the order of its fields."""
    found = []
    for attribute in attrs.fields(cls):
        if _is_group(attribute):
            found.extend(variables(attribute.type))
        else:
            found.append(attribute.metadata[_VARIABLE])
    return found


# The Rust program's variables that have no meaning here, and what replaces them.
_RUST_ONLY = {
    "TOKIO_WORKER_THREADS": "set OXIDICOM_WRITER_THREADS (threads writing files) and "
    "OXIDICOM_WORKERS (processes sharing the port) instead",
    "RUST_LOG": "set OXIDICOM_LOG_LEVEL (debug, info, warning or error) instead",
}


def environment_warnings(env: Mapping[str, str] | None = None) -> list[str]:
    """Warnings about ``env`` (default: ``os.environ``) that do not stop oxidicom.

    The Rust program's variables that mean nothing here, OXIDICOM_DEV_SLEEP, and
    ``OXIDICOM_*`` variables that are no setting (probably typos).
    """
    env = os.environ if env is None else env
    known = {variable.name for variable in variables()}
    warnings = []
    for name, replacement in _RUST_ONLY.items():
        if name in env:
            warnings.append(f"{name} is ignored (it configured the Rust oxidicom); {replacement}")
    if env.get("OXIDICOM_DEV_SLEEP", "").strip():
        warnings.append(
            f"OXIDICOM_DEV_SLEEP={env['OXIDICOM_DEV_SLEEP'].strip()} slows down progress "
            "messages on purpose: for development only"
        )
    for name in sorted(env):
        if name.startswith("OXIDICOM_") and name not in known:
            close = difflib.get_close_matches(name, known, n=1, cutoff=0.8)
            hint = f"; did you mean {close[0]}?" if close else ""
            warnings.append(f"{name} is not a setting of oxidicom and is ignored{hint}")
    return warnings


def settings_table_markdown() -> str:
    """The README table of every variable: name, default, meaning."""
    lines = ["| variable | default | meaning |", "|---|---|---|"]
    lines.extend(
        f"| `{variable.name}` | {variable.default_text} | {variable.doc} |"
        for variable in variables()
    )
    lines.append("")
    lines.append(
        "Booleans accept `true/false/1/0/yes/no` in any case; durations use the humantime "
        "syntax of the Rust oxidicom (`5ms`, `2s`, `1m 30s`) and decimal fractions "
        "(`1.5s`); an empty variable counts as unset."
    )
    for name, replacement in _RUST_ONLY.items():
        lines.append("")
        lines.append(f"`{name}` of the Rust oxidicom is ignored with a warning: {replacement}.")
    return "\n".join(lines) + "\n"
