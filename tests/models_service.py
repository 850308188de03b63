"""A llama.cpp server run like a system service: ``python -m tests.models_service start|stop|restart DIR``.

Stdlib only, so the restart command costs a Python start and nothing more. DIR holds
service.json (model path, port, alias), the pid file and the server log. restart = stop (SIGTERM
to the process group, waited for; SIGKILL after 10 s) + start (detached); like ``systemctl
restart`` it returns once the new process is spawned, and readiness is the caller's probe.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path


def _service_state(d: Path) -> dict:
    return json.loads((d / "service.json").read_text())


def _pid_alive(pid: int) -> bool:
    """Running (a zombie, killed but not yet reaped by its parent, counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def service_stop(d: Path, timeout_s: float = 10.0) -> None:
    pidfile = d / "pid"
    if not pidfile.exists():
        return
    pid = int(pidfile.read_text())
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            done, _ = os.waitpid(pid, os.WNOHANG)  # our own child (when started from this process)
            if done:
                break
        except ChildProcessError:
            if not _pid_alive(pid):
                break
        time.sleep(0.02)
    else:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
    pidfile.unlink()


def service_start(d: Path) -> int:
    st = _service_state(d)
    log = open(d / "server.log", "ab")
    proc = subprocess.Popen(
        [sys.executable, "-m", "llama_cpp.server", "--model", st["model"], "--host", "127.0.0.1",
         "--port", str(st["port"]), "--n_ctx", "512", "--model_alias", st["alias"]],
        stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    (d / "pid").write_text(str(proc.pid))
    return proc.pid


def service_restart(d: Path) -> int:
    service_stop(d)
    return service_start(d)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2 or args[0] not in ("start", "stop", "restart"):
        print("usage: python -m tests.models_service start|stop|restart DIR", file=sys.stderr)
        return 2
    d = Path(args[1])
    {"start": service_start, "stop": service_stop, "restart": service_restart}[args[0]](d)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
