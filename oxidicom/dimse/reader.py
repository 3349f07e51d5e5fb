"""Turns the Upper Layer's PDV chunks into DIMSE messages, sans-IO.

A command set is small: its fragments are reassembled, up to ``max_command_length``. A data
set can be any size: its chunks are passed straight through (the very ``PDataChunk`` and
``PDataRun`` objects, so the hot path allocates nothing), for the consumer to stream to disk.

PS3.7 §9.3.1 / PS3.8 Annex E ordering is checked here: a data set only after a command that
announced one, on the same presentation context, and no command while a data set is due.
A violation is returned as :class:`ProtocolViolation`; the caller aborts the association.
"""

from __future__ import annotations

from typing import Final, TypeAlias

import attrs

from oxidicom.dimse.command import CommandError
from oxidicom.dimse.messages import Message, decode_message, has_data_set
from oxidicom.ul.events import PDataChunk, PDataRun

DEFAULT_MAX_COMMAND_LENGTH: Final = 64 * 1024
"""A real command set is a few hundred bytes; this bounds what a peer can make us hold."""


@attrs.frozen
class CommandReceived:
    """A complete command set. If ``has_data_set``, the data set's chunks come next."""

    context_id: int
    message: Message
    has_data_set: bool


@attrs.frozen
class CommandUndecodable:
    """A command set arrived whole but could not be typed; ``error`` says what is known."""

    context_id: int
    error: CommandError


@attrs.frozen
class ProtocolViolation:
    """The peer broke DIMSE's message structure; the association must be aborted."""

    detail: str


DimseEvent: TypeAlias = CommandReceived | CommandUndecodable | PDataChunk | ProtocolViolation


class MessageReader:
    """Feed every :class:`PDataChunk` of an association to :meth:`feed` (and every
    :class:`~oxidicom.ul.events.PDataRun` to :meth:`feed_run`), in order."""

    __slots__ = ("_command", "_command_context", "_data_context", "_max_command_length")

    def __init__(self, max_command_length: int = DEFAULT_MAX_COMMAND_LENGTH) -> None:
        self._command = bytearray()
        self._command_context: int | None = None
        self._data_context: int | None = None
        """Set while a data set is due or arriving: the context it must come on."""
        self._max_command_length = max_command_length

    @property
    def expecting_data_set(self) -> bool:
        return self._data_context is not None

    def feed(self, chunk: PDataChunk) -> DimseEvent | None:
        """The event this chunk completes, or ``None`` while a command is incomplete."""
        if not chunk.is_command:
            if self._data_context == chunk.context_id:
                if chunk.is_last:
                    self._data_context = None
                return chunk
            return self._misplaced_data(chunk.context_id)
        if self._data_context is not None:
            return ProtocolViolation("command fragment while a data set was expected")
        if self._command_context is not None and chunk.context_id != self._command_context:
            return ProtocolViolation(
                f"command fragment on presentation context {chunk.context_id} in the middle "
                f"of a command on {self._command_context}"
            )
        if len(self._command) + len(chunk.data) > self._max_command_length:
            return ProtocolViolation(f"command set longer than {self._max_command_length} bytes")
        self._command += chunk.data
        self._command_context = chunk.context_id
        if not chunk.is_last:
            return None
        raw = bytes(self._command)
        self._command.clear()
        self._command_context = None
        try:
            message = decode_message(raw)
        except CommandError as error:
            if error.has_data_set:
                self._data_context = chunk.context_id
            elif error.has_data_set is None:
                return ProtocolViolation(f"undecodable command set: {error}")
            return CommandUndecodable(chunk.context_id, error)
        with_data = has_data_set(message)
        if with_data:
            self._data_context = chunk.context_id
        return CommandReceived(chunk.context_id, message, with_data)

    def feed_run(self, run: PDataRun) -> PDataRun | ProtocolViolation:
        """The run itself when it continues the data set that is due, else the violation."""
        if self._data_context == run.context_id:
            if run.is_last:
                self._data_context = None
            return run
        return self._misplaced_data(run.context_id)

    def _misplaced_data(self, context_id: int) -> ProtocolViolation:
        if self._data_context is None:
            return ProtocolViolation("data set fragment without a command announcing one")
        return ProtocolViolation(
            f"data set fragment on presentation context {context_id}, but its "
            f"command came on {self._data_context}"
        )
