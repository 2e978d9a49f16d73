"""PID-file-managed background processes.

A PID file alone is not proof: PIDs get reused. Every check also reads ``/proc/<pid>/cmdline`` and
requires the marker the process was started with, so ``down`` never signals a stranger.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from livectx.errors import MissingPrerequisiteError, ServiceError


@dataclass(frozen=True)
class ManagedProcess:
    """A server process started detached, tracked by a PID file and identified by a cmdline marker."""

    name: str
    pid_file: Path
    log_file: Path
    marker: str

    @classmethod
    def in_state_dir(cls, state_dir: Path, name: str) -> ManagedProcess:
        """The stack's layout: ``run/<name>.pid``, ``logs/<name>.log``, and a marker naming the state dir
        (which every service puts on its command line), so two stacks on one machine never mix up."""
        return cls(
            name,
            state_dir / "run" / f"{name}.pid",
            state_dir / "logs" / f"{name}.log",
            marker=f"livectx.stack={state_dir}",
        )

    def recorded_pid(self) -> int | None:
        """The PID in the PID file, whether or not that process still runs."""
        try:
            return int(self.pid_file.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None

    def pid(self) -> int | None:
        """The PID if the process we started is still running, else ``None`` (stale files are ignored)."""
        pid = self.recorded_pid()
        return pid if pid is not None and _is_running(pid, self.marker) else None

    def start(self, argv: Sequence[str], *, cwd: Path, env: dict[str, str] | None = None) -> int:
        """Start detached (own session, so Ctrl-C in the caller does not kill it) and record the PID."""
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        self.pid_file.parent.mkdir(parents=True, exist_ok=True)
        with self.log_file.open("ab") as log:
            proc = subprocess.Popen(
                list(argv),
                cwd=cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.pid_file.write_text(f"{proc.pid}\n")
        # Between fork and exec /proc shows the parent's command line; wait for the exec so that pid()
        # is truthful from the moment start() returns.
        wait_until(lambda: proc.poll() is not None or _is_running(proc.pid, self.marker), 10.0, poll_s=0.005)
        return proc.pid

    def signal(self, signum: int) -> None:
        """Send ``signum`` if our process runs (nothing otherwise)."""
        pid = self.pid()
        if pid is not None:
            os.kill(pid, signum)

    def stop(self, timeout_s: float = 30.0) -> bool:
        """SIGTERM, wait for exit, SIGKILL after ``timeout_s``. Returns whether a process was stopped."""
        pid = self.pid()
        if pid is None:
            self.pid_file.unlink(missing_ok=True)
            return False
        os.kill(pid, signal.SIGTERM)
        if not wait_until(lambda: not _is_running(pid, self.marker), timeout_s):
            os.kill(pid, signal.SIGKILL)
            wait_until(lambda: not _is_running(pid, self.marker), 10.0)
        self.pid_file.unlink(missing_ok=True)
        return True

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return ""


def _is_running(pid: int, marker: str) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    if state == "Z":  # exited; reap it if it is our child (tests start the stack in-process)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        return False
    return marker in cmdline


def wait_until(condition: Callable[[], bool], timeout_s: float, poll_s: float = 0.05) -> bool:
    """Poll ``condition`` until it holds or the deadline passes. A probe loop, not a fixed sleep."""
    deadline = time.monotonic() + timeout_s
    while True:
        if condition():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(poll_s)


def wait_ready(
    process: ManagedProcess,
    label: str,
    is_healthy: Callable[..., bool],
    timeout_s: float,
    *,
    probe_s: float,
    poll_s: float = 0.05,
    waiting: str = "did not become ready",
) -> None:
    """A service's ``wait_ready``: poll ``is_healthy(timeout_s=probe_s)`` until it holds, or raise (it
    exited, or ``waiting`` within ``timeout_s``) with the last lines of its log."""
    pid = process.pid()
    ok = wait_until(lambda: process.pid() is None or is_healthy(timeout_s=probe_s), timeout_s, poll_s)
    if not ok or process.pid() is None:
        state = "exited" if process.pid() is None else f"{waiting} within {timeout_s:.0f}s"
        raise ServiceError(f"{label} (pid {pid}) {state}; see {process.log_file}:\n{process.log_tail()}")


def require_executable(name: str, hint: str) -> str:
    """The path of ``name`` on ``PATH``, or :class:`MissingPrerequisiteError` with ``hint`` (how to install it)."""
    path = shutil.which(name)
    if path is None:
        raise MissingPrerequisiteError(hint)
    return path


def port_is_open(host: str, port: int, timeout_s: float = 0.5) -> bool:
    """Whether something accepts TCP connections at host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return True
    except OSError:
        return False


def ensure_port_free(host: str, port: int, service: str, env_var: str) -> None:
    if port_is_open(host, port):
        raise ServiceError(
            f"port {host}:{port} for {service} is already used by another process: stop it or set {env_var}"
        )
