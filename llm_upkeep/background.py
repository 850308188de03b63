"""The CLI's side of the background runner (llm_upkeep/run_daemon.py): find it, start it, ask it.

No Prefect here: the point is that `llm-upkeep run daily-health` does not import it. The runner is
keyed by a fingerprint of this process's environment (minus a few shell variables), interpreter
and code, so a run never goes to a runner started with other settings, secrets or code; a
mismatched runner leaves and a fresh one starts. ``--in-process`` (or
``LLM_UPKEEP_CLI_BACKGROUND=0``) runs the flow in the CLI's own process as before.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ENV_BACKGROUND = "LLM_UPKEEP_CLI_BACKGROUND"
ENV_IDLE = "LLM_UPKEEP_CLI_IDLE_S"
# Shell bookkeeping that changes between two commands of one session without changing a run.
VOLATILE = {"PWD", "OLDPWD", "SHLVL", "_", "COLUMNS", "LINES", "TERM", "PS1", "PROMPT_COMMAND"}
ROOT = Path(__file__).resolve().parent.parent


class BackgroundError(RuntimeError):
    """The runner could not start (kind 'start') or answered with an error (kind 'run')."""

    def __init__(self, kind: str, message: str):
        self.kind = kind
        super().__init__(message)


def enabled() -> bool:
    return os.environ.get(ENV_BACKGROUND, "1").strip().lower() not in ("0", "false", "no", "off")


def runner_dir(state_dir: Path) -> Path:
    d = Path(state_dir) / "cli"
    d.mkdir(parents=True, exist_ok=True, mode=0o700)
    return d


def fingerprint() -> str:
    h = hashlib.sha256()
    for k, v in sorted(os.environ.items()):
        if k not in VOLATILE:
            h.update(f"{k}={v}\0".encode())
    h.update(sys.executable.encode())
    for pkg in ("llm_upkeep", "flows", "tasks"):
        for p in sorted((ROOT / pkg).rglob("*.py")):
            st = p.stat()
            h.update(f"{p}:{st.st_mtime_ns}:{st.st_size}\0".encode())
    return h.hexdigest()[:32]


def _ask(sock_path: Path, req: dict[str, Any], timeout_s: float) -> dict[str, Any] | None:
    """One request; None when no runner listens there."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.settimeout(2.0)
        s.connect(str(sock_path))
    except OSError:
        s.close()
        return None
    with s:
        s.settimeout(timeout_s)
        f = s.makefile("rwb")
        f.write(json.dumps(req).encode() + b"\n")
        f.flush()
        line = f.readline()
    if not line:
        raise BackgroundError("run", "the background runner closed the connection without an answer")
    return json.loads(line)


def _start(d: Path, fp: str) -> subprocess.Popen:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    log = open(d / "runner.log", "ab")  # noqa: SIM115 (handed to the child)
    with log:
        return subprocess.Popen(
            [sys.executable, "-m", "llm_upkeep.run_daemon", "--dir", str(d), "--fingerprint", fp,
             "--idle", os.environ.get(ENV_IDLE, "900")],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=str(ROOT),
            start_new_session=True,
        )  # fmt: skip


def run_in_background(state_dir: Path, flow: str, kwargs: dict[str, Any], *, timeout_s: float = 3600.0) -> dict:
    """The flow's result (as JSON data) from the background runner, starting it when needed."""
    d = runner_dir(state_dir)
    sock = d / "run.sock"
    fp = fingerprint()
    req = {"fingerprint": fp, "flow": flow, "kwargs": kwargs}
    for _ in range(3):
        ans = _ask(sock, req, timeout_s)
        if ans is None or ans.get("stale"):
            if ans is None:
                sock.unlink(missing_ok=True)  # nobody listens there: a runner that died
            proc = _start(d, fp)
            _wait_ready(d, sock, proc)
            continue
        if "error" in ans:
            raise BackgroundError("run", ans["error"])
        return ans
    raise BackgroundError("start", f"the background runner in {d} did not take the request")


def _wait_ready(d: Path, sock: Path, proc: subprocess.Popen) -> None:
    from llm_upkeep.run_daemon import SERVER_START_TIMEOUT_S

    deadline = time.monotonic() + SERVER_START_TIMEOUT_S + 60
    while time.monotonic() < deadline:
        if sock.exists():
            return
        rc = proc.poll()
        if rc is not None and rc != 0:
            err = d / "daemon.error"
            why = err.read_text().strip() if err.exists() else f"it exited with status {rc} (see {d / 'runner.log'})"
            raise BackgroundError("start", why)
        if rc == 0 and not sock.exists():
            time.sleep(0.1)  # another runner holds the lock and is starting
        time.sleep(0.05)
    raise BackgroundError("start", f"the background runner did not start in time (see {d / 'runner.log'})")
