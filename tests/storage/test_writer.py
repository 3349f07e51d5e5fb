"""Instance files on a real file system: atomic commit, overwrite, discard, and errors."""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from oxidicom.storage.writer import FilesRoot, StorageError

TARGET = "SERVICES/PACS/AET/p-n-d/s-a-20240101/00001-d-abcdef0/0001-1.2.3.dcm"
NOBODY = 65534


@pytest.fixture(params=[True, False], ids=["tmpfile", "named"])
def use_tmpfile(request: pytest.FixtureRequest) -> bool:
    value: bool = request.param
    return value


def _files(root: Path) -> list[str]:
    """Every file under ``root``, relative (directories left out)."""
    return sorted(
        str(Path(directory, name).relative_to(root))
        for directory, _, names in os.walk(root)
        for name in names
    )


def _no_copies(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail if the data is copied (only needed across file systems)."""

    def pread(*args: Any) -> bytes:
        raise AssertionError("the file was copied instead of linked or renamed")

    monkeypatch.setattr(os, "pread", pread)


def test_commit_makes_the_file_appear_complete(
    tmp_path: Path, use_tmpfile: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    _no_copies(monkeypatch)
    root = FilesRoot(tmp_path, use_tmpfile=use_tmpfile)
    assert root.uses_tmpfile is use_tmpfile
    pending = root.open()
    pending.write([b"head", memoryview(b"-body-")])
    pending.write([bytearray(b"tail")])
    assert pending.size == 14
    assert [name for name in _files(tmp_path) if not name.startswith(".oxidicom/tmp/")] == []
    pending.commit(TARGET)
    assert (tmp_path / TARGET).read_bytes() == b"head-body-tail"
    assert _files(tmp_path) == [TARGET]
    assert pending.closed


def test_new_files_get_the_usual_permissions(tmp_path: Path, use_tmpfile: bool) -> None:
    old = os.umask(0o022)
    try:
        pending = FilesRoot(tmp_path, use_tmpfile=use_tmpfile).open()
        pending.write([b"x"])
        pending.commit(TARGET)
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / TARGET).stat().st_mode) == 0o644


def test_commit_replaces_an_existing_file(
    tmp_path: Path, use_tmpfile: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    _no_copies(monkeypatch)
    root = FilesRoot(tmp_path, use_tmpfile=use_tmpfile)
    for content in (b"first version", b"second"):
        pending = root.open()
        pending.write([content])
        pending.commit(TARGET)
    assert (tmp_path / TARGET).read_bytes() == b"second"
    assert _files(tmp_path) == [TARGET]


def test_discard_leaves_nothing(tmp_path: Path, use_tmpfile: bool) -> None:
    pending = FilesRoot(tmp_path, use_tmpfile=use_tmpfile).open()
    pending.write([b"data"])
    pending.discard()
    pending.discard()
    assert _files(tmp_path) == []
    with pytest.raises(RuntimeError):
        pending.write([b"more"])
    with pytest.raises(RuntimeError):
        pending.commit(TARGET)


def test_chunks_are_not_used_after_write(tmp_path: Path) -> None:
    buffer = bytearray(b"abcdef")
    pending = FilesRoot(tmp_path).open()
    view = memoryview(buffer)
    pending.write([view[:3], view[3:]])
    view.release()
    buffer[:] = b"XXXXXX"
    pending.commit(TARGET)
    assert (tmp_path / TARGET).read_bytes() == b"abcdef"


def test_more_chunks_than_iov_max(tmp_path: Path) -> None:
    chunks = [bytes([i % 256]) * (i % 7) for i in range(5000)]
    pending = FilesRoot(tmp_path).open()
    pending.write(chunks)
    pending.commit(TARGET)
    assert (tmp_path / TARGET).read_bytes() == b"".join(chunks)


def test_short_writes_are_completed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_writev = os.writev

    def short_writev(fd: int, buffers: Any) -> int:
        first = bytes(buffers[0])
        return real_writev(fd, [first[: max(1, len(first) // 2)]])

    monkeypatch.setattr(os, "writev", short_writev)
    pending = FilesRoot(tmp_path).open()
    pending.write([b"0123456789", b"abcdef"])
    pending.commit(TARGET)
    assert (tmp_path / TARGET).read_bytes() == b"0123456789abcdef"


def test_disk_full_is_a_storage_error_and_leaves_nothing(
    tmp_path: Path, use_tmpfile: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A real peer cannot fill the disk on demand: inject the kernel's answer.
    def full(fd: int, buffers: Any) -> int:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    pending = FilesRoot(tmp_path, use_tmpfile=use_tmpfile).open()
    pending.write([b"fits"])
    monkeypatch.setattr(os, "writev", full)
    with pytest.raises(StorageError, match=r"No space left on device \(ENOSPC\)") as caught:
        pending.write([b"does not fit"])
    assert caught.value.errno == errno.ENOSPC
    assert pending.closed
    assert _files(tmp_path) == []


def test_the_directories_of_a_series_are_created_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = FilesRoot(tmp_path)
    made: list[str] = []
    real_mkdir = os.mkdir

    def counting_mkdir(path: str, *args: Any, **kwargs: Any) -> None:
        made.append(path)
        real_mkdir(path, *args, **kwargs)

    monkeypatch.setattr(os, "mkdir", counting_mkdir)
    for number in range(3):
        pending = root.open()
        pending.write([b"x"])
        pending.commit(TARGET.replace("/0001-", f"/000{number}-"))
    assert len(made) == 6
    assert len(_files(tmp_path)) == 3


def test_a_directory_removed_under_us_is_created_again(tmp_path: Path, use_tmpfile: bool) -> None:
    root = FilesRoot(tmp_path, use_tmpfile=use_tmpfile)
    pending = root.open()
    pending.write([b"1"])
    pending.commit(TARGET)
    shutil.rmtree(tmp_path / "SERVICES")
    pending = root.open()
    pending.write([b"2"])
    pending.commit(TARGET)
    assert (tmp_path / TARGET).read_bytes() == b"2"


def _open_fds() -> set[int]:
    return {int(name) for name in os.listdir("/proc/self/fd")}


def _store(root: FilesRoot, path: str, content: bytes) -> None:
    """One file, created in its own folder (as the receiver does it) and committed."""
    pending = root.open(os.path.dirname(path))
    pending.write([content])
    pending.commit(path)


def test_a_file_prepared_ahead_is_the_next_one_opened_there(tmp_path: Path) -> None:
    root = FilesRoot(tmp_path)
    series = os.path.dirname(TARGET)
    _store(root, TARGET, b"1")
    before = _open_fds()
    root.prepare(series)
    spare = _open_fds() - before
    assert len(spare) == 1
    second = root.open(series)
    assert _open_fds() - before == spare  # it took the spare: no new file
    second.write([b"2"])
    second.commit(TARGET.replace("/0001-", "/0002-"))
    assert _open_fds() == before
    assert sorted(_files(tmp_path)) == [TARGET, TARGET.replace("/0001-", "/0002-")]
    assert (tmp_path / TARGET.replace("/0001-", "/0002-")).read_bytes() == b"2"


def test_a_file_prepared_for_another_directory_is_not_used(tmp_path: Path) -> None:
    root = FilesRoot(tmp_path)
    series = os.path.dirname(TARGET)
    os.makedirs(tmp_path / series)
    root.prepare(series)
    before = _open_fds()
    other = root.open("SERVICES/PACS/OTHER")
    assert len(_open_fds() - before) == 1
    other.discard()


def test_files_prepared_ahead_are_few_leave_nothing_and_can_be_dropped(tmp_path: Path) -> None:
    root = FilesRoot(tmp_path, spare_files=2)
    folders = [f"SERVICES/PACS/S{number}" for number in range(4)]
    for folder in folders:
        os.makedirs(tmp_path / folder)
    before = _open_fds()
    for folder in folders:
        root.prepare(folder)
        root.prepare(folder)  # once is enough
    assert len(_open_fds() - before) == 2  # the oldest went
    root.drop_spare(folders[-1])
    assert len(_open_fds() - before) == 1
    root.close()
    assert _open_fds() == before
    assert _files(tmp_path) == []  # unnamed until committed


def test_preparing_is_best_effort(tmp_path: Path) -> None:
    named = FilesRoot(tmp_path, use_tmpfile=False)
    before = _open_fds()
    named.prepare("SERVICES")  # nothing to gain without O_TMPFILE
    FilesRoot(tmp_path).prepare("SERVICES/PACS/NOT-YET")  # no such directory
    FilesRoot(tmp_path).prepare("../outside")
    assert _open_fds() == before


def test_a_prepared_file_still_lands_when_its_directory_was_replaced(tmp_path: Path) -> None:
    root = FilesRoot(tmp_path)
    series = os.path.dirname(TARGET)
    _store(root, TARGET, b"1")
    root.prepare(series)
    shutil.rmtree(tmp_path / "SERVICES")
    os.makedirs(tmp_path / series)
    _store(root, TARGET, b"2")
    assert (tmp_path / TARGET).read_bytes() == b"2"


def test_a_forked_child_names_its_own_files(tmp_path: Path) -> None:
    # Unnamed files are linked through /proc/self/fd, whose descriptor the root keeps: a
    # child that inherited it must not look among its parent's files.
    root = FilesRoot(tmp_path)
    first = root.open()
    first.write([b"parent"])
    first.commit(TARGET)
    other = TARGET.replace("/0001-", "/0002-")
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        code = 1
        try:
            child = root.open()
            child.write([b"child"])
            child.commit(other)
            code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert (tmp_path / other).read_bytes() == b"child"


def test_a_series_directory_removed_under_us_is_created_again(tmp_path: Path) -> None:
    # CUBE may delete a series folder, and the PACS send the series again: the folder is
    # in the cache of directories made, but must be made again.
    root = FilesRoot(tmp_path)
    for content in (b"1", b"2"):
        _store(root, TARGET, content)
        shutil.rmtree(tmp_path / "SERVICES")
    root.prepare(os.path.dirname(TARGET))  # nowhere to prepare: nothing happens
    _store(root, TARGET, b"3")
    assert (tmp_path / TARGET).read_bytes() == b"3"


def test_fsync_flushes_file_and_directories(
    tmp_path: Path, use_tmpfile: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced: list[int] = []
    real_fsync = os.fsync

    def counting_fsync(fd: int) -> None:
        synced.append(fd)
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", counting_fsync)
    root = FilesRoot(tmp_path, fsync=True, use_tmpfile=use_tmpfile)
    pending = root.open()
    pending.write([b"durable"])
    synced.clear()
    pending.commit(TARGET)
    # the file, the parents of the 6 new directories, and the file's directory
    assert len(synced) == 1 + 6 + 1
    assert (tmp_path / TARGET).read_bytes() == b"durable"


@pytest.mark.parametrize("path", ["/etc/passwd", "../outside.dcm", "a/../../b", "a//b", ""])
def test_commit_refuses_paths_outside_the_root(tmp_path: Path, path: str) -> None:
    pending = FilesRoot(tmp_path).open()
    pending.write([b"x"])
    with pytest.raises(ValueError, match="not a plain relative path"):
        pending.commit(path)
    assert pending.closed
    assert _files(tmp_path) == []


def test_a_file_in_the_way_of_a_directory(tmp_path: Path, use_tmpfile: bool) -> None:
    (tmp_path / "SERVICES").write_bytes(b"not a directory")
    pending = FilesRoot(tmp_path, use_tmpfile=use_tmpfile).open()
    pending.write([b"x"])
    with pytest.raises(StorageError, match=r"cannot store SERVICES/.*\(ENOTDIR\)"):
        pending.commit(TARGET)
    assert _files(tmp_path) == ["SERVICES"]


def test_missing_files_root(tmp_path: Path) -> None:
    with pytest.raises(StorageError, match=r"No such file or directory \(ENOENT\)"):
        FilesRoot(tmp_path / "missing").open()


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A directory an unprivileged user can reach (pytest's tmp_path is private to us)."""
    path = Path(tempfile.mkdtemp(prefix="oxidicom-test-"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path)


@contextlib.contextmanager
def _unable_to_write(directory: Path) -> Iterator[None]:
    """Make ``directory`` read-only to us; as root, by becoming nobody for a while."""
    if os.geteuid() != 0:
        directory.chmod(0o555)
        try:
            yield
        finally:
            directory.chmod(0o755)
        return
    os.setegid(NOBODY)
    os.seteuid(NOBODY)
    try:
        yield
    finally:
        os.seteuid(0)
        os.setegid(0)


def _give_to_nobody(directory: Path) -> None:
    if os.geteuid() == 0:
        os.chown(directory, NOBODY, NOBODY)


def test_read_only_files_root(shared_dir: Path, use_tmpfile: bool) -> None:
    root = FilesRoot(shared_dir, use_tmpfile=use_tmpfile)
    with _unable_to_write(shared_dir), pytest.raises(StorageError) as caught:
        root.open()
    assert caught.value.errno == errno.EACCES
    assert "Permission denied (EACCES)" in str(caught.value)
    assert _files(shared_dir) == []


def test_read_only_target_directory(shared_dir: Path, use_tmpfile: bool) -> None:
    files_root = shared_dir / "root"
    files_root.mkdir()
    (files_root / "SERVICES").mkdir(mode=0o755)
    (files_root / ".oxidicom").mkdir(mode=0o755)
    (files_root / ".oxidicom" / "tmp").mkdir(mode=0o755)
    for directory in (files_root, files_root / ".oxidicom", files_root / ".oxidicom" / "tmp"):
        _give_to_nobody(directory)
    root = FilesRoot(files_root, use_tmpfile=use_tmpfile)
    target = files_root / "SERVICES"
    with _unable_to_write(target):
        pending = root.open()
        pending.write([b"data"])
        with pytest.raises(StorageError, match=r"cannot store SERVICES/.*\(EACCES\)"):
            pending.commit(TARGET)
    assert _files(files_root) == []


def _other_file_system() -> Path:
    shm = Path("/dev/shm")
    assert shm.is_dir(), "these tests need a tmpfs at /dev/shm"
    return shm


def test_a_target_on_another_file_system_is_copied(tmp_path: Path, use_tmpfile: bool) -> None:
    elsewhere = Path(tempfile.mkdtemp(dir=_other_file_system()))
    try:
        assert elsewhere.stat().st_dev != tmp_path.stat().st_dev
        (tmp_path / "SERVICES").symlink_to(elsewhere)
        root = FilesRoot(tmp_path, use_tmpfile=use_tmpfile)
        for content in (b"first", b"second, over it"):
            pending = root.open()
            pending.write([content, b"!"])
            pending.commit(TARGET)
        assert (tmp_path / TARGET).read_bytes() == b"second, over it!"
        assert _files(elsewhere) == [TARGET.removeprefix("SERVICES/")]
        assert _files(tmp_path) == []  # no temporary file left (SERVICES is not followed)
    finally:
        shutil.rmtree(elsewhere)


def test_unsupported_o_tmpfile_falls_back_to_named_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_open = os.open

    def no_tmpfile(path: str, flags: int, mode: int = 0o777) -> int:
        if flags & os.O_TMPFILE == os.O_TMPFILE:
            raise OSError(errno.EOPNOTSUPP, os.strerror(errno.EOPNOTSUPP))
        return real_open(path, flags, mode)

    monkeypatch.setattr(os, "open", no_tmpfile)
    root = FilesRoot(tmp_path)
    before = root.uses_tmpfile
    pending = root.open()
    assert (before, root.uses_tmpfile) == (True, False)
    pending.write([b"named"])
    pending.commit(TARGET)
    assert (tmp_path / TARGET).read_bytes() == b"named"
    assert _files(tmp_path) == [TARGET]


_KILLED_WRITER = """
import sys
from oxidicom.storage.writer import FilesRoot
pending = FilesRoot(sys.argv[1]).open()
pending.write([b"x" * 100000])
print("written", flush=True)
sys.stdin.read()
"""


def test_a_killed_process_leaves_no_file(tmp_path: Path) -> None:
    with subprocess.Popen(
        [sys.executable, "-c", _KILLED_WRITER, str(tmp_path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    ) as child:
        assert child.stdout is not None
        assert child.stdout.readline() == "written\n"
        child.send_signal(signal.SIGKILL)
        assert child.wait(timeout=30) == -signal.SIGKILL
    assert _files(tmp_path) == []


def test_stale_temporary_files_of_a_crash_are_removed(tmp_path: Path) -> None:
    # The fallback's named files survive a crash; young ones may be another replica's.
    root = FilesRoot(tmp_path, use_tmpfile=False)
    pending = root.open()
    pending.write([b"half an instance"])
    [young] = (tmp_path / ".oxidicom" / "tmp").iterdir()
    old = young.with_name("dead.part")
    old.write_bytes(b"left by a crash")
    os.utime(old, (time.time() - 7200, time.time() - 7200))
    assert root.remove_stale_temporary_files(older_than=3600) == 1
    assert list((tmp_path / ".oxidicom" / "tmp").iterdir()) == [young]
    pending.discard()
    assert FilesRoot(tmp_path / "nothing-here").remove_stale_temporary_files(3600) == 0
