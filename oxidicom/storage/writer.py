"""Writing one instance file so that it appears complete or not at all.

An instance streams in before we know where it goes (the path comes from its tags), so
it is written to an unnamed file first and given its name at the end:

* Preferred (Linux): an ``O_TMPFILE`` file in FILES_ROOT, linked into place with
  ``linkat`` through ``/proc/self/fd/N``. Until the link the file has no name, so even a
  SIGKILL leaves nothing behind.
* Fallback, where ``O_TMPFILE`` is unsupported (NFS, old kernels): a named file under
  ``FILES_ROOT/.oxidicom/tmp/`` renamed into place. A crash can leave a file there, never
  a partial file at a final path.

Creating the unnamed file is the costliest call on the way (tens of µs on ext4, far more
when the file system is busy). :meth:`FilesRoot.prepare` creates the next one for a
directory ahead of time, while the peer is busy with its next request; :meth:`FilesRoot.open`
takes it. A spare that is never used costs a descriptor and vanishes when closed.

An existing file at the final path is replaced atomically (link to a temporary name in
the target directory, then ``rename``). If part of the tree is another file system
(``EXDEV``), the data is copied into a temporary file in the target directory instead.
With ``fsync`` the file and its directory are flushed before ``commit`` returns.

Every OS error becomes a :class:`StorageError` and leaves nothing behind.
"""

from __future__ import annotations

import collections
import errno
import logging
import os
import secrets
import threading
import time
from collections.abc import Sequence

__all__ = ["FilesRoot", "PendingFile", "StorageError"]

logger = logging.getLogger(__name__)

_O_TMPFILE = getattr(os, "O_TMPFILE", 0)
_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
# What open(O_TMPFILE) fails with when the kernel or file system does not support it.
_NO_TMPFILE = {errno.EOPNOTSUPP, errno.EISDIR, errno.EINVAL}


def _iov_max() -> int:
    try:
        limit = os.sysconf("SC_IOV_MAX")
    except (AttributeError, ValueError, OSError):
        return 16
    return min(limit, 1024) if limit > 0 else 16


_IOV_MAX = _iov_max()
_FILE_MODE = 0o666  # less the umask, as for any new file
_TMP_DIR = os.path.join(".oxidicom", "tmp")
_COPY_BLOCK = 1024 * 1024


class StorageError(Exception):
    """Writing an instance failed; ``str()`` says why (the receiver sends it to the UI as
    is; :class:`~oxidicom.net.Part10FileSink` makes it the C-STORE-RSP's error comment)."""

    def __init__(self, message: str, *, errno: int | None = None) -> None:
        super().__init__(message)
        self.errno = errno


class FilesRoot:
    """A directory that instance files are written under (for the receiver, where CUBE's
    storage is mounted): opens :class:`PendingFile` objects. The directory must exist.

    Remembers the directories it has created or found (at most ``directory_cache_size``)
    so that each series folder costs one ``mkdir`` walk, not one per instance, and keeps
    at most ``spare_files`` files created ahead of time (:meth:`prepare`).
    ``use_tmpfile=False`` forces the named-file fallback (for tests and benchmarks).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        fsync: bool = False,
        use_tmpfile: bool = True,
        directory_cache_size: int = 4096,
        spare_files: int = 64,
    ) -> None:
        self.path = os.path.abspath(os.fspath(path))
        self.fsync = fsync
        self._use_tmpfile = use_tmpfile and bool(_O_TMPFILE) and os.path.isdir("/proc/self/fd")
        self._directories: collections.OrderedDict[str, None] = collections.OrderedDict()
        self._directory_cache_size = directory_cache_size
        self._spares: collections.OrderedDict[str, int] = collections.OrderedDict()
        """Unnamed files created ahead of time, by the directory they were created in."""
        self._spare_files = spare_files
        self._lock = threading.Lock()  # commits may run in several threads
        if self._use_tmpfile:
            _proc_fd_directory()  # now, rather than in the middle of the first commit

    @property
    def uses_tmpfile(self) -> bool:
        """Whether new files are ``O_TMPFILE`` files (False after the kernel refused one)."""
        return self._use_tmpfile

    def open(self, near: str | None = None) -> PendingFile:
        """Start a new file; raises :class:`StorageError`.

        ``near`` is the directory (relative to the root) the file will be committed to, when
        it is already known: the unnamed file is created there, which makes the final link
        a same-directory operation and keeps the inode with its siblings (on ext4, creating
        it in the root and linking it far away costs about twice as much).
        """
        if self._use_tmpfile:
            where = self.path
            try:
                if near:
                    where = _resolve(self.path, near)
                    self.ensure_directory(where)
                    with self._lock:
                        spare = self._spares.pop(where, None)
                    if spare is not None:
                        return PendingFile(self, spare, None, where)
                try:
                    fd = _unnamed_file(where)
                except FileNotFoundError:
                    if where == self.path:
                        raise
                    # The directory was in our cache but someone removed it (a series
                    # deleted in CUBE, then sent again): once more.
                    self.forget_directory(where)
                    self.ensure_directory(where)
                    fd = _unnamed_file(where)
            except ValueError as error:
                raise StorageError(str(error)) from None
            except OSError as error:
                if error.errno not in _NO_TMPFILE:
                    raise _storage_error(f"cannot create a file in {where}", error) from None
                logger.info("%s does not support O_TMPFILE: using named temporary files", self.path)
                self._use_tmpfile = False
            else:
                return PendingFile(self, fd, None, where)
        tmp_dir = os.path.join(self.path, _TMP_DIR)
        try:
            self.ensure_directory(tmp_dir)
            name = os.path.join(tmp_dir, f"{secrets.token_hex(12)}.part")
            fd = os.open(name, os.O_RDWR | os.O_CREAT | os.O_EXCL | _O_CLOEXEC, _FILE_MODE)
        except OSError as error:
            raise _storage_error(f"cannot create a file in {tmp_dir}", error) from None
        return PendingFile(self, fd, name)

    def prepare(self, near: str) -> None:
        """Create the next file for directory ``near`` (relative to the root) ahead of time,
        for :meth:`open` to take. Best effort: failures are left for :meth:`open` to report."""
        if not self._use_tmpfile or not self._spare_files:
            return
        try:
            where = _resolve(self.path, near)
        except ValueError:
            return
        with self._lock:
            if where in self._spares:
                return
        try:
            fd = _unnamed_file(where)
        except OSError:
            return
        with self._lock:
            if where in self._spares:
                extra = [fd]
            else:
                self._spares[where] = fd
                extra = []
                while len(self._spares) > self._spare_files:
                    extra.append(self._spares.popitem(last=False)[1])
        for fd in extra:
            os.close(fd)

    def drop_spare(self, near: str) -> None:
        """Close the file made ahead of time for ``near``, if any (its series is over)."""
        try:
            where = _resolve(self.path, near)
        except ValueError:
            return
        self._close_spare(where)

    def _close_spare(self, where: str) -> None:
        with self._lock:
            fd = self._spares.pop(where, None)
        if fd is not None:
            os.close(fd)

    def close(self) -> None:
        """Close every file made ahead of time. The root stays usable."""
        with self._lock:
            spares = list(self._spares.values())
            self._spares.clear()
        for fd in spares:
            os.close(fd)

    def remove_stale_temporary_files(self, older_than: float) -> int:
        """Remove named temporary files (the fallback without ``O_TMPFILE``) not written to
        for ``older_than`` seconds: a crash's leftovers. Younger ones may be another
        replica's transfer in progress. Returns how many went."""
        tmp_dir = os.path.join(self.path, _TMP_DIR)
        try:
            entries = list(os.scandir(tmp_dir))
        except OSError:
            return 0
        removed = 0
        limit = time.time() - older_than
        for entry in entries:
            try:
                if entry.name.endswith(".part") and entry.stat().st_mtime < limit:
                    os.unlink(entry.path)
                    removed += 1
            except OSError:
                continue  # gone already, or not ours to remove
        return removed

    def ensure_directory(self, directory: str) -> None:
        """Create ``directory`` (absolute, under :attr:`path`) and missing parents; raises OSError.

        With ``fsync``, each new directory's parent is flushed so the entry survives a crash.
        """
        with self._lock:
            if directory in self._directories:
                self._directories.move_to_end(directory)
                return
        for attempt in range(3):
            try:
                self._make_directories(directory)
                break
            except FileNotFoundError:
                # A parent just made was removed as empty (remove_empty_directories, in
                # another association or process): walk again.
                if attempt == 2:
                    raise
        with self._lock:
            self._directories[directory] = None
            if len(self._directories) > self._directory_cache_size:
                self._directories.popitem(last=False)

    def _make_directories(self, directory: str) -> None:
        missing = []
        current = directory
        while current != self.path and not os.path.isdir(current):
            missing.append(current)
            current = os.path.dirname(current)
        for new in reversed(missing):
            try:
                os.mkdir(new)
            except FileExistsError:
                if not os.path.isdir(new):
                    raise NotADirectoryError(
                        errno.ENOTDIR, os.strerror(errno.ENOTDIR), new
                    ) from None
            if self.fsync:
                _fsync_directory(os.path.dirname(new))

    def remove_empty_directories(self, near: str, *, below: str) -> None:
        """Remove ``near`` and its parents while they are empty, up to ``below`` (excluded;
        both relative to the root): the folders an instance that was not stored made for
        itself. Best effort; a writer that meets a folder removed under it makes it again."""
        try:
            directory, stop = _resolve(self.path, near), _resolve(self.path, below)
        except ValueError:
            return
        self._close_spare(directory)  # files are made ahead in series folders only
        while directory.startswith(stop + os.sep):
            try:
                os.rmdir(directory)
            except OSError:
                return  # not empty (other instances), or gone already
            self.forget_directory(directory)
            directory = os.path.dirname(directory)

    def forget_directory(self, directory: str) -> None:
        """Drop ``directory`` from the cache (it vanished under us)."""
        with self._lock:
            self._directories.pop(directory, None)


class PendingFile:
    """One file being written: :meth:`write` any number of times, then :meth:`commit` or
    :meth:`discard`. After a :class:`StorageError` the file is already discarded."""

    def __init__(
        self, root: FilesRoot, fd: int, temp_path: str | None, directory: str | None = None
    ) -> None:
        self._root = root
        self._fd = fd
        self._temp_path = temp_path
        self._directory = directory
        """The directory the file was created in, made or found by the root just before."""
        self._size = 0

    @property
    def size(self) -> int:
        """Bytes written so far."""
        return self._size

    @property
    def closed(self) -> bool:
        return self._fd < 0

    def write(self, chunks: Sequence[bytes | bytearray | memoryview]) -> None:
        """Append ``chunks`` with one ``writev`` (more only for short writes or > IOV_MAX).

        Chunks are bytes-like with 1-byte items and are not referenced after the call.
        """
        self._check_open()
        try:
            for start in range(0, len(chunks), _IOV_MAX):
                self._write_all(chunks[start : start + _IOV_MAX])
        except OSError as error:
            self.discard()
            raise _storage_error("cannot write instance data", error) from None

    def commit(self, relative_path: str) -> None:
        """Make the file appear, complete, at ``FILES_ROOT/relative_path``, replacing any file."""
        self._check_open()
        try:
            target = _resolve(self._root.path, relative_path)
        except ValueError:
            self.discard()
            raise
        directory = os.path.dirname(target)
        try:
            if directory != self._directory:  # (if it went since, _place makes it again)
                self._root.ensure_directory(directory)
            if self._root.fsync:
                os.fsync(self._fd)
            try:
                self._place(target)
            except FileNotFoundError:
                # The directory was in our cache but someone removed it: once more.
                self._root.forget_directory(directory)
                self._root.ensure_directory(directory)
                self._place(target)
            if self._root.fsync:
                _fsync_directory(directory)
        except OSError as error:
            self.discard()
            raise _storage_error(f"cannot store {relative_path}", error) from None
        self._close()

    def discard(self) -> None:
        """Close and remove the file; nothing of it is left. Idempotent."""
        if self._temp_path is not None:
            _unlink_quietly(self._temp_path)
            self._temp_path = None
        self._close()

    # -- internals -------------------------------------------------------------------------

    def _write_all(self, chunks: Sequence[bytes | bytearray | memoryview]) -> None:
        written = os.writev(self._fd, chunks)
        self._size += written
        total = sum(map(len, chunks))
        if written == total:
            return
        # A short write (signal, or the disk filling up): write the rest the slow way.
        remaining = memoryview(b"".join(chunks))[written:]
        while remaining:
            written = os.write(self._fd, remaining)
            self._size += written
            remaining = remaining[written:]

    def _place(self, target: str) -> None:
        if self._temp_path is not None:
            try:
                os.rename(self._temp_path, target)
            except OSError as error:
                if error.errno != errno.EXDEV:
                    raise
                self._copy_into_place(target)
                _unlink_quietly(self._temp_path)
            self._temp_path = None
            return
        # linkat(2) with AT_SYMLINK_FOLLOW through /proc/self/fd/N: what names an unnamed
        # file. os.link passes that flag only when given a directory fd (plain link(2)
        # would link the /proc symlink itself), hence the fd of the /proc directory.
        source, proc_fd = str(self._fd), _proc_fd_directory()
        try:
            try:
                os.link(source, target, src_dir_fd=proc_fd)
            except FileExistsError:
                temporary = os.path.join(os.path.dirname(target), _temporary_name())
                os.link(source, temporary, src_dir_fd=proc_fd)
                _rename_or_unlink(temporary, target)
        except OSError as error:
            if error.errno != errno.EXDEV:
                raise
            self._copy_into_place(target)

    def _copy_into_place(self, target: str) -> None:
        """Copy our file next to ``target`` and rename it there (different file systems)."""
        temporary = os.path.join(os.path.dirname(target), _temporary_name())
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _O_CLOEXEC, _FILE_MODE)
        try:
            _copy(self._fd, fd, self._size)
            if self._root.fsync:
                os.fsync(fd)
        except BaseException:
            os.close(fd)
            _unlink_quietly(temporary)
            raise
        os.close(fd)
        _rename_or_unlink(temporary, target)

    def _check_open(self) -> None:
        if self._fd < 0:
            raise RuntimeError("the file was already committed or discarded")

    def _close(self) -> None:
        if self._fd >= 0:
            fd, self._fd = self._fd, -1
            os.close(fd)


def _unnamed_file(directory: str) -> int:
    """A new ``O_TMPFILE`` file in ``directory``, open for writing; raises OSError."""
    return os.open(directory, _O_TMPFILE | os.O_RDWR | _O_CLOEXEC, _FILE_MODE)


_proc_fd: int | None = None
"""This process's descriptor of /proc/self/fd, opened on first use."""
_proc_fd_lock = threading.Lock()


def _proc_fd_directory() -> int:
    """A descriptor of this process's ``/proc/self/fd``, kept for the process's life."""
    global _proc_fd  # noqa: PLW0603 - a per-process resource
    fd = _proc_fd
    if fd is None:
        with _proc_fd_lock:
            if _proc_fd is None:
                _proc_fd = os.open("/proc/self/fd", os.O_RDONLY | os.O_DIRECTORY | _O_CLOEXEC)
            fd = _proc_fd
    return fd


def _forget_the_parents_proc_fd() -> None:
    """In a forked child the inherited descriptor names the parent's files: drop it."""
    global _proc_fd, _proc_fd_lock  # noqa: PLW0603 - a per-process resource
    _proc_fd_lock = threading.Lock()  # another thread may have held it at the fork
    if _proc_fd is not None:
        os.close(_proc_fd)
        _proc_fd = None


os.register_at_fork(after_in_child=_forget_the_parents_proc_fd)


def _copy(source: int, destination: int, size: int) -> None:
    # Plain reads and writes: copy_file_range refuses most cross-file-system copies.
    offset = 0
    while offset < size:
        block = os.pread(source, min(_COPY_BLOCK, size - offset), offset)
        if not block:
            raise OSError(errno.EIO, "the file shrank while being copied")
        os.write(destination, block)
        offset += len(block)


def _resolve(root: str, relative_path: str) -> str:
    # Each component between slashes: an empty one, "." or ".." (a leading "/" is an
    # empty first component) makes the path not plain.
    padded = f"/{relative_path}/"
    if "//" in padded or "/./" in padded or "/../" in padded:
        raise ValueError(f"not a plain relative path: {relative_path!r}")
    return f"{root}{padded[:-1]}" if root != "/" else padded[:-1]


def _temporary_name() -> str:
    # Short and hidden: the target's own name may already be NAME_MAX long.
    return f".oxidicom-{secrets.token_hex(8)}.tmp"


def _rename_or_unlink(temporary: str, target: str) -> None:
    try:
        os.rename(temporary, target)
    except BaseException:
        _unlink_quietly(temporary)
        raise


def _unlink_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except OSError as error:
        if error.errno != errno.ENOENT:
            logger.warning("cannot remove %s: %s", path, error.strerror)


def _fsync_directory(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | _O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _storage_error(what: str, error: OSError) -> StorageError:
    code = error.errno
    name = errno.errorcode.get(code, "") if code is not None else ""
    detail = error.strerror or str(error)
    if name:
        detail += f" ({name})"
    if error.filename is not None and str(error.filename) not in what:
        detail += f": {error.filename}"
    return StorageError(f"{what}: {detail}", errno=code)
