"""The ChRIS receiver: the DICOM server wired to CUBE's storage and notifications.

:class:`CubeApplication` answers associations with the contract's policy (§2) and stores
each C-STORE with :mod:`oxidicom.storage`; what was stored is reported to a
:class:`~oxidicom.storage.events.StorageObserver` (the :class:`~oxidicom.cube.notifier.CubeNotifier`
in production). :func:`main` is ``oxidicom serve``: settings from the environment, graceful
shutdown on SIGTERM/SIGINT, and optionally several worker processes sharing the port.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import os
import resource
import signal
import ssl
import sys
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from typing import Any, cast

from oxidicom.cube.notifier import CubeNotifier
from oxidicom.dimse.messages import CEchoRQ, CStoreRQ
from oxidicom.implementation import IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME
from oxidicom.logs import configure_logging, fields
from oxidicom.net.handlers import (
    AssociationContext,
    AssociationEnd,
    Outcome,
    Peer,
    StoreResult,
    StoreSink,
)
from oxidicom.net.server import DicomServer, ServerConfig
from oxidicom.net.shared_listener import SharedPort
from oxidicom.settings import Settings, SettingsError, environment_warnings
from oxidicom.sop_classes import ACCEPTED_ABSTRACT_SYNTAXES
from oxidicom.storage.events import (
    AssociationEnded,
    AssociationInfo,
    InstanceRejected,
    InstanceStored,
    StorageObserver,
)
from oxidicom.storage.instance import InstanceReceiver, Store
from oxidicom.storage.transfer_syntax import standard_transfer_syntaxes
from oxidicom.telemetry import configure_tracing, shutdown_tracing
from oxidicom.ul.association import AcceptedContext
from oxidicom.ul.negotiation import AcceptorPolicy, negotiate
from oxidicom.ul.pdus import AAssociateAC, AAssociateRJ, AAssociateRQ
from oxidicom.workers import run_workers

log = logging.getLogger("oxidicom.receiver")

_STALE_TEMPORARY_FILE_AGE = 3600.0
"""A named temporary file untouched this long (s) belongs to no transfer: every association
would have timed out long before (idle timeout), in this replica or another."""
_DESCRIPTOR_RESERVE = 256
"""Open files besides connections: files being written and made ahead (64), the outbox,
NATS and RabbitMQ, logs, the event loop's own."""
_SETTLE_TIMEOUT = 10.0
"""How long (s) a release may wait for its registrations to reach the outbox's disk."""
_PREPARE_AFTER = 2
"""Instances of a series an association has stored before its next file is made ahead."""
UNCOMPRESSED_TRANSFER_SYNTAXES = frozenset({"1.2.840.10008.1.2", "1.2.840.10008.1.2.1"})
EXIT_CONFIG = 2


def acceptor_policy(settings: Settings) -> AcceptorPolicy:
    scp = settings.scp
    return AcceptorPolicy(
        ae_title=scp.aet,
        transfer_syntaxes=(
            UNCOMPRESSED_TRANSFER_SYNTAXES
            if scp.uncompressed_only
            else standard_transfer_syntaxes()
        ),
        abstract_syntaxes=None if scp.promiscuous else ACCEPTED_ABSTRACT_SYNTAXES,
        implementation_class_uid=IMPLEMENTATION_CLASS_UID,
        implementation_version_name=IMPLEMENTATION_VERSION_NAME,
        max_length_received=scp.max_pdu_length,
        check_called_ae_title=scp.check_called_aet,
        calling_ae_titles=frozenset(scp.allowed_calling_aets) or None,
    )


class CubeApplication:
    """Accepts what the contract says, stores into CUBE's layout, reports to ``observer``."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        observer: StorageObserver,
        executor: Executor | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.observer = observer
        self.executor = executor
        self.policy = acceptor_policy(settings)

    def connection_allowed(self, peer: Peer) -> bool:
        return self.settings.listener.accepts_peer(peer.host)

    def negotiate(self, request: AAssociateRQ, peer: Peer) -> AAssociateAC | AAssociateRJ:
        answer = negotiate(request, self.policy)
        if isinstance(answer, AAssociateRJ):
            log.warning(
                "association from %s (calling AE %r, called AE %r) rejected",
                peer.host,
                request.calling_ae_title,
                request.called_ae_title,
            )
        return answer

    def open(self, association: AssociationContext) -> CubeAssociation:
        return CubeAssociation(self, association)


_OUTCOME_NAMES = {
    Outcome.RELEASED: "released",
    Outcome.ABORTED: "aborted",
    Outcome.TIMEOUT: "timeout",
    Outcome.CONNECTION_LOST: "aborted",
    Outcome.SHUTDOWN: "error",
}
"""The outcome as the observer (and the span, contract §6) names it."""


class CubeAssociation:
    """One established association of the receiver."""

    def __init__(self, app: CubeApplication, association: AssociationContext) -> None:
        self.app = app
        self.context = association
        self.info = AssociationInfo(
            association_id=association.association_id,
            calling_aet=association.calling_ae_title.strip(),
            called_aet=association.called_ae_title.strip(),
            peer_host=association.peer.host,
            peer_port=association.peer.port,
        )
        self.series: collections.Counter[str] = collections.Counter()
        """Instances stored, by series folder."""
        self._stored: list[InstanceStored] = []
        """Stored instances the observer has not heard about yet."""
        self._ended = False
        app.observer.association_started(self.info)

    def on_echo(self, request: CEchoRQ) -> int:
        return 0x0000

    def on_store(self, request: CStoreRQ, context: AcceptedContext) -> StoreSink | StoreResult:
        receiver = self.app.store.receiver(
            self.info,
            sop_class_uid=request.affected_sop_class_uid,
            sop_instance_uid=request.affected_sop_instance_uid,
            transfer_syntax_uid=context.transfer_syntax,
        )
        if self.app.executor is None:
            return InstanceSink(self, receiver)
        return ThreadedInstanceSink(self, receiver, self.app.executor)

    def report(self, outcome: InstanceStored | InstanceRejected) -> StoreResult:
        """Tell the observer about one instance; the C-STORE-RSP for it.

        A stored instance is told after the response has gone out (the peer waits for the
        response, not for our notifications), together with creating the series' next file;
        anything else the observer hears about this association comes after it.
        """
        observer = self.app.observer
        if isinstance(outcome, InstanceStored):
            self.series[outcome.series_folder] += 1
            self._stored.append(outcome)
            if len(self._stored) == 1:
                asyncio.get_running_loop().call_soon(self._tell_stored)
            return StoreResult()
        self._tell_stored()
        log.warning(
            "instance from %s not stored: %s",
            self.info.calling_aet,
            outcome.reason,
            extra=fields(association=self.info.association_id, status=f"0x{outcome.status:04X}"),
        )
        observer.instance_rejected(outcome)
        return StoreResult(outcome.status, outcome.reason)

    def _tell_stored(self) -> None:
        stored, self._stored = self._stored, []
        store = self.app.store
        for outcome in stored:
            self.app.observer.instance_stored(outcome)
        # Only for a series that keeps coming: a file made for an association's one instance
        # would be made for nothing (and, on ext4, freed inodes slow down making the next).
        # Not with writer threads: they are there because file system calls are slow.
        if stored and not self._ended and self.app.executor is None:
            folder = stored[-1].series_folder
            if self.series[folder] >= _PREPARE_AFTER:
                store.prepare(folder)

    def on_release(self) -> Awaitable[None] | None:
        """The peer asks to release: its series end now, and it has our A-RELEASE-RP only
        once their registrations are in the outbox's files. After that answer the PACS
        counts the instances delivered; a crash must not lose their registration. With
        ``OXIDICOM_FSYNC`` the answer also waits until they are flushed to disk, as each
        C-STORE-RSP waits for its file; without, the flush follows at once (before the
        registration is published), and a power cut in between may lose files and
        registrations alike."""
        settled = self._end(Outcome.RELEASED, "released")
        return None if settled is None else self._settle(settled)

    async def _settle(self, settled: Awaitable[None]) -> None:
        """Wait for the registrations to be in the outbox, but not for ever: an outbox that
        cannot write (a full disk) keeps them in memory and retries, and the PACS, which
        has its instances stored, gets its answer rather than an aborted association that
        it would send again in full."""
        try:
            async with asyncio.timeout(_SETTLE_TIMEOUT):
                await settled
        except TimeoutError:
            log.warning(
                "association %s: registrations not on disk after %g s; answering the "
                "release, they wait in memory until the outbox can write them",
                self.info.association_id,
                _SETTLE_TIMEOUT,
            )

    def on_end(self, end: AssociationEnd) -> None:
        if not self._ended:
            # Not released: nobody waits for an answer, so nothing waits for the outbox.
            self._end(end.outcome, end.detail)
        stats = end.stats
        log.info(
            "association ended",
            extra=fields(
                association=self.info.association_id,
                calling_aet=self.info.calling_aet,
                peer=f"{self.info.peer_host}:{self.info.peer_port}",
                instances=stats.instances_stored,
                failed=stats.instances_failed,
                series=len(self.series),
                bytes=stats.data_set_bytes,
                duration=f"{time.monotonic() - stats.started:.3f}s",
                outcome=end.outcome.value,
                detail=end.detail,
            ),
        )

    def _end(self, outcome: Outcome, detail: str) -> Awaitable[None] | None:
        """Tell the observer the association is over (once): its series are complete."""
        self._tell_stored()
        self._ended = True
        for folder in self.series:
            self.app.store.series_finished(folder)
        error = None if outcome is Outcome.RELEASED else detail
        ended = AssociationEnded(self.info, _OUTCOME_NAMES[outcome], error)
        return self.app.observer.association_ended(ended)


class InstanceSink:
    """Writes on the event loop thread: the fastest path while the page cache absorbs writes."""

    def __init__(self, association: CubeAssociation, receiver: InstanceReceiver) -> None:
        self.association = association
        self.receiver = receiver

    def write(self, chunks: Sequence[memoryview]) -> None:
        self.receiver.data(chunks)

    def finish(self) -> StoreResult:
        return self.association.report(self.receiver.complete())

    def abort(self) -> None:
        self.receiver.abort()


class ThreadedInstanceSink:
    """Writes in a thread pool: the loop stays free when the disk is slow.

    While a write is running the server does not read from that peer (the chunks stay
    valid); operations on one receiver run one after the other, never concurrently.
    """

    def __init__(
        self, association: CubeAssociation, receiver: InstanceReceiver, executor: Executor
    ) -> None:
        self.association = association
        self.receiver = receiver
        self.executor = executor
        self.loop = asyncio.get_running_loop()
        self.pending: asyncio.Future[None] | None = None

    def write(self, chunks: Sequence[memoryview]) -> Awaitable[None]:
        self.pending = self.loop.run_in_executor(self.executor, self.receiver.data, chunks)
        return self.pending

    async def _finish(self) -> StoreResult:
        outcome = await self.loop.run_in_executor(self.executor, self.receiver.complete)
        return self.association.report(outcome)

    def finish(self) -> Awaitable[StoreResult]:
        return self._finish()

    def abort(self) -> None:
        pending = self.pending
        if pending is not None and not pending.done():
            pending.add_done_callback(lambda _: self._discard())
        else:
            self._discard()

    def _discard(self) -> None:
        try:
            self.executor.submit(self.receiver.abort)
        except RuntimeError:  # the receiver is stopping and its pool is shut: here, then
            self.receiver.abort()


# --- running it -------------------------------------------------------------------------


def server_config(
    settings: Settings,
    ssl_context: ssl.SSLContext | None,
    shared_port: SharedPort | None = None,
) -> ServerConfig:
    """``shared_port``: this worker's place at the socket the workers share
    (``OXIDICOM_WORKERS``)."""
    listener, scp = settings.listener, settings.scp
    return ServerConfig(
        host=listener.address,
        port=listener.port,
        max_associations=listener.max_connections,
        slot_wait_timeout=listener.slot_wait_timeout,
        slot_wait_queue=listener.slot_wait_queue,
        max_associations_per_peer=listener.max_associations_per_peer,
        max_connections=listener.connection_limit,
        artim_timeout=scp.artim_timeout,
        idle_timeout=scp.idle_timeout or None,
        strict_max_length=scp.strict,
        ssl=ssl_context,
        # The TLS handshake comes before the A-ASSOCIATE-RQ: the same bound applies.
        ssl_handshake_timeout=scp.artim_timeout,
        shared_port=shared_port,
    )


def tls_context(settings: Settings) -> ssl.SSLContext | None:
    """The server's TLS context (BCP 195: TLS 1.2 or later), or None without TLS."""
    tls = settings.tls
    if not tls.enabled:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    assert tls.cert is not None
    context.load_cert_chain(tls.cert, tls.key)
    if tls.ca is not None:
        context.load_verify_locations(cafile=tls.ca)
        context.verify_mode = ssl.CERT_REQUIRED
    return context


def check_files_root(settings: Settings) -> str | None:
    """A one-line reason why FILES_ROOT is unusable, or None."""
    root = settings.storage.files_root
    if not root.is_dir():
        return f"OXIDICOM_FILES_ROOT: {root} is not a directory"
    if not os.access(root, os.W_OK | os.X_OK):
        return f"OXIDICOM_FILES_ROOT: {root} is not writable"
    return None


def check_outbox_dir(settings: Settings) -> str | None:
    """A one-line reason why the outbox directory is unusable, or None; creating it now
    turns a bad path into a configuration error rather than a failure to serve."""
    outbox = settings.storage.outbox_dir
    try:
        outbox.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        return f"OXIDICOM_OUTBOX_DIR: {outbox} is not a directory"
    except OSError as error:
        return f"OXIDICOM_OUTBOX_DIR: cannot create {outbox}: {error.strerror or error}"
    if not os.access(outbox, os.W_OK | os.X_OK):
        return f"OXIDICOM_OUTBOX_DIR: {outbox} is not writable"
    return None


async def serve(
    settings: Settings,
    *,
    ready: asyncio.Event | None = None,
    shared_port: SharedPort | None = None,
) -> None:
    """Run until SIGTERM/SIGINT (or cancellation), then shut down gracefully.

    ``shared_port``: serve connections from this shared socket (a worker process of
    :mod:`oxidicom.workers`) instead of listening on the settings' address.
    """
    provider = configure_tracing(settings)
    cube = settings.cube
    notifier = CubeNotifier.create(
        amqp_address=cube.amqp_address,
        queue_name=cube.queue_name,
        files_root=settings.storage.files_root,
        outbox_dir=settings.storage.outbox_dir,
        nats_address=cube.nats_address,
        root_subject=cube.root_subject,
        progress_interval=cube.progress_interval,
        dev_sleep=cube.dev_sleep,
        fsync=settings.storage.fsync,
        # Where instance files are written on the event loop, so are registrations.
        outbox_on_loop=settings.storage.writer_threads == 0,
    )
    await notifier.start()
    executor = (
        ThreadPoolExecutor(settings.storage.writer_threads, thread_name_prefix="oxidicom-writer")
        if settings.storage.writer_threads
        else None
    )
    store = Store(settings.storage.files_root, fsync=settings.storage.fsync)
    if stale := store.files.remove_stale_temporary_files(_STALE_TEMPORARY_FILE_AGE):
        log.info("removed %d temporary file(s) left by an earlier crash", stale)
    app = CubeApplication(settings, store, notifier, executor)
    server = DicomServer(app, server_config(settings, tls_context(settings), shared_port))
    await server.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()

    def on_signal(signum: signal.Signals) -> None:
        if not stop.is_set():
            stop.set()
        elif signum is signal.SIGINT:  # a second Ctrl-C: the operator does not want to wait
            log.warning("second SIGINT: aborting the associations still running")
            server.cut_grace()
        else:  # orchestrators may repeat SIGTERM: keep shutting down gracefully
            log.info("already shutting down (send SIGINT to abort what is still running)")

    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, on_signal, signum)
    log.info(
        "listening",
        extra=fields(
            address=settings.listener.address,
            port=server.port,
            aet=settings.scp.aet,
            pid=os.getpid(),
            tls=settings.tls.enabled,
        ),
    )
    if ready is not None:
        ready.set()
    try:
        await stop.wait()
        log.info("shutting down: waiting for associations in flight")
    finally:
        await server.close(settings.listener.shutdown_grace)
        if executor is not None:
            # In a thread: a write still running must be able to hand its abort back to
            # the event loop (ThreadedInstanceSink.abort) while the pool winds down.
            await asyncio.to_thread(executor.shutdown, wait=True)
        store.close()
        await notifier.aclose(timeout=10.0)
        if provider is not None:
            shutdown_tracing(provider)
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
        log.info("stopped")


def event_loop_runner(choice: str) -> Callable[[Coroutine[Any, Any, None]], None]:
    """``asyncio.run`` or ``uvloop.run`` for OXIDICOM_EVENT_LOOP; raises ImportError when
    uvloop is asked for and not installed."""
    if choice == "asyncio":
        return asyncio.run
    try:
        import uvloop  # noqa: PLC0415 - an optional extra
    except ImportError:
        if choice == "uvloop":
            raise
        return asyncio.run
    return cast(Callable[[Coroutine[Any, Any, None]], None], uvloop.run)


def raise_descriptor_limit(connections: int) -> str | None:
    """Raise the soft limit on open files to what ``connections`` need (and the files being
    written, the outbox, the brokers: ``_DESCRIPTOR_RESERVE``), as far as the hard limit
    allows. Many systems start services with a soft limit of 1024, below the default
    OXIDICOM_MAX_CONNECTIONS: past it, accepting fails instead of refusing cleanly. A
    warning when even the hard limit is too low."""
    needed = connections + _DESCRIPTOR_RESERVE
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= needed:
        return None
    target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    except (ValueError, OSError) as error:
        return f"cannot raise the open-file limit from {soft} to {target}: {error}"
    if target < needed:
        return (
            f"the open-file limit ({hard}) is below what OXIDICOM_MAX_CONNECTIONS="
            f"{connections} needs ({needed}): lower it, or raise the limit (ulimit -Hn)"
        )
    return None


def main(env: dict[str, str] | None = None) -> int:
    """``oxidicom serve``: the exit code."""
    try:
        settings = Settings.from_env(env)
    except SettingsError as error:
        for line in error.problems:
            print(f"oxidicom: {line}", file=sys.stderr)
        return EXIT_CONFIG
    configure_logging(settings.log.level, settings.log.format)
    for warning in environment_warnings(env):
        log.warning(warning)
    problem = check_files_root(settings) or check_outbox_dir(settings)
    try:
        run = event_loop_runner(settings.listener.event_loop)
    except ImportError:
        problem = "OXIDICOM_EVENT_LOOP: uvloop is not installed (pip install 'oxidicom[uvloop]')"
    if problem is None:
        try:
            tls_context(settings)
        except (OSError, ssl.SSLError) as error:
            problem = f"OXIDICOM_TLS_CERT/OXIDICOM_TLS_KEY/OXIDICOM_TLS_CA: {error}"
    if problem is not None:
        print(f"oxidicom: {problem}", file=sys.stderr)
        return EXIT_CONFIG
    log.info("configuration", extra=fields(**settings.to_env()))
    if shortfall := raise_descriptor_limit(settings.listener.connection_limit):
        log.warning(shortfall)
    if settings.listener.workers > 1:
        return run_workers(settings, run)
    try:
        run(serve(settings))
    except OSError as error:  # e.g. the port is taken
        log.error("cannot serve: %s", error)  # noqa: TRY400 - one line, not a traceback
        return 1
    return 0
