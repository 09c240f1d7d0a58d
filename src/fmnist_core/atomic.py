"""Atomic file writes (a temporary file in the same folder, fsync, then rename into place) and the
lock of a folder one process writes into.

A write that fails (a read-only folder, a full disk) is a ``StorageError`` naming the file: the
previous file stays as it was and no temporary file is left behind.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from .errors import StorageError

_HINTS = {
    errno.ENOSPC: "free space on that disk, or write elsewhere (--out)",
    errno.EDQUOT: "free space within your quota, or write elsewhere (--out)",
    errno.EROFS: "that file system is read-only: write elsewhere (--out)",
    errno.EACCES: "you may not write there: write elsewhere (--out), or fix its permissions",
    errno.EPERM: "you may not write there: write elsewhere (--out), or fix its permissions",
    errno.EISDIR: "that is a folder: name a file inside it, or another path",
    errno.ENOTDIR: "part of that path is a file, not a folder: name another path",
}


def storage_error(path: str | os.PathLike, exc: OSError) -> StorageError:
    """The one-line error for a write to ``path`` that the system refused."""
    return StorageError(
        f"cannot write {path}: {exc.strerror or exc}",
        fix=_HINTS.get(exc.errno or 0, "check the folder") + "; what was saved before is intact",
    )


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _current_umask()


@contextlib.contextmanager
def atomic_writer(path: str | os.PathLike, mode: str = "wb") -> Iterator[IO[Any]]:
    """Open a temporary file beside ``path``; on success it replaces ``path`` atomically.

    If the block raises (or the process dies), ``path`` keeps its previous content.
    """
    path = Path(path)
    if path.is_dir():
        raise storage_error(path, IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR)))
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise storage_error(path, exc) from None
    try:
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; saved files get the usual mode
        with os.fdopen(fd, mode) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if isinstance(exc, OSError) and exc.errno in _HINTS:
            raise storage_error(path, exc) from None  # names the target, not the temporary file
        raise
    _fsync_dir(path.parent)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_writer(path, "wb") as handle:
        handle.write(data)


def atomic_write_json(path: str | os.PathLike, obj: Any) -> None:
    """Write ``obj`` as indented JSON to ``path`` atomically."""
    with atomic_writer(path, "w") as handle:
        json.dump(obj, handle, indent=2, sort_keys=True)
        handle.write("\n")


def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def folder_lock(folder: str | os.PathLike) -> Iterator[None]:
    """Hold ``folder/.fmnist.lock`` (this process's pid) for the block: a second process that
    asks is a ``StorageError`` naming the holder; a lock left by a process that is gone is taken
    over. The same process may take it again (nested)."""
    folder = Path(folder)
    lock = folder / ".fmnist.lock"
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise storage_error(folder, exc) from None
    mine = False
    for _ in range(3):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            if not _regular(lock):  # not a lock fmnist wrote (a FIFO, a link): replaced
                try:
                    lock.unlink()
                except FileNotFoundError:
                    pass
                except OSError as exc:
                    raise storage_error(lock, exc) from None
                continue
            holder = _holder(lock)
            if holder == os.getpid():
                break  # this process holds it already
            if holder is None and _age(lock) < 5:
                holder = -1  # just created: its holder is writing its pid
            if holder is not None and (holder < 0 or _alive(holder)):
                raise StorageError(
                    f"{folder} is being written by process {holder} (its lock {lock})",
                    fix="wait for it to finish, or use another folder",
                ) from None
            with contextlib.suppress(FileNotFoundError):
                lock.unlink()  # the holder is gone: take the lock over
            continue
        except OSError as exc:
            raise storage_error(lock, exc) from None
        with os.fdopen(fd, "w") as handle:
            handle.write(str(os.getpid()))
        mine = True
        break
    try:
        yield
    finally:
        if mine:
            with contextlib.suppress(OSError):
                lock.unlink()


def _regular(path: Path) -> bool:
    import stat

    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except OSError:
        return True  # gone meanwhile: the next attempt creates it


def _holder(lock: Path) -> int | None:
    """The pid in a lock file (a regular file: a FIFO is never opened, so never a hang)."""
    try:
        if not _regular(lock):
            return None
        with open(lock, "rb") as handle:
            return int(handle.read(32).strip() or 0) or None
    except (OSError, ValueError):
        return None


def _age(path: Path) -> float:
    import time

    try:
        return time.time() - path.stat().st_mtime
    except OSError:
        return 0.0


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


MAX_RECORD_BYTES = 16 * 2**20  # a config, model spec or run record is kilobytes


def read_user_file(
    path: str | os.PathLike, what: str, limit: int = MAX_RECORD_BYTES, fix: str = ""
) -> str:
    """The text of a small file a user names (a config, a model spec, a run's records): a
    special file (a device, a FIFO, a socket) is refused without opening it for reading, and
    more than ``limit`` bytes is refused before it is parsed, whatever the file claims."""
    import stat

    from .errors import ConfigError

    try:
        info = os.stat(path)
    except OSError as exc:
        raise ConfigError(
            f"cannot read {what} {path}: {exc.strerror}", fix=fix or "check the path"
        ) from None
    if not stat.S_ISREG(info.st_mode):
        raise ConfigError(f"{what} {path} is not a regular file", fix=fix or "give a file")
    try:
        with open(path, "rb") as handle:
            data = handle.read(limit + 1)
    except OSError as exc:
        raise ConfigError(
            f"cannot read {what} {path}: {exc.strerror}", fix=fix or "check the path"
        ) from None
    if len(data) > limit:
        raise ConfigError(
            f"{what} {path} is larger than {limit // 2**20} MiB, more than it can honestly need",
            fix=fix or "give the right file",
        )
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(
            f"{what} {path} is not UTF-8 text", fix=fix or "give a text file"
        ) from None


MARKER = ".fmnist-written"
"""The file fmnist puts in each folder it writes whole (an export folder, an ejected program's
folder): JSON naming what wrote it. Only a folder carrying the same kind is ever replaced."""


def written_kind(folder: Path) -> str | None:
    """What fmnist wrote ``folder`` as (its marker's ``kind``), or None."""
    try:
        with open(folder / MARKER, "rb") as handle:
            data = json.loads(handle.read(4096))
    except (OSError, ValueError):
        return None
    kind = data.get("kind") if isinstance(data, dict) else None
    return kind if isinstance(kind, str) else None


def check_replaceable(path: str | os.PathLike, kind: str | None) -> None:
    """Refuse, before anything is written, a ``path`` that fmnist may not replace: for a folder
    written whole (``kind`` given), anything there but an empty folder or fmnist's own folder of
    that kind; for a file (``kind`` None), a folder or anything not a plain file or link."""
    path = Path(path)
    if not os.path.lexists(path):
        return
    if kind is None:
        if path.is_symlink() or path.is_file():
            return
        what = "a folder" if path.is_dir() else "not a plain file"
        raise StorageError(
            f"{path} is {what}; fmnist writes a file there only in place of a file",
            fix="name a file path, or move that aside",
        )
    if path.is_dir() and not path.is_symlink():
        found = written_kind(path)
        if found == kind or not any(path.iterdir()):
            return
        what = f"fmnist's {found} output" if found else "a folder fmnist did not write"
        raise StorageError(
            f"{path} is {what}; fmnist replaces only an empty folder or its own {kind} output",
            fix="name another --out, or move that folder aside",
        )
    raise StorageError(
        f"{path} is a file, not a folder for the {kind} output",
        fix="name another --out, or move that file aside",
    )


def staged_folder(path: str | os.PathLike, kind: str) -> Path:
    """An empty folder beside ``path`` (the mode a plain ``mkdir`` gives, with fmnist's marker
    of ``kind``), to fill and then ``move_into_place``."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        staged = Path(tempfile.mkdtemp(prefix=".partial-", suffix=f"-{path.name}", dir=path.parent))
        os.chmod(staged, 0o777 & ~_UMASK)  # mkdtemp makes 0700
        (staged / MARKER).write_text(json.dumps({"written_by": "fmnist", "kind": kind}) + "\n")
    except OSError as exc:
        raise storage_error(path, exc) from None
    return staged


def staged_file(path: str | os.PathLike, suffix: str = "") -> Path:
    """An empty file beside ``path`` (the mode ``open`` gives) whose name ends as ``path``'s
    does, and with ``suffix`` where ``path`` lacks it (writers that check the suffix)."""
    path = Path(path)
    ending = path.name if path.name.endswith(suffix) else path.name + suffix
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, name = tempfile.mkstemp(prefix=".partial-", suffix=f"-{ending}", dir=path.parent)
        os.close(handle)
        os.chmod(name, 0o666 & ~_UMASK)
    except OSError as exc:
        raise storage_error(path, exc) from None
    return Path(name)


def remove_staged(path: Path) -> None:
    """Remove a staged file or folder (one fmnist made: a partial write)."""
    import shutil

    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def move_into_place(staged: Path, path: str | os.PathLike, kind: str | None = None) -> None:
    """``staged`` becomes ``path``, checked again by ``check_replaceable``: a folder of fmnist's
    of the same ``kind`` is set aside, the new one renamed in, then the old one removed."""
    path = Path(path)
    check_replaceable(path, kind)
    try:
        if kind is not None and path.is_dir() and not path.is_symlink():
            old = Path(tempfile.mkdtemp(prefix=".old-", suffix=f"-{path.name}", dir=path.parent))
            os.replace(path, old / path.name)
            os.replace(staged, path)
            remove_staged(old)
        else:
            os.replace(staged, path)
    except OSError as exc:
        raise storage_error(path, exc) from None
    _fsync_dir(path.parent)
