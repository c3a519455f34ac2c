"""The one atomic writer every file of fhto goes through (keys, checkpoints, report files)."""
from __future__ import annotations

import errno
import os
import signal
import stat
import subprocess
import sys
import time

import pytest

import fhto_native as fh
from fhto_native import _files
from fhto_native.errors import StorageError


def dead_pid() -> int:
    """The id of a process that has exited (and was reaped)."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def full_disk_under(monkeypatch, folder):
    """Make every os.write into a file under ``folder`` fail as a full disk would."""
    real = os.write

    def write(fd, data):
        if os.readlink(f"/proc/self/fd/{fd}").startswith(str(folder)):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(fd, data)

    monkeypatch.setattr(os, "write", write)


@pytest.mark.parametrize("private", [False, True])
def test_write_creates_and_replaces(tmp_path, private):
    path = tmp_path / "file.bin"
    _files.write_atomic(path, b"first", private=private)
    _files.write_atomic(path, b"second", private=private)
    assert path.read_bytes() == b"second"
    assert os.listdir(tmp_path) == ["file.bin"]
    mode = stat.S_IMODE(path.stat().st_mode)
    umask = os.umask(0)
    os.umask(umask)
    assert mode == (0o600 if private else 0o666 & ~umask)


@pytest.mark.parametrize("private", [False, True])
def test_a_full_disk_is_one_error_naming_the_file_and_leaves_no_temporary(tmp_path, monkeypatch, private):
    path = tmp_path / "file.bin"
    path.write_bytes(b"old")
    full_disk_under(monkeypatch, tmp_path)
    with pytest.raises(StorageError, match=f"^cannot write {path}: No space left on device$") as info:
        _files.write_atomic(path, b"new" * 1000, private=private)
    assert info.value.errno == errno.ENOSPC and isinstance(info.value, OSError)
    assert os.listdir(tmp_path) == ["file.bin"] and path.read_bytes() == b"old"


def test_a_missing_folder_is_one_error(tmp_path):
    with pytest.raises(StorageError, match=f"^cannot write {tmp_path}/no/such/k.keys: No such file or directory$"):
        _files.write_atomic(tmp_path / "no" / "such" / "k.keys", b"x", private=True)


def test_a_folder_where_the_file_should_be_is_one_error(tmp_path):
    (tmp_path / "k.keys").mkdir()
    with pytest.raises(StorageError, match="^cannot write .*k.keys: Is a directory$"):
        _files.write_atomic(tmp_path / "k.keys", b"x", private=True)
    with pytest.raises(StorageError, match="^cannot write .*k.keys: Is a directory$"):
        _files.write_atomic(tmp_path / "k.keys", b"x")


def test_make_folder_names_the_folder_and_the_cause(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(StorageError, match=f"^cannot create folder {tmp_path}/file: Not a directory$"):
        _files.make_folder(tmp_path / "file")
    with pytest.raises(StorageError, match=f"^cannot create folder {tmp_path}/file/sub: Not a directory$"):
        _files.make_folder(tmp_path / "file" / "sub")
    assert _files.make_folder(tmp_path / "a" / "b").is_dir()


def test_secret_files_never_have_a_temporary_name(tmp_path, monkeypatch):
    """The secret path creates no named file but the target (O_TMPFILE, then a link)."""
    created = []
    real_open = os.open

    def spy(path, flags, *args, **kwargs):
        if flags & os.O_CREAT:
            created.append(path)
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", spy)
    _files.write_atomic(tmp_path / "k.keys", b"secret", private=True)
    assert created == [] and (tmp_path / "k.keys").read_bytes() == b"secret"


def test_without_o_tmpfile_secret_files_fall_back_to_a_private_temporary(tmp_path, monkeypatch):
    real_open = os.open
    modes = []

    def no_tmpfile(path, flags, *args, **kwargs):
        if flags & os.O_TMPFILE == os.O_TMPFILE:
            raise OSError(errno.EOPNOTSUPP, os.strerror(errno.EOPNOTSUPP))
        if flags & os.O_CREAT:
            modes.append(args[0] if args else kwargs.get("mode"))
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", no_tmpfile)
    _files.write_atomic(tmp_path / "k.keys", b"secret", private=True)
    assert modes == [0o600] and os.listdir(tmp_path) == ["k.keys"]
    assert stat.S_IMODE((tmp_path / "k.keys").stat().st_mode) == 0o600


def test_stale_temporaries_of_dead_processes_are_removed_on_the_next_write(tmp_path):
    dead = dead_pid()
    stale = [f"k.keys.tmp-{dead}", f"state.json.tmp-{dead}-0123abcd", f".summary.md.{dead}.0123abcd.tmp"]
    kept = [f"k.keys.tmp-{os.getppid()}-0123abcd",  # a live process may be writing it
            "k.keys.tmp-notapid", "other.keys.tmp-1"]  # not a temporary of these files
    for name in stale + kept:
        (tmp_path / name).write_text("partial")
    for name in ("k.keys", "state.json", "summary.md"):
        _files.write_atomic(tmp_path / name, b"x", private=name.endswith(".keys"))
    assert sorted(os.listdir(tmp_path)) == sorted(kept + ["k.keys", "state.json", "summary.md"])


_SAVE_FOREVER = """
import sys
import fhto_native as fh
keys = fh.KeySet.generate("compact")
print("ready", flush=True)
while True:
    keys.save(sys.argv[1])
"""


def test_a_key_set_save_killed_at_any_moment_leaves_no_secret_in_a_temporary_name(tmp_path):
    """SIGKILL during KeySet.save (the key file is rewritten in a loop): afterwards the folder
    holds the key file, whole, and nothing else."""
    path = tmp_path / "k.keys"
    for delay in (0.01, 0.03, 0.07, 0.11, 0.19):
        proc = subprocess.Popen([sys.executable, "-c", _SAVE_FOREVER, str(path)], stdout=subprocess.PIPE)
        assert proc.stdout.readline() == b"ready\n"
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        names = os.listdir(tmp_path)
        assert names in ([], ["k.keys"]), names
        if names:
            assert fh.KeySet.load(path).fingerprint and stat.S_IMODE(path.stat().st_mode) == 0o600
