"""Every file fhto writes goes through here: key sets, public contexts, batches, checkpoints, run
options and report files.

Guarantees of :func:`write_atomic`
----------------------------------
A public file (``private=False``)
    is written to ``NAME.tmp-PID-TOKEN`` in the target's folder, flushed to disk (fsync) and
    renamed over ``NAME``: a reader sees the old file or the new one, whole, never a mix. On any
    error the temporary is removed. A process killed between creating it and the rename leaves
    it; the next write of ``NAME`` in that folder removes it once process PID has exited.
A secret file (``private=True``, a key set)
    is written to an unnamed file (``O_TMPFILE``) in the target's folder, mode 0600 from its
    creation, flushed to disk, and only then given a name, ``NAME`` itself, by a link through
    ``/proc/self/fd``. Killed at any moment, even by SIGKILL, the process leaves no new file or
    the whole file under its final name: the secret never has another name, and the system frees
    an unnamed file when its last descriptor closes. An existing ``NAME`` is unlinked just before
    the link (a link cannot replace a name), so a crash between the two leaves no ``NAME``: the
    old content was being replaced, and the new one was never used. A reader never sees a
    partial file.
    Where ``O_TMPFILE`` or ``/proc`` is missing (not Linux; a file system without it) the public
    scheme is used with a 0600 temporary: then a process killed before the rename leaves a 0600
    temporary, removed by the next write of ``NAME`` in that folder.

Stale temporaries of ``NAME`` (this module's ``NAME.tmp-PID-TOKEN``, and fhto 0.1's
``NAME.tmp-PID`` and ``.NAME.PID.HEX.tmp``) are removed before each write of ``NAME`` when no
process ``PID`` runs on this machine (a folder shared with other machines is assumed to be written
from one of them at a time). A temporary is never read as data.

When the system refuses (permission denied, a read-only file system, a file where a folder should
be, a full disk), the error is a :class:`~fhto_native.errors.StorageError` whose message names the
path and the system's reason, such as ``cannot write out/state.json: No space left on device``.
"""
from __future__ import annotations

import errno
import os
import re
import secrets
from pathlib import Path
from typing import List, Optional, Union

from .errors import StorageError

__all__ = ["write_atomic", "make_folder", "remove_file", "remove_stale_temporaries", "refused"]

PathLike = Union[str, "os.PathLike[str]"]

#: Names of temporaries of the file ``{name}``; group 1 is the writing process's id.
_TEMPORARY_PATTERNS = (r"{name}\.tmp-(\d+)(?:-[0-9a-f]+)?", r"\.{name}\.(\d+)\.[0-9a-f]+\.tmp")
#: What open(O_TMPFILE) fails with where the file system or the kernel lacks it.
_NO_TMPFILE = (errno.EOPNOTSUPP, errno.EISDIR)


def refused(action: str, path: PathLike, cause: Union[OSError, int]) -> StorageError:
    """The error for a refused ``action`` ("write", "read", "remove", "create folder") on ``path``."""
    number = cause if isinstance(cause, int) else cause.errno
    reason = os.strerror(number) if number else str(cause)
    return StorageError(f"cannot {action} {os.fspath(path)}: {reason}", errno=number, path=os.fspath(path))


def make_folder(path: PathLike) -> Path:
    """Create the folder ``path`` and its parents unless they exist; returns it as a Path.

    Raises
    ------
    StorageError
        The system refused, or a file (not a folder) has that name (``Not a directory``).
    """
    folder = Path(path)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except FileExistsError as exc:  # something that is not a folder has the name
        raise refused("create folder", folder, errno.ENOTDIR) from exc
    except OSError as exc:
        raise refused("create folder", folder, exc) from exc
    return folder


def remove_file(path: PathLike) -> None:
    """Remove the file ``path`` if there is one.

    Raises
    ------
    StorageError
        The system refused (the message names ``path`` and the reason).
    """
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise refused("remove", path, exc) from exc


def write_atomic(path: PathLike, data: bytes, *, private: bool = False) -> None:
    """Write ``data`` to ``path`` atomically (see the module's guarantees); ``private`` files are
    secret (mode 0600, never under a temporary name). The folder must exist.

    Raises
    ------
    StorageError
        The system refused (the message names ``path`` and the reason). No temporary is left.
    """
    target = Path(path)
    try:
        remove_stale_temporaries(target)
        if not (private and _write_unnamed(target, data)):
            _write_and_rename(target, data, private)
    except OSError as exc:
        raise refused("write", target, exc) from exc


def remove_stale_temporaries(path: PathLike) -> List[Path]:
    """Remove temporaries of ``path`` left by processes that no longer run; returns them.

    A temporary another user's process left in a shared folder (which this user may not remove)
    is left for its owner, and so is everything in a folder this user may write but not list.
    """
    target = Path(path)
    removed: List[Path] = []
    try:
        entries = os.scandir(target.parent)
    except PermissionError:
        return removed
    with entries:
        for entry in entries:
            pid = _temporary_pid(entry.name, target.name)
            if pid is None or _running(pid):
                continue
            try:
                os.unlink(entry.path)
            except (FileNotFoundError, PermissionError):  # removed meanwhile / not ours to remove
                continue
            removed.append(Path(entry.path))
    return removed


def _temporary_pid(name: str, target: str) -> Optional[int]:
    for pattern in _TEMPORARY_PATTERNS:
        match = re.fullmatch(pattern.format(name=re.escape(target)), name)
        if match:
            return int(match.group(1))
    return None


def _running(pid: int) -> bool:
    if pid == os.getpid():
        return True  # another thread of this process may be writing it
    if pid < 1:
        return False
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, OverflowError):  # no such process; a number no process can have
        return False
    except PermissionError:  # another user's process
        return True
    return True


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _write_and_rename(target: Path, data: bytes, private: bool) -> None:
    temporary = target.with_name(f"{target.name}.tmp-{os.getpid()}-{secrets.token_hex(4)}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600 if private else 0o666)
    try:
        try:
            if private:
                os.fchmod(fd, 0o600)  # exactly 0600, whatever the umask
            _write_all(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temporary, target)
    except BaseException:
        try:
            os.unlink(temporary)
        except FileNotFoundError:
            pass
        raise


def _write_unnamed(target: Path, data: bytes) -> bool:
    """The secret scheme: an O_TMPFILE file linked into place. False where it is unavailable (the
    caller then writes through a 0600 temporary); nothing was written then."""
    flag = getattr(os, "O_TMPFILE", None)
    if flag is None or not os.path.isdir("/proc/self/fd"):
        return False
    folder = os.open(target.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        try:
            fd = os.open(".", flag | os.O_WRONLY | os.O_CLOEXEC, 0o600, dir_fd=folder)
        except OSError as exc:
            if exc.errno in _NO_TMPFILE:
                return False
            raise
        try:
            os.fchmod(fd, 0o600)
            _write_all(fd, data)
            os.fsync(fd)
            _link(fd, target.name, folder)
            os.fsync(folder)  # the new name, on disk
        finally:
            os.close(fd)
    finally:
        os.close(folder)
    return True


def _link(fd: int, name: str, folder: int) -> None:
    """Give the unnamed file ``fd`` the name ``name`` in ``folder``, replacing a file of that name.

    ``os.link`` follows the /proc symlink only through linkat(AT_SYMLINK_FOLLOW), which it calls
    when given a directory descriptor.
    """
    source = f"/proc/self/fd/{fd}"
    try:
        os.link(source, name, dst_dir_fd=folder, follow_symlinks=True)
    except FileExistsError:
        os.unlink(name, dir_fd=folder)
        os.link(source, name, dst_dir_fd=folder, follow_symlinks=True)
