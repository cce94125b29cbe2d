"""Child processes that cannot outlive their parent, with their output kept in a log file."""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import signal
import socket
import subprocess
from collections import deque
from pathlib import Path

log = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free on `host` right now (the kernel picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


_LIBC: ctypes.CDLL | None = None


def _libc() -> ctypes.CDLL:
    """libc, loaded in the parent: loading a library after fork can deadlock a threaded parent."""
    global _LIBC  # noqa: PLW0603 - loaded once, on first use
    if _LIBC is None:
        _LIBC = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    return _LIBC


def _die_with_parent(libc: ctypes.CDLL, parent_pid: int) -> None:
    """Ask Linux to SIGKILL this child when its parent dies, even by SIGKILL.

    Runs in the child between fork and exec, so it only calls prctl. Linux sends the
    signal when the *thread* that forked exits: start children from a thread that lives
    as long as the stack (the main thread, in every `xsell` command).
    """
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        os._exit(1)


class ChildProcess:
    """One service binary run as a child: own process group, killed with its parent."""

    def __init__(self, name: str, argv: list[str], log_path: Path) -> None:
        self.name = name
        self.argv = argv
        self.log_path = log_path
        self._process: subprocess.Popen[bytes] | None = None
        self.stopped_by_us = False

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    def exit_code(self) -> int | None:
        """None while running (or never started), else the exit code."""
        return self._process.poll() if self._process else None

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        parent, libc = os.getpid(), _libc()
        with self.log_path.open("ab") as out:
            # Own process group: a terminal's Ctrl-C reaches only us, and we stop the
            # children in order instead of racing them.
            self._process = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                process_group=0,
                preexec_fn=lambda: _die_with_parent(libc, parent),  # noqa: PLW1509 - only prctl
            )
        log.info("started %s pid=%s log=%s", self.name, self._process.pid, self.log_path)

    def stop(self, grace_s: float = 5.0) -> None:
        """SIGTERM, then SIGKILL after `grace_s`; always reaps the child."""
        process = self._process
        if process is None or process.poll() is not None:
            return
        self.stopped_by_us = True
        process.terminate()
        try:
            process.wait(grace_s)
        except subprocess.TimeoutExpired:
            log.warning(
                "%s pid=%s ignored SIGTERM for %ss; killing it", self.name, process.pid, grace_s
            )
            process.kill()
            process.wait()
        log.info("stopped %s pid=%s code=%s", self.name, process.pid, process.returncode)

    def log_tail(self, lines: int = 20) -> str:
        try:
            with self.log_path.open(encoding="utf-8", errors="replace") as handle:
                return "".join(deque(handle, maxlen=lines)).rstrip()
        except FileNotFoundError:
            return "(no log written)"
