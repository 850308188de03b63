"""The command a warm worker gives each flow run: hand the run to the zygote, or start it cold.

Run as ``python -I -S .../launch.py`` (stdlib only, a few milliseconds): Prefect's process worker
watches this process, so it stays until the run ends, forwards SIGTERM/SIGINT/SIGHUP to the run's
process, and exits with the run's exit status (128+N when the run died of signal N). Without a
zygote (no socket, refused, gone before the run started) or when the zygote answers "cold", it
replaces itself with ``python -m prefect.engine``, the command Prefect would have run.
"""

from __future__ import annotations

import os
import signal
import socket
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from llm_upkeep.warm_start.wire import (  # noqa: E402
    DEFAULT_ENGINE,
    ENGINE_ENV,
    SOCKET_ENV,
    WireError,
    recv_message,
    send_message,
)

CONNECT_TIMEOUT_S = 5.0
# The zygote answers once its imports are done; a worker that just started may need this long.
REPLY_TIMEOUT_S = float(os.environ.get("LLM_UPKEEP_WARM_REPLY_TIMEOUT_S", "120"))


def start_cold(reason: str | None) -> None:
    if reason:
        print(f"llm-upkeep warm start: starting cold ({reason})", file=sys.stderr, flush=True)
    engine = os.environ.get(ENGINE_ENV) or DEFAULT_ENGINE
    os.execv(sys.executable, [sys.executable, "-m", engine, *sys.argv[1:]])


def main() -> int:
    path = os.environ.get(SOCKET_ENV)
    if not path:
        start_cold(None)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(CONNECT_TIMEOUT_S)
    try:
        sock.connect(path)
        sock.settimeout(REPLY_TIMEOUT_S)
        send_message(sock, {"env": dict(os.environ), "cwd": os.getcwd(), "argv": sys.argv[1:]}, fds=[0, 1, 2])
        reply, _ = recv_message(sock)
    except (OSError, WireError) as exc:
        sock.close()  # the zygote's child sees this and never runs the flow
        start_cold(f"no warm starter at {path}: {exc}")
    if "cold" in reply or not isinstance(reply.get("pid"), int):
        sock.close()
        start_cold(str(reply.get("cold", "unexpected answer")))
    pid = reply["pid"]

    def forward(signum, _frame):
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            pass

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, forward)
    sock.settimeout(None)  # the run takes as long as it takes; Prefect's own timeouts apply
    try:
        send_message(sock, {"go": True})
        done, _ = recv_message(sock)
    except (OSError, WireError):
        print("llm-upkeep warm start: the warm starter went away; the run's exit status is unknown",
              file=sys.stderr, flush=True)  # fmt: skip
        return 1
    code = done.get("exit")
    return code if isinstance(code, int) else 1


if __name__ == "__main__":
    sys.exit(main())
