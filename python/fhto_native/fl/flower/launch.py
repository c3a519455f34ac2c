"""A Flower deployment on one machine over real processes: one ``flower-superlink``, one
``flower-supernode`` per hospital, the app submitted with ``flwr run``, and every process stopped
afterwards, also on error and on Ctrl-C.

Each process gets its own ``FLWR_HOME`` under the work folder, Flower's telemetry and update
check off, and runtime dependency installation off (nothing is downloaded: the app's code is the
installed ``fhto_native``). Processes run in their own process groups and carry a marker in their
environment, so :meth:`LocalDeployment.stop` finds and stops every descendant (the SuperLink's
``flwr-serverapp``, the SuperNodes' ``flwr-clientapp``) and can prove none is left.
"""
from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Tuple

from ..._files import make_folder, write_atomic
from ...errors import FhtoError
from . import FLOWER_ENVIRONMENT

__all__ = ["LocalDeployment", "DeploymentError", "write_app"]

_BIN = Path(sys.executable).parent
_MARK = "FHTO_DEPLOYMENT"
_CONNECTION = "fhto-local"


class DeploymentError(FhtoError, RuntimeError):
    """A Flower process failed to start, the run failed, or a process could not be stopped."""


def write_app(folder: Path, server_app: str, client_app: str) -> Path:
    """A Flower app folder (pyproject.toml) whose components live in the installed package."""
    make_folder(folder)
    write_atomic(folder / "pyproject.toml", f"""[build-system]
requires = ["hatchling"]
build-backend = "hatchling.build"

[project]
name = "fhto-flower"
version = "1.0.0"
description = "FHTO: homomorphic aggregation on Flower"
license = "MIT"
dependencies = ["flwr>=1.42.0"]

[tool.flwr.app]
publisher = "fhto"

[tool.flwr.app.components]
serverapp = "{server_app}"
clientapp = "{client_app}"

[tool.flwr.app.config]
fhto-config = ""
""".encode())
    return folder


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=0.5) as r:  # noqa: S310 - loopback
            return r.status == 200
    except Exception:  # noqa: BLE001 - not up yet
        return False


class LocalDeployment:
    """Start with :meth:`start`, run apps with :meth:`run`, always :meth:`stop` (or use ``with``)."""

    def __init__(self, folder: Path, say=print) -> None:
        self.folder = make_folder(folder)
        self.say = say
        self.marker = uuid.uuid4().hex
        self.procs: Dict[str, subprocess.Popen] = {}
        self._logs: List = []
        self.env = {**os.environ, **FLOWER_ENVIRONMENT, "FLWR_DISABLE_RUNTIME_DEPENDENCY_INSTALLATION": "1",
                    "PATH": f"{_BIN}{os.pathsep}{os.environ.get('PATH', '')}", "PYTHONUNBUFFERED": "1",
                    _MARK: self.marker}
        self.port: Optional[int] = None

    def __enter__(self) -> "LocalDeployment":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- processes --------------------------------------------------------------------------
    def _home(self, name: str) -> Path:
        return make_folder(self.folder / "flwr-home" / name)

    def _spawn(self, name: str, command: List[str]) -> subprocess.Popen:
        log = open(self.folder / f"{name}.log", "wb")  # noqa: SIM115 - closed in stop()
        self._logs.append(log)
        proc = subprocess.Popen(command, env={**self.env, "FLWR_HOME": str(self._home(name))}, stdout=log,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        self.procs[name] = proc
        return proc

    def _wait_ready(self, name: str, port: int, timeout: float) -> None:
        proc, deadline = self.procs[name], time.monotonic() + timeout
        ours = f"Uvicorn running on http://127.0.0.1:{port}".encode()
        while not (ours in (self.folder / f"{name}.log").read_bytes() and _healthy(port)):
            if proc.poll() is not None:
                raise DeploymentError(f"{name} exited with code {proc.returncode} while starting: {self._reason(name)}")
            if time.monotonic() > deadline:
                raise DeploymentError(f"{name} was not ready after {timeout:g} s (log: {self.folder / (name + '.log')})")
            time.sleep(0.1)

    def _reason(self, name: str) -> str:
        """The line of a process's log that says why it stopped (its errors first), without colors."""
        text = re.sub(r"\x1b\[[0-9;]*m", "", (self.folder / f"{name}.log").read_text(errors="replace"))
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        for pattern in (r"\[Errno \d+\]|in use", r"\bERROR\b|Error:|Exception:"):
            found = [line for line in lines if re.search(pattern, line)]
            if found:
                return " | ".join(found[:2])
        return " | ".join(lines[-3:])

    def start(self, nodes: Mapping[str, Mapping[str, object]], port: Optional[int] = None, timeout: float = 60.0) -> None:
        """Start the SuperLink on ``port`` (a free one by default) and one SuperNode per entry of
        ``nodes`` (name -> its node config)."""
        self.port = port or _free_port()
        self._spawn("superlink", [str(_BIN / "flower-superlink"), "--insecure", "--host", "127.0.0.1",
                                  "--port", str(self.port), "--disable-runtime-dependency-installation"])
        self._wait_ready("superlink", self.port, timeout)
        ports = {}
        for name, config in nodes.items():
            ports[name] = _free_port()
            node_config = " ".join(f"{k}={json.dumps(v)}" for k, v in config.items())
            self._spawn(name, [str(_BIN / "flower-supernode"), "--insecure", "--superlink", f"127.0.0.1:{self.port}",
                               "--host", "127.0.0.1", "--port", str(ports[name]), "--node-config", node_config])
        for name, node_port in ports.items():
            self._wait_ready(name, node_port, timeout)
        home = self._home("cli")
        write_atomic(home / "config.toml", (f'[superlink]\ndefault = "{_CONNECTION}"\n\n[superlink.{_CONNECTION}]\n'
                                            f'address = "127.0.0.1:{self.port}"\ninsecure = true\n').encode())

    def node_ids(self) -> Dict[str, int]:
        """Each started SuperNode's id, as its log announces it (``SuperNode ID: N``)."""
        ids = {}
        for name in self.procs:
            log = (self.folder / f"{name}.log").read_text(errors="replace")
            found = re.search(r"SuperNode ID: (\d+)", log)
            if found:
                ids[name] = int(found.group(1))
        return ids

    def kill(self, name: str) -> None:
        """SIGKILL one started process group (to test a node lost mid-round)."""
        try:
            os.killpg(self.procs[name].pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    # -- runs ---------------------------------------------------------------------------------
    def _cli(self, *args: str, timeout: float = 120.0) -> subprocess.CompletedProcess:
        return subprocess.run([str(_BIN / "flwr"), *args], env={**self.env, "FLWR_HOME": str(self._home("cli"))},
                              capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)

    def submit(self, app: Path, run_config: Mapping[str, object]) -> int:
        args = ["run", str(app), _CONNECTION, "--format", "json"]
        for key, value in run_config.items():
            args += ["--run-config", f"{key}={json.dumps(value)}"]
        done = self._cli(*args)
        try:
            answer = json.loads(done.stdout)
        except ValueError:
            answer = {}
        if done.returncode != 0 or not answer.get("success"):
            raise DeploymentError(f"flwr run failed (exit {done.returncode}): {(done.stdout + done.stderr).strip()[-400:]}")
        return int(answer["run-id"])

    def status(self, run: int) -> str:
        done = self._cli("ls", _CONNECTION, "--run-id", str(run), "--format", "json")
        try:
            return str(json.loads(done.stdout)["runs"][0]["status"])
        except (ValueError, KeyError, IndexError):
            raise DeploymentError(f"flwr ls failed (exit {done.returncode}): {(done.stdout + done.stderr).strip()[-400:]}") from None

    def wait(self, run: int, timeout: float, poll: float = 0.5) -> str:
        """Wait until the run finished; returns Flower's final status (``finished:completed`` ...)."""
        deadline = time.monotonic() + timeout
        while True:
            status = self.status(run)
            if status.startswith("finished"):
                return status
            link = self.procs.get("superlink")
            if link is not None and link.poll() is not None:
                raise DeploymentError(f"the SuperLink exited with code {link.returncode} during run {run}")
            if time.monotonic() > deadline:
                raise DeploymentError(f"run {run} did not finish within {timeout:g} s")
            time.sleep(poll)

    def stop_run(self, run: int) -> None:
        """Ask the SuperLink to stop a run (its ServerApp died, or the launcher gives up on it)."""
        self._cli("stop", str(run), _CONNECTION)

    def server_app_alive(self) -> bool:
        """Whether a ``flwr-serverapp`` process of this deployment is running."""
        return any("flwr-serverapp" in command for _, command in self.leftovers())

    def run_log(self, run: int) -> str:
        done = self._cli("log", str(run), _CONNECTION, "--show")
        return done.stdout + done.stderr

    # -- stopping -------------------------------------------------------------------------------
    def leftovers(self) -> List[Tuple[int, str]]:
        """Live processes started by this deployment (and their descendants), by marker."""
        needle = f"{_MARK}={self.marker}".encode()
        found = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit() or int(entry.name) == os.getpid():
                continue
            try:
                if needle not in (entry / "environ").read_bytes().split(b"\0"):
                    continue
                if (entry / "stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
                    continue  # a zombie: dead, waiting to be reaped
                found.append((int(entry.name), (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode().strip()))
            except (FileNotFoundError, PermissionError, ProcessLookupError):
                continue
        return found

    def stop(self, grace: float = 10.0) -> None:
        """SIGTERM every process group (SuperNodes first), SIGKILL what is left, then sweep
        descendants by marker. Raises DeploymentError if a process survives all of that."""
        order = [n for n in self.procs if n != "superlink"] + [n for n in self.procs if n == "superlink"]
        for name in order:
            try:
                os.killpg(self.procs[name].pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + grace
        for name in order:
            proc = self.procs[name]
            try:
                proc.wait(timeout=max(deadline - time.monotonic(), 0.0))
            except subprocess.TimeoutExpired:
                pass
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait()
        deadline = time.monotonic() + 5.0
        while self.leftovers() and time.monotonic() < deadline:
            time.sleep(0.1)
        for pid, _ in self.leftovers():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.2)
        for log in self._logs:
            log.close()
        self._logs.clear()
        self.procs.clear()
        left = self.leftovers()
        if left:
            raise DeploymentError(f"processes left running after stop: {left}")
