"""Run a command and watch the Flower processes it starts: peak RSS of each, wall time, and when
each line of its output (and of a followed file) appeared.

A process is watched when its environment carries ``FHTO_DEPLOYMENT=<hex>``, the marker
:class:`fhto_native.fl.flower.launch.LocalDeployment` gives every process it starts (and their
children inherit). Every ``--interval`` seconds the watcher reads ``VmRSS`` from
``/proc/<pid>/status``, and the CPU time used so far, of every marked process (a process that
lives shorter than one interval can be missed; the last interval of each is not counted). Only
the markers of processes that descend from the command count (another session's deployment on
the same machine carries another marker). Each process is classified by its command line
(superlink, supernode, superexec, serverapp, clientapp, flwr-cli; "fork" for a copy of its parent
caught between fork and exec) and, for superexec and clientapp processes, assigned to the
SuperNode above it in the process tree.

    .venv/bin/python benchmarks/flower/watch_rss.py --json /tmp/rss.json \\
        [--follow OUT/flower/server-log.jsonl] -- .venv/bin/fhto flower --local 20 ...

Prints a summary, with the machine's memory in use (which counts shared pages once, unlike a sum
of RSS), the load average and the CPU seconds that other processes used meanwhile (how much the
machine was disturbed); ``--json`` writes every process's peak and the timestamped
lines.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from statistics import median
from typing import Dict, List, Optional, Tuple

MARK = b"FHTO_DEPLOYMENT="
ROLES = (("flower-superlink", "superlink"), ("flower-supernode", "supernode"), ("flower-superexec", "superexec"),
         ("flwr-serverapp", "serverapp"), ("flwr-clientapp", "clientapp"), ("/flwr ", "flwr-cli"))
TICK = os.sysconf("SC_CLK_TCK")


def _role(command: str) -> str:
    for needle, role in ROLES:
        if needle in command:
            return role
    return "other"


def _stat(pid: str) -> Optional[Tuple[int, str, int, int]]:
    """(parent pid, state, CPU ticks used, start time) of a process, else None."""
    try:
        fields = (Path("/proc") / pid / "stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return None
    return int(fields[1]), fields[0], int(fields[11]) + int(fields[12]), int(fields[19])


def _marker(pid: str) -> Optional[bytes]:
    try:
        env = (Path("/proc") / pid / "environ").read_bytes()
    except (FileNotFoundError, PermissionError, ProcessLookupError):
        return None
    return next((v for v in env.split(b"\0") if v.startswith(MARK)), None)


def _rss(pid: str) -> Optional[Tuple[int, str]]:
    try:
        status = (Path("/proc") / pid / "status").read_text()
        command = (Path("/proc") / pid / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except (FileNotFoundError, PermissionError, ProcessLookupError):
        return None
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024, command.strip()
    return None  # a zombie


class Watcher:
    """Samples the marked processes of one command's deployment, and the CPU everything else used."""

    def __init__(self, interval: float, root: int) -> None:
        self.interval, self.root = interval, root
        self.seen: Dict[int, dict] = {}  # pid -> role, command, parent, peak, first/last seen
        self.markers: set = set()  # the markers of processes started by the command
        self.known: Dict[Tuple[int, int], Optional[bytes]] = {}  # (pid, start) -> its marker
        self.born: Dict[Tuple[int, int], float] = {}  # (pid, start) -> when first seen unmarked
        self.other_cpu: Dict[Tuple[int, int], List[int]] = {}  # (pid, start) -> [ticks first seen, last]
        self.foreign: set = set()  # marked processes of other deployments (someone else's Flower)
        self.stopped = threading.Event()
        self.t0 = time.monotonic()
        self.samples, self.load, self.used = 0, [], []  # load average, machine memory in use

    def sample(self) -> None:
        now = time.monotonic() - self.t0
        stats = {}
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                found = _stat(entry.name)
                if found is not None:
                    stats[int(entry.name)] = found
        me = os.getpid()
        for pid, (parent, state, ticks, start) in stats.items():
            if pid == me or state == "Z":
                continue
            key = (pid, start)
            if key not in self.known or (self.known[key] is None and now - self.born.setdefault(key, now) < 5.0):
                # A process young enough may still be between fork and exec, with its parent's
                # environment and command line: it is looked at again.
                self.known[key] = _marker(str(pid))
                if self.known[key] is not None and self._descends(pid, stats):
                    self.markers.add(self.known[key])
            if self.known[key] is not None and self.known[key] in self.markers:
                found = _rss(str(pid))
                if found is None:
                    continue
                rss, command = found
                info = self.seen.setdefault(pid, {"role": _role(command), "command": command, "parent": parent,
                                                  "peak": 0, "first": now})
                info["peak"] = max(info["peak"], rss)
                info["last"], info["cpu_s"] = now, ticks / TICK
                if info["command"] != command:  # exec'd since the last sample
                    info["command"], info["role"] = command, _role(command)
            elif pid != self.root:
                if self.known[key] is not None:
                    self.foreign.add(key)
                first = ticks if self.samples == 0 else 0  # a process that started during the run: all its CPU
                self.other_cpu.setdefault(key, [first, ticks])[1] = ticks
        self.load.append(float(Path("/proc/loadavg").read_text().split()[0]))
        info = dict(line.split(":", 1) for line in Path("/proc/meminfo").read_text().splitlines())
        self.used.append((int(info["MemTotal"].split()[0]) - int(info["MemAvailable"].split()[0])) * 1024)
        self.samples += 1

    def _descends(self, pid: int, stats: dict) -> bool:
        while pid in stats and pid > 1:
            if pid == self.root:
                return True
            pid = stats[pid][0]
        return False

    def run(self) -> None:
        while not self.stopped.is_set():
            self.sample()
            self.stopped.wait(self.interval)

    def other_cpu_seconds(self) -> float:
        """CPU seconds that processes outside the command's deployment used while it ran."""
        return sum(last - first for first, last in self.other_cpu.values()) / TICK

    def role(self, pid: int) -> str:
        """A process's role; a copy of its parent (forked, not yet or never exec'd) is a "fork"."""
        info = self.seen[pid]
        parent = self.seen.get(info["parent"])
        return "fork" if parent is not None and parent["command"] == info["command"] else info["role"]

    def node_of(self, pid: int) -> Optional[int]:
        """The SuperNode above ``pid`` in the process tree (as seen), if any."""
        while pid in self.seen:
            if self.role(pid) == "supernode":
                return pid
            pid = self.seen[pid]["parent"]
        return None


class Lines:
    """Timestamps each line of a stream or of a growing file."""

    def __init__(self, t0: float) -> None:
        self.t0, self.lines = t0, []

    def stream(self, pipe) -> None:
        for raw in iter(pipe.readline, b""):
            line = raw.decode(errors="replace").rstrip("\n")
            self.lines.append((round(time.monotonic() - self.t0, 2), line))
            print(line, flush=True)

    def follow(self, path: Path, stopped: threading.Event, interval: float) -> None:
        offset = 0
        while True:
            done = stopped.is_set()
            try:
                with open(path, "rb") as f:
                    f.seek(offset)
                    data = f.read()
            except FileNotFoundError:
                data = b""
            complete = data[: data.rfind(b"\n") + 1]
            offset += len(complete)
            now = round(time.monotonic() - self.t0, 2)
            self.lines += [(now, line) for line in complete.decode(errors="replace").splitlines()]
            if done:
                return
            stopped.wait(interval)


def _mib(n: float) -> str:
    return f"{n / 2**20:.1f}"


def summary(watcher: Watcher) -> dict:
    by_role: Dict[str, List[int]] = {}
    cpu: Dict[str, List[float]] = {}
    for pid, info in watcher.seen.items():
        by_role.setdefault(watcher.role(pid), []).append(info["peak"])
        cpu.setdefault(watcher.role(pid), []).append(info["cpu_s"])
    nodes: Dict[int, dict] = {}
    for pid, info in watcher.seen.items():
        node, role = watcher.node_of(pid), watcher.role(pid)
        if node is None:
            continue
        entry = nodes.setdefault(node, {"supernode": 0, "superexec": 0, "clientapps": []})
        if role == "clientapp":
            entry["clientapps"].append(info["peak"])
        elif role in ("supernode", "superexec"):
            entry[role] = max(entry[role], info["peak"])
    return {"roles": {r: {"count": len(v), "peak_max": max(v), "peak_median": median(v), "peak_min": min(v),
                          "cpu_s_median": median(cpu[r]), "cpu_s_total": sum(cpu[r])} for r, v in by_role.items()},
            "nodes": {str(k): v for k, v in nodes.items()}}


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--interval", type=float, default=0.2, help="seconds between samples (default 0.2)")
    p.add_argument("--json", type=Path, help="write every process's peak and the timestamped lines here")
    p.add_argument("--follow", type=Path, help="also timestamp each line appended to this file")
    p.add_argument("command", nargs=argparse.REMAINDER, help="-- the command to run")
    args = p.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        p.error("give the command to run after --")

    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    watcher = Watcher(args.interval, proc.pid)
    out, followed = Lines(watcher.t0), Lines(watcher.t0)
    threads = [threading.Thread(target=watcher.run, daemon=True),
               threading.Thread(target=out.stream, args=(proc.stdout,), daemon=True)]
    if args.follow:
        threads.append(threading.Thread(target=followed.follow, args=(args.follow, watcher.stopped, 0.1), daemon=True))
    for t in threads:
        t.start()
    code = proc.wait()
    wall = time.monotonic() - watcher.t0
    watcher.stopped.set()
    for t in threads:
        t.join()
    result = {"command": command, "exit": code, "wall_s": round(wall, 2), "interval_s": args.interval,
              "samples": watcher.samples, "load_max": max(watcher.load), "load_start": watcher.load[0],
              "other_cpu_s": round(watcher.other_cpu_seconds(), 1), "foreign_flower_processes": len(watcher.foreign),
              "watcher_cpu_s": round(time.process_time(), 1), "machine_used_start": watcher.used[0],
              "machine_used_peak": max(watcher.used),
              **summary(watcher),
              "processes": {str(k): v for k, v in watcher.seen.items()},
              "lines": out.lines, "followed": followed.lines}
    print(f"\nexit {code}, wall {wall:.1f} s, {watcher.samples} samples every {args.interval:g} s; load average "
          f"{result['load_start']:.2f} at start, at most {result['load_max']:.2f}; other processes used "
          f"{result['other_cpu_s']:.1f} CPU s ({result['foreign_flower_processes']} of another Flower deployment), "
          f"this watcher {result['watcher_cpu_s']:.1f} CPU s; machine memory in use (MemTotal - MemAvailable) "
          f"{_mib(result['machine_used_start'])} MiB at start, at most {_mib(result['machine_used_peak'])} MiB")
    print(f"{'role':<10} {'count':>5} {'peak max MiB':>13} {'median':>8} {'min':>8} {'CPU s, median':>14} {'total':>7}")
    for role, r in sorted(result["roles"].items()):
        print(f"{role:<10} {r['count']:>5} {_mib(r['peak_max']):>13} {_mib(r['peak_median']):>8} "
              f"{_mib(r['peak_min']):>8} "
              f"{r['cpu_s_median']:>14.1f} {r['cpu_s_total']:>7.1f}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))
    return code


if __name__ == "__main__":
    sys.exit(main())
