"""The demo's child processes: each in its own session, stopped by process group, and the
subreaper that catches whatever a crash orphans.

Why: a demo that leaves a Prefect server or a flow run behind costs the newcomer a port and
their trust; this file is the whole of how the demo makes sure nothing survives it.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path


def become_subreaper() -> bool:
    """PR_SET_CHILD_SUBREAPER: orphaned descendants re-parent to us, so none can escape the stop."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(36, 1, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def stop_descendants(timeout_s: float = 10.0) -> list[int]:
    """SIGTERM then SIGKILL every process below this one; returns the pids that needed a signal."""
    import psutil

    me = psutil.Process()
    procs = me.children(recursive=True)
    for p in procs:
        with contextlib.suppress(psutil.Error):
            p.terminate()
    _, alive = psutil.wait_procs(procs, timeout=timeout_s)
    for p in alive:
        with contextlib.suppress(psutil.Error):
            p.kill()
    psutil.wait_procs(alive, timeout=5)
    # Reap zombies re-parented to us by the subreaper flag.
    with contextlib.suppress(ChildProcessError):
        while os.waitpid(-1, os.WNOHANG)[0]:
            pass
    return [p.pid for p in procs]


class Child:
    """A subprocess in its own session (so our terminal's Ctrl-C reaches it only through us)."""

    def __init__(self, name: str, cmd: list[str], env: dict[str, str], log_path: Path, cwd: Path):
        self.name = name
        self.log_path = log_path
        self._log = open(log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            cmd, env=env, cwd=cwd, stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def tail(self, n: int = 15) -> str:
        try:
            lines = self.log_path.read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            return ""
        return "\n".join(lines[-n:])

    def stop(self, timeout_s: float = 20.0) -> None:
        """SIGTERM to the whole group (the Runner cancels its flow runs on it), SIGKILL if it lingers."""
        import psutil

        try:
            seen = psutil.Process(self.proc.pid).children(recursive=True)
        except psutil.Error:
            seen = []
        if self.alive:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                pass
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        for p in seen:
            with contextlib.suppress(psutil.Error):
                p.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(5)
        self._log.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_in_use(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False
