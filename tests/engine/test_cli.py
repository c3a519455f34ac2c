from __future__ import annotations

import errno
import os
import shutil
import stat
import subprocess
import sys

import numpy as np
import pytest

import fhto_native as fh
from fhto_native.cli import main
from fhto_native.errors import ParameterError
from test_files import full_disk_under


def test_demo_runs_end_to_end(capsys):
    assert main(["demo", "--hospitals", "3", "--values", "9000", "--threads", "2"]) == 0
    out = capsys.readouterr().out
    assert "hospital   3/3" in out and "FedAvg max abs error" in out


def test_demo_quiet_prints_nothing(capsys):
    assert main(["demo", "--hospitals", "2", "--values", "100", "--quiet"]) == 0
    assert capsys.readouterr().out == ""


def test_demo_refuses_bad_counts(capsys):
    with pytest.raises(SystemExit):
        main(["demo", "--hospitals", "0"])
    assert "must be at least 1" in capsys.readouterr().err


def test_keygen_writes_a_private_key_set_and_a_public_context(tmp_path, capsys):
    secret, public = tmp_path / "k.keys", tmp_path / "k.pub"
    assert main(["keygen", "--secret", str(secret), "--public", str(public)]) == 0
    assert stat.S_IMODE(os.stat(secret).st_mode) == 0o600
    keys, server = fh.KeySet.load(secret), fh.PublicContext.load(public)
    assert keys.fingerprint == server.fingerprint
    x = np.linspace(-1, 1, 50)
    np.testing.assert_allclose(keys.decrypt(fh.aggregate([keys.encrypt(x)], server)), x, atol=1e-8)


# -- operating-system failures: one line on stderr naming the path and the cause, no traceback ------------
QUICK_RUN = ["--rounds", "2", "--no-compare", "--no-audit", "--no-scheduler-experiment", "--bootstrap", "20", "--quiet"]


def one_line_error(code: int, err: str, *fragments: str) -> str:
    assert code not in (0, None), err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    line = err.strip()
    for fragment in fragments:
        assert fragment in line, line
    return line


def temporaries(folder) -> list:
    return [str(p) for p in folder.rglob("*") if ".tmp" in p.name]


def test_run_into_a_regular_file_is_one_line(tmp_path, capsys):
    (tmp_path / "file").write_text("not a folder")
    for out in (tmp_path / "file", tmp_path / "file" / "report"):
        code = main(["run", *QUICK_RUN, "--out", str(out)])
        line = one_line_error(code, capsys.readouterr().err, f"cannot create folder {out}: Not a directory")
        assert line.startswith("fhto run: error: ")
    assert (tmp_path / "file").read_text() == "not a folder"


def test_keygen_into_a_regular_file_or_a_missing_folder_is_one_line(tmp_path, capsys):
    (tmp_path / "file").write_text("")
    for secret, cause in ((tmp_path / "file" / "k.keys", "Not a directory"),
                          (tmp_path / "missing" / "k.keys", "No such file or directory")):
        code = main(["keygen", "--secret", str(secret), "--public", str(tmp_path / "k.pub")])
        one_line_error(code, capsys.readouterr().err, f"fhto keygen: error: cannot write {secret}: {cause}")
    assert sorted(os.listdir(tmp_path)) == ["file"]  # keygen creates no folder: a typo must not hide a secret key


@pytest.mark.parametrize("failing", ["options.json", "state.json", "summary.md"])
def test_run_on_a_full_disk_is_one_line_and_leaves_no_temporary(tmp_path, monkeypatch, capsys, failing):
    """Each kind of file ``fhto run`` writes (run options, checkpoint, report) meets ENOSPC."""
    out = tmp_path / "report"
    real = os.write

    def write(fd, data):
        target = os.readlink(f"/proc/self/fd/{fd}")  # a temporary named after its file, or an unnamed one
        if target.startswith(str(out / "")) and failing in target:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(fd, data)

    monkeypatch.setattr(os, "write", write)
    code = main(["run", *QUICK_RUN, "--out", str(out)])
    line = one_line_error(code, capsys.readouterr().err, "No space left on device")
    assert line.startswith(f"fhto run: error: cannot write {out}/") and f"{failing}: No space" in line
    assert temporaries(out) == []


def test_keygen_on_a_full_disk_is_one_line_and_leaves_no_temporary(tmp_path, monkeypatch, capsys):
    full_disk_under(monkeypatch, tmp_path)
    code = main(["keygen", "--secret", str(tmp_path / "k.keys"), "--public", str(tmp_path / "k.pub")])
    one_line_error(code, capsys.readouterr().err, f"cannot write {tmp_path / 'k.keys'}: No space left on device")
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("error, status, line", [
    (OSError(errno.EIO, os.strerror(errno.EIO), "/dev/sdz"), 1, "fhto keygen: error: /dev/sdz: Input/output error"),
    (ParameterError("bad\nthing"), 2, "fhto keygen: error: bad thing"),
])
def test_any_os_or_fhto_error_is_one_line(monkeypatch, capsys, tmp_path, error, status, line):
    def fail(*args, **kwargs):
        raise error

    monkeypatch.setattr(fh.KeySet, "generate", fail)
    assert main(["keygen", "--secret", str(tmp_path / "k.keys")]) == status
    assert capsys.readouterr().err == line + "\n"


# Root ignores permission bits, so a read-only folder is made read-only for root too: an immutable
# folder (chattr +i; even root gets EPERM) or a read-only bind mount / a tiny tmpfs in a private
# mount namespace (unshare -m: the mount vanishes with the process). Where the machine allows
# neither (no ext4-like file system, no CAP_SYS_ADMIN), these tests skip and say why.


def fhto(*args: str):
    return subprocess.run([sys.executable, "-m", "fhto_native.cli", *args], capture_output=True, text=True,
                          timeout=300)


def fhto_in_namespace(setup: str, folder, *args: str):
    """``fhto ARGS`` in a private mount namespace prepared by the shell command ``setup``; stdout
    lists what is left in ``folder``, seen from inside (where the mount is)."""
    script = f'{setup} && "$@" >/dev/null; rc=$?; find "{folder}" -mindepth 1 -printf "%P\\n"; exit $rc'
    return subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh",
                           sys.executable, "-m", "fhto_native.cli", *args], capture_output=True, text=True,
                          timeout=300)


def _can(command: list) -> bool:
    try:
        return shutil.which(command[0]) is not None and subprocess.run(command, capture_output=True).returncode == 0
    except OSError:
        return False


@pytest.fixture
def immutable_folder(tmp_path):
    folder = tmp_path / "read-only"
    folder.mkdir()
    if not _can(["chattr", "+i", str(folder)]):
        pytest.skip("chattr +i is not possible here (needs root and an ext4/xfs-like file system)")
    yield folder
    subprocess.run(["chattr", "-i", str(folder)], check=True)


@pytest.fixture
def private_mounts(tmp_path):
    """Skips unless a mount in a private mount namespace is possible here."""
    probe = tmp_path / "probe"
    probe.mkdir()
    if not _can(["unshare", "--mount", "--propagation", "private", "mount", "-t", "tmpfs", "tmpfs", str(probe)]):
        pytest.skip("no private mount namespace here (unshare -m and mount need CAP_SYS_ADMIN): cannot make a "
                    "read-only or a full file system")


def test_run_into_an_immutable_folder_is_one_line(immutable_folder):
    done = fhto("run", *QUICK_RUN, "--out", str(immutable_folder))
    one_line_error(done.returncode, done.stderr,
                   f"fhto run: error: cannot create folder {immutable_folder / 'checkpoints'}: Operation not permitted")
    assert os.listdir(immutable_folder) == []


def test_keygen_into_an_immutable_folder_is_one_line(immutable_folder):
    secret = immutable_folder / "k.keys"
    done = fhto("keygen", "--secret", str(secret), "--public", str(immutable_folder / "k.pub"))
    one_line_error(done.returncode, done.stderr, f"fhto keygen: error: cannot write {secret}: Operation not permitted")
    assert os.listdir(immutable_folder) == []


@pytest.mark.parametrize("command", ["run", "keygen"])
def test_a_read_only_file_system_is_one_line(private_mounts, tmp_path, command):
    folder = tmp_path / "ro"
    folder.mkdir()
    args = [*QUICK_RUN, "--out", str(folder)] if command == "run" else [
        "--secret", str(folder / "k.keys"), "--public", str(folder / "k.pub")]
    done = fhto_in_namespace(f"mount --bind -o ro '{folder}' '{folder}'", folder, command, *args)
    one_line_error(done.returncode, done.stderr, f"fhto {command}: error: cannot ", "Read-only file system")
    assert done.stdout == ""


@pytest.mark.parametrize("command", ["run", "keygen"])
def test_a_really_full_disk_is_one_line_and_leaves_no_temporary(private_mounts, tmp_path, command):
    """A 16 KiB tmpfs: room for the run options and the first checkpoint, not for the next one
    beside it, nor for a key set."""
    folder = tmp_path / "small"
    folder.mkdir()
    args = [*QUICK_RUN, "--out", str(folder)] if command == "run" else [
        "--secret", str(folder / "k.keys"), "--public", str(folder / "k.pub")]
    done = fhto_in_namespace(f"mount -t tmpfs -o size=16k tmpfs '{folder}'", folder, command, *args)
    line = one_line_error(done.returncode, done.stderr, f"fhto {command}: error: cannot write {folder}/",
                          "No space left on device")
    assert ".tmp" not in done.stdout, done.stdout
    if command == "keygen":
        assert done.stdout == "" and line.endswith(f"{folder}/k.keys: No space left on device")


def test_keygen_steps_build_a_consortium_no_party_holds_the_key_of(tmp_path, capsys):
    """The per-hospital steps of a real consortium, 2-of-3, each hospital in its own folder."""
    from fhto_native import multiparty as mp

    run = lambda *argv: main(["keygen", *map(str, argv)])  # noqa: E731
    consortium = tmp_path / "consortium.fhto"
    assert run("consortium", "--parties", 3, "--threshold", 2, "--out", consortium) == 0
    homes = [tmp_path / f"h{i}" for i in (1, 2, 3)]
    publics = []
    for i, home in enumerate(homes, 1):
        home.mkdir()
        assert run("share", "--consortium", consortium, "--party", i, "--secret", home / "share.key",
                   "--public", tmp_path / f"party-{i}.public") == 0
        assert stat.S_IMODE(os.stat(home / "share.key").st_mode) == 0o600
        publics.append(tmp_path / f"party-{i}.public")
    code = run("share", "--consortium", consortium, "--party", 1, "--secret", homes[0] / "share.key")
    assert code == 2 and "is not overwritten" in capsys.readouterr().err
    relay = tmp_path / "relay"
    for home in homes:
        assert run("send", "--secret", home / "share.key", "--publics", *publics, "--outbox", relay) == 0
    for i, home in enumerate(homes, 1):
        inbox = sorted(relay.glob(f"to-{i}-from-*.msg"))
        assert len(inbox) == (2 if i == 1 else 3)  # Shamir pieces from the two others, and the tag key from party 1
        assert run("receive", "--secret", home / "share.key", "--publics", *publics, "--messages", *inbox) == 0
    assert run("combine", "--consortium", consortium, "--publics", *publics, "--out", tmp_path / "collective.pub") == 0
    public = fh.PublicContext.load(tmp_path / "collective.pub")
    c = mp.Consortium.from_bytes(consortium.read_bytes())
    shares = [mp.KeyShare.load(home / "share.key") for home in homes]
    xs = [np.linspace(-1, 1, 1000) * (i + 1) / 4 for i in range(3)]
    ups = [public.encrypt(x, parties=3).to_bytes() for x in xs]
    tags = [s.sign_tag(public, u, 7).to_bytes() for s, u in zip(shares, ups)]
    total = fh.aggregate(ups, public).to_bytes()
    parts = [mp.Party(s, public).decryption_share(total, [1, 3], round=7, tags=tags) for s in (shares[0], shares[2])]
    assert np.max(np.abs(mp.combine(c, public, total, parts) - sum(xs))) <= c.error_bound(3, public=public, max_abs=1.0)


def test_keygen_refuses_to_overwrite_a_key_set_without_force(tmp_path, capsys):
    secret, public = tmp_path / "k.keys", tmp_path / "k.pub"
    assert main(["keygen", "--secret", str(secret), "--public", str(public)]) == 0
    before = secret.read_bytes()
    code = main(["keygen", "--secret", str(secret), "--public", str(public)])
    one_line_error(code, capsys.readouterr().err, f"fhto keygen: error: {secret} exists; a secret key file is not overwritten")
    assert secret.read_bytes() == before
    assert main(["keygen", "--secret", str(secret), "--public", str(public), "--force"]) == 0
    assert secret.read_bytes() != before


def test_every_option_shows_its_default():
    import argparse

    from fhto_native.cli import _Help, build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    checked = 0
    for command, p in sub.choices.items():
        for action in p._actions:
            if not action.option_strings or action.default in (None, False, argparse.SUPPRESS) or action.help == argparse.SUPPRESS:
                continue
            assert "default" in _Help(command)._get_help_string(action), (command, action.option_strings)
            checked += 1
        assert "(default" in p.format_help() or command in ("receive", "send", "combine", "share"), command
    assert checked > 40


def test_ctrl_c_is_one_line_and_exit_130(monkeypatch, capsys):
    import fhto_native.cli as cli

    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "demo", interrupted)
    parser = cli.build_parser
    monkeypatch.setattr(cli, "build_parser", lambda: _with_func(parser(), "demo", interrupted))
    assert cli.main(["demo"]) == 130
    assert capsys.readouterr().err == "fhto demo: interrupted\n"


def test_a_missing_optional_package_names_its_extra(monkeypatch, capsys):
    import fhto_native.cli as cli

    def needs_torch(args):
        raise ModuleNotFoundError("No module named 'torch'", name="torch")

    parser = cli.build_parser
    monkeypatch.setattr(cli, "build_parser", lambda: _with_func(parser(), "demo", needs_torch))
    assert cli.main(["demo"]) == 2
    assert capsys.readouterr().err == "fhto demo: error: this needs the torch package: pip install 'fhto-native[study]'\n"


def _with_func(parser, command, func):
    sub = next(a for a in parser._actions if isinstance(a, __import__("argparse")._SubParsersAction))
    sub.choices[command].set_defaults(func=func)
    return parser
