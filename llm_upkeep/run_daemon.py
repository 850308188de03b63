"""The CLI's background runner: a warm process that runs flows for `llm-upkeep run`.

Why: a flow run from a cold process pays for importing Prefect and the flows (3.9 s here) and,
without PREFECT_API_URL, for starting Prefect's temporary server (22.5 s in all, and a traceback
when it missed its start-up timeout on a loaded machine). This process is started once by the
CLI, in the background, per state directory; it imports the flows once, starts a local Prefect
server under ``<state_dir>/cli/prefect`` when no PREFECT_API_URL is set (so runs stay in that
server's UI afterwards), and runs each requested flow in-process. It leaves after ``idle_s``
without a request, stopping the server it started. The client side is llm_upkeep/background.py.

Protocol on a unix socket (``<dir>/run.sock``, mode 0600, same user only): one JSON line in
(``{"fingerprint", "flow", "kwargs"}``), one JSON line out: ``{"result": ...}``,
``{"error": ...}`` or ``{"stale": true}`` when the caller's environment or code differs from this
process's (it then exits, and the caller starts a fresh one).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fcntl
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

FLOWS = {"daily-health": ("flows.daily_health", "daily_health")}
SERVER_START_TIMEOUT_S = float(os.environ.get("LLM_UPKEEP_SERVER_START_TIMEOUT_S", "90"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _healthy(url: str) -> bool:
    import urllib.request

    try:
        with urllib.request.urlopen(f"{url}/health", timeout=2) as r:  # noqa: S310 (loopback URL we built)
            return r.status == 200
    except Exception:
        return False


def start_server(d: Path, timeout_s: float) -> tuple[subprocess.Popen, str]:
    """`prefect server start` on a free loopback port, its database under d/prefect."""
    home = d / "prefect"
    home.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    env = {**os.environ, "PREFECT_HOME": str(home), "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    env.pop("PREFECT_API_URL", None)
    log = open(d / "prefect-server.log", "ab")  # noqa: SIM115 (the server's lifetime)
    proc = subprocess.Popen(
        [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}/api"
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"prefect server exited with status {proc.returncode} (see {d / 'prefect-server.log'})")
            if _healthy(url):
                return proc, url
            time.sleep(0.25)
    except BaseException:  # SIGTERM (SystemExit) while waiting: do not leave the server behind
        stop_server(proc)
        raise
    stop_server(proc)
    raise RuntimeError(f"prefect server did not answer within {timeout_s:g} s (see {d / 'prefect-server.log'})")


def stop_server(proc: subprocess.Popen | None) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


def _peer_uid(conn: socket.socket) -> int:
    creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    return struct.unpack("3i", creds)[1]


def run_flow(name: str, kwargs: dict[str, Any]) -> dict[str, Any]:
    import importlib

    mod, fn = FLOWS[name]
    flow = getattr(importlib.import_module(mod), fn)
    res = flow(**kwargs)
    if asyncio.iscoroutine(res):
        res = asyncio.run(res)
    return res.model_dump(mode="json")


def _exit_on_sigterm(signum, frame) -> None:
    raise SystemExit(0)  # through serve's finally: the socket goes, the server we started stops


def serve(d: Path, fingerprint: str, idle_s: float) -> int:
    lock = open(d / "daemon.lock", "w")  # noqa: SIM115 (held for the process's life)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return 0  # another one is starting or running for this directory
    err_file = d / "daemon.error"
    err_file.unlink(missing_ok=True)
    server = None
    try:
        if not os.environ.get("PREFECT_API_URL"):
            server, url = start_server(d, SERVER_START_TIMEOUT_S)
            os.environ["PREFECT_API_URL"] = url
            (d / "server.json").write_text(json.dumps({"api_url": url, "ui_url": url[: -len("/api")]}))
        for mod, _ in FLOWS.values():  # the warm-up this process exists for
            __import__(mod)
    except Exception as exc:
        err_file.write_text(f"{type(exc).__name__}: {exc}"[:500])
        stop_server(server)
        return 3
    sock_path = d / "run.sock"
    sock_path.unlink(missing_ok=True)
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(str(sock_path))
    os.chmod(sock_path, 0o600)
    mine = sock_path.stat().st_ino
    (d / "runner.json").write_text(json.dumps({"pid": os.getpid(), "api_url": os.environ.get("PREFECT_API_URL")}))

    def leave() -> None:  # remove our socket only: a successor may have bound a new one
        srv.close()
        with contextlib.suppress(OSError):
            if sock_path.stat().st_ino == mine:
                sock_path.unlink()
        fcntl.flock(lock, fcntl.LOCK_UN)

    srv.listen(8)
    srv.settimeout(idle_s)
    try:
        while True:
            try:
                conn, _ = srv.accept()
            except TimeoutError:
                return 0  # idle: leave
            with conn:
                conn.settimeout(None)
                if _peer_uid(conn) != os.getuid():
                    continue
                f = conn.makefile("rwb")
                try:
                    req = json.loads(f.readline() or b"{}")
                except json.JSONDecodeError:
                    continue
                if req.get("fingerprint") != fingerprint:
                    leave()  # before answering: the caller starts our successor at once
                    f.write(json.dumps({"stale": True}).encode() + b"\n")
                    f.flush()
                    return 0
                try:
                    out = {"result": run_flow(req["flow"], req.get("kwargs") or {}),
                           "api_url": os.environ.get("PREFECT_API_URL")}  # fmt: skip
                except Exception as exc:
                    from llm_upkeep.redact import redact

                    out = {"error": redact(f"{type(exc).__name__}: {exc}")[:2000]}
                with contextlib.suppress(OSError):
                    f.write(json.dumps(out, default=str).encode() + b"\n")
                    f.flush()
    finally:
        leave()
        stop_server(server)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="llm-upkeep's background flow runner (started by the CLI)")
    ap.add_argument("--dir", required=True)
    ap.add_argument("--fingerprint", required=True)
    ap.add_argument("--idle", type=float, default=900.0)
    args = ap.parse_args(argv)
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    return serve(Path(args.dir), args.fingerprint, args.idle)


if __name__ == "__main__":
    raise SystemExit(main())
