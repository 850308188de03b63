"""A real restart command for tests: `python tests/restart_sim.py start|restart|stop TARGET ...`.

Like `systemctl restart` on a host, it stops the simulator process named by a pid file and
starts a fresh one on the same port, then returns at once, before the new one listens, so the
caller's recovery probe has to wait for it. The simulator runs detached (its own session, not
our child), as a service would; ``--no-start`` stops without starting again (a server that
does not come back).
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"  # a zombie no longer serves anything


def stop(pid_file: Path) -> None:
    if not pid_file.exists():
        return
    pid = int(pid_file.read_text())
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + 10
    while alive(pid):
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            break
        time.sleep(0.02)


def start(pid_file: Path, port: int, log: Path) -> None:
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "llm_upkeep.sim.llm_server", "--port", str(port), "--ttft", "0.02",
             "--itl", "0.002", "--tokens", "4"],
            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    pid_file.write_text(str(proc.pid))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("action", choices=["start", "restart", "stop"])
    p.add_argument("target")
    p.add_argument("--pid-file", type=Path, required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--log", type=Path, required=True)
    p.add_argument("--no-start", action="store_true")
    a = p.parse_args(argv)
    if a.action in ("restart", "stop"):
        stop(a.pid_file)
    if a.action == "start" or (a.action == "restart" and not a.no_start):
        start(a.pid_file, a.port, a.log)
    print(f"{a.action} {a.target}: pid {a.pid_file.read_text() if a.pid_file.exists() else '-'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
