"""Servers sharing one listening socket: each connection goes to the least busy.

Two :class:`DicomServer` on one event loop, each with its own descriptor of the same socket
and its own place on one load board, stand in for two worker processes: both are woken for
every connection, as two processes would be, and the one holding fewer must win it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from collections.abc import AsyncIterator

import pytest

from oxidicom.net.server import DicomServer, ServerConfig
from oxidicom.net.shared_listener import VACANT, LoadBoard, SharedPort
from tests.net.test_acceptor import App
from tests.net.test_server import echo


@contextlib.asynccontextmanager
async def two_workers(
    *, start_second: bool = True
) -> AsyncIterator[tuple[DicomServer, DicomServer, int]]:
    listening = socket.create_server(("127.0.0.1", 0))
    port = listening.getsockname()[1]
    board = LoadBoard(2)
    servers = [
        DicomServer(App(), ServerConfig(shared_port=SharedPort(sock, board, index)))
        for index, sock in enumerate((listening, listening.dup()))
    ]
    await servers[0].start()
    if start_second:
        await servers[1].start()
    try:
        yield servers[0], servers[1], port
    finally:
        for server in servers:
            await server.close(grace=1)


async def counted(first: DicomServer, second: DicomServer, total: int) -> tuple[int, int]:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 10
    while first.connection_count + second.connection_count != total:
        assert loop.time() < deadline, "connections not made"
        await asyncio.sleep(0.005)
    return first.connection_count, second.connection_count


async def test_each_connection_goes_to_the_server_holding_fewer() -> None:
    async with two_workers(start_second=False) as (first, second, port):
        held = []
        try:
            for total in range(1, 4):  # all to the first: the second is not started yet
                held.append(socket.create_connection(("127.0.0.1", port)))
                assert await counted(first, second, total) == (total, 0)
            await second.start()
            for total in range(4, 7):  # the second holds fewer each time
                # Apart by more than the first's fallback delay: its late try for the
                # previous connection is over.
                await asyncio.sleep(0.02)
                held.append(socket.create_connection(("127.0.0.1", port)))
                assert await counted(first, second, total) == (3, total - 3)
            for total in range(7, 11):  # even now: they take turns
                await asyncio.sleep(0.02)
                held.append(socket.create_connection(("127.0.0.1", port)))
                counts = await counted(first, second, total)
                assert abs(counts[0] - counts[1]) <= 1, counts
        finally:
            for sock in held:
                sock.close()
        await counted(first, second, 0)


async def test_a_burst_is_taken_at_once_and_dealt_out_in_turns() -> None:
    async with two_workers() as (first, second, port):
        loop = asyncio.get_running_loop()
        started = loop.time()
        held = [socket.create_connection(("127.0.0.1", port)) for _ in range(60)]
        try:
            counts = await counted(first, second, 60)
            # One connection per try, but no waiting while the other is busier: a burst is
            # not held back by the balancing.
            assert loop.time() - started < 5
            assert min(counts) >= 20, counts
        finally:
            for sock in held:
                sock.close()


async def test_both_serve_associations_and_one_closing_leaves_the_other_serving() -> None:
    async with two_workers() as (first, second, port):
        assert await asyncio.to_thread(echo, port) == 0x0000
        await first.close(grace=1)
        assert list(first.sockets) == []
        for _ in range(3):
            assert await asyncio.to_thread(echo, port) == 0x0000
        assert list(second.sockets) == [("127.0.0.1", port)]


async def test_a_closed_socket_refuses_new_connections() -> None:
    async with two_workers() as (first, second, port):
        await first.close(grace=1)
        await second.close(grace=1)
        try:
            socket.create_connection(("127.0.0.1", port), timeout=5).close()
        except ConnectionRefusedError:
            pass
        else:
            raise AssertionError("a connection was accepted after every server closed")


def test_the_load_board_is_shared_with_forked_processes() -> None:
    board = LoadBoard(3)
    assert board.least_other(0) == VACANT  # nobody serves yet
    board.set(0, 4)
    pid = os.fork()
    if pid == 0:
        board.set(1, 2)
        os._exit(0)
    os.waitpid(pid, 0)
    assert board.least_other(0) == 2
    assert board.least_other(1) == 4
    board.vacate(1)
    assert board.least_other(0) == VACANT
    with pytest.raises(ValueError, match="at least one"):
        LoadBoard(0)
