"""The zygote: imports Prefect and the flows once, then forks one child per flow run.

Run by the warm worker (``python -m llm_upkeep.warm_start.zygote --socket PATH --preload M,...``)
before the worker starts any thread, so each fork copies a single-threaded process. It binds its
socket first (mode 0600 in a 0700 directory; only the worker's own user may connect, checked with
SO_PEERCRED), so a launcher that connects while the imports are still running simply waits in the
backlog. The parent never runs flow code: it accepts, forks, reaps children (SIGCHLD through a
wakeup fd, so exits are reported at once with the real status, signals included) and kills a child
whose launcher died (Prefect's SIGKILL of the launcher must still end the run). It leaves when the
worker that started it is gone.

A child restores default signal handlers, adopts the run's environment, working directory,
arguments and standard streams, then checks that Prefect's settings under that environment are the
ones it imported with; if not it answers "cold" and the launcher starts the run the ordinary way.
Otherwise it says its pid, waits for the launcher's go (so a launcher that gave up never leaves a
run behind it) and runs ``prefect.engine`` as ``python -m`` would, ending like any interpreter.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import importlib
import json
import os
import selectors
import signal
import socket
import struct
import sys
import threading
import time

from llm_upkeep.warm_start.tls import prebuild_api_tls_context, share_api_tls_contexts
from llm_upkeep.warm_start.wire import DEFAULT_ENGINE, ENGINE_ENV, WireError, recv_message, send_message

READY_LINE = "llm-upkeep warm start: ready"


def settings_fingerprint() -> str:
    """Prefect's effective settings as JSON: what the imported modules were configured with."""
    from prefect.settings import Settings

    return json.dumps(Settings().model_dump(mode="json"), sort_keys=True, default=str)


def preload(modules: list[str], project_dir: str | None, engine: str) -> list[str]:
    """Import what every run needs; a module that fails to import is left to the run itself."""
    if project_dir and project_dir not in sys.path:
        sys.path.insert(0, project_dir)
    failed = []
    # pynvml: the GPU steps import it at run time (telemetry.collect_gpus), about 50 ms a run;
    # importing it loads no library (nvmlInit does), so it is safe before the fork.
    for name in ["prefect", "prefect.engine", "prefect.flow_engine", "prefect.task_engine", "pynvml", engine,
                 *modules]:  # fmt: skip
        try:
            importlib.import_module(name)
        except Exception as exc:  # the run will import it again and report the error in its own logs
            failed.append(f"{name}: {type(exc).__name__}")
    return failed


def complete_models() -> int:
    """Finish building every pydantic model whose schema was deferred at import (Prefect's client
    schemas: FlowRun, DeploymentResponse, the filters...), so the runs inherit them built.

    Why: pydantic builds a model with forward references on its first use; done in each forked run
    it cost a host part's process about 0.1 s of CPU (FlowRun on reading the run, the deployment,
    the state update), the same work in every run of every host. Here it is done once per worker
    start. Returns how many were built; one that cannot be built is left for its first use."""
    import pydantic

    done, stack, seen = 0, [pydantic.BaseModel], set()
    while stack:
        for cls in stack.pop().__subclasses__():
            if cls in seen:
                continue
            seen.add(cls)
            stack.append(cls)
            if cls.__dict__.get("__pydantic_complete__", True) is False:
                with contextlib.suppress(Exception):
                    done += bool(cls.model_rebuild())
    return done


def prebuild_tls() -> None:
    """The verifying TLS contexts a run's clients ask for, built before the fork (see tls.py and
    llm_upkeep.clients.tls: keyed by the CA bundle's identity, so a rotated bundle still reaches
    the next run)."""
    from llm_upkeep.clients.tls import shared_verify_context

    with contextlib.suppress(Exception):
        prebuild_api_tls_context()
    with contextlib.suppress(Exception):
        shared_verify_context()


def _peer_uid(conn: socket.socket) -> int:
    creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    return struct.unpack("3i", creds)[1]


class Zygote:
    def __init__(self, path: str):
        self.path = path
        self.parent = os.getppid()
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old = os.umask(0o177)
        try:
            if os.path.exists(path):
                os.unlink(path)  # a stale socket of a previous worker with the same state dir
            self.listener.bind(path)
        finally:
            os.umask(old)
        self.listener.listen(128)
        self.children: dict[int, socket.socket] = {}  # child pid -> its launcher's connection
        self.started: dict[int, float] = {}  # child pid -> when it was forked
        self.wake_r, self.wake_w = socket.socketpair()
        self.stopping = False
        self.pid = os.getpid()

    def serve(self, fingerprint: str) -> tuple[socket.socket, dict, list[int], str] | None:
        """Parent loop. Returns only in a forked child, with that child's request."""
        self.wake_r.setblocking(False)
        self.wake_w.setblocking(False)
        signal.set_wakeup_fd(self.wake_w.fileno())
        signal.signal(signal.SIGCHLD, lambda *_: None)
        signal.signal(signal.SIGTERM, self._stop)
        signal.signal(signal.SIGINT, self._stop)
        sel = selectors.DefaultSelector()
        sel.register(self.listener, selectors.EVENT_READ, "accept")
        sel.register(self.wake_r, selectors.EVENT_READ, "wake")
        try:
            while not self.stopping:
                if os.getppid() != self.parent:
                    break  # the worker is gone
                for key, _ in sel.select(timeout=1.0):
                    if key.data == "wake":
                        self._drain_wakeups()
                    elif key.data == "accept":
                        child = self._accept(sel, fingerprint)
                        if child is not None:
                            return child
                self._reap()
        finally:
            if os.getpid() == self.pid:  # a child returns through here too: it leaves the socket alone
                self._close_parent()
        return None

    def _stop(self, *_):
        self.stopping = True

    def _drain_wakeups(self) -> None:
        try:
            while self.wake_r.recv(4096):
                pass
        except BlockingIOError:
            pass

    def _accept(self, sel, fingerprint):
        try:
            conn, _ = self.listener.accept()
        except OSError:
            return None
        if _peer_uid(conn) != os.getuid():
            conn.close()  # another user: never run anything for it
            return None
        conn.settimeout(30)
        try:
            req, fds = recv_message(conn, max_fds=3)
        except (WireError, OSError):
            conn.close()
            return None
        if len(fds) != 3 or not isinstance(req.get("env"), dict) or not isinstance(req.get("cwd"), str):
            for fd in fds:
                os.close(fd)
            _try_send(conn, {"cold": "malformed request"})
            conn.close()
            return None
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            sel.close()
            return conn, req, fds, fingerprint
        for fd in fds:
            os.close(fd)
        self.started[pid] = time.monotonic()
        self.children[pid] = conn  # only written to, with the exit status; the child watches the launcher
        return None

    def _reap(self) -> None:
        while self.children:
            try:
                pid, status, usage = os.wait4(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            conn = self.children.pop(pid, None)
            started = self.started.pop(pid, None)
            if conn is None:
                continue
            code = os.waitstatus_to_exitcode(status)
            code = 128 - code if code < 0 else code  # killed by a signal: the shell's convention
            wall = f"{time.monotonic() - started:.2f} s" if started is not None else "?"
            print(f"llm-upkeep warm start: run process {pid} exited {code} after {wall}, "
                  f"CPU {usage.ru_utime + usage.ru_stime:.2f} s", file=sys.stderr, flush=True)  # fmt: skip
            _try_send(conn, {"exit": code})
            conn.close()

    def _close_parent(self) -> None:
        try:
            os.unlink(self.path)
        except OSError:
            pass
        self.listener.close()


def _try_send(conn: socket.socket, payload: dict) -> bool:
    try:
        send_message(conn, payload)
        return True
    except OSError:
        return False


def _die_with_launcher(conn: socket.socket) -> None:
    """Prefect kills the launcher (SIGKILL after its grace period): the run must go with it, as a
    process Prefect started itself would. The launcher never writes after its go: EOF means gone."""
    conn.settimeout(None)
    try:
        while conn.recv(1024):
            pass
    except OSError:
        pass
    os.kill(os.getpid(), signal.SIGKILL)


def run_child(
    conn: socket.socket, req: dict, fds: list[int], fingerprint: str, zygote: Zygote, engine: str
) -> None:
    """In the forked child: become the run's process, then run prefect.engine as its __main__."""
    signal.set_wakeup_fd(-1)
    for sig in (signal.SIGCHLD, signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, signal.SIG_DFL)
    zygote.listener.close()
    zygote.wake_r.close()
    zygote.wake_w.close()
    for other in zygote.children.values():
        other.close()
    os.environ.clear()
    os.environ.update({str(k): str(v) for k, v in req["env"].items()})
    if settings_fingerprint() != fingerprint:
        _try_send(conn, {"cold": "Prefect settings in the run's environment differ from the warm starter's"})
        os._exit(0)
    for target, fd in enumerate(fds):
        os.dup2(fd, target)
        if fd > 2:
            os.close(fd)
    os.chdir(req["cwd"])
    argv = [str(a) for a in req.get("argv") or []]
    sys.argv = [engine, *argv]
    sys.path[0] = req["cwd"]
    import random

    random.seed()  # every child would otherwise draw the zygote's sequence
    if not _try_send(conn, {"pid": os.getpid()}):
        os._exit(0)
    try:
        go, _ = recv_message(conn)
    except (WireError, OSError):
        os._exit(0)  # the launcher gave up before the run started: nothing ran
    if go.get("go") is not True:
        os._exit(0)
    threading.Thread(target=_die_with_launcher, args=(conn,), name="warm-launcher-watch", daemon=True).start()
    # Installed before the fork already (prebuild_tls); idempotent. Never a reason not to run: if
    # Prefect failed to import here, the engine reports that itself, as a cold start would.
    with contextlib.suppress(Exception):
        share_api_tls_contexts()
    import runpy

    runpy.run_module(engine, run_name="__main__", alter_sys=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--socket", required=True)
    ap.add_argument("--preload", default="", help="comma-separated modules to import before serving")
    ap.add_argument("--project-dir", default=None)
    args = ap.parse_args(argv)
    zygote = Zygote(args.socket)
    engine = os.environ.get(ENGINE_ENV) or DEFAULT_ENGINE
    t0 = time.monotonic()
    failed = preload([m for m in args.preload.split(",") if m], args.project_dir, engine)
    complete_models()
    prebuild_tls()
    fingerprint = settings_fingerprint()
    gc.collect()
    gc.freeze()  # keep the imported objects' pages shared with the children
    msg = f"{READY_LINE} ({time.monotonic() - t0:.1f} s of imports)"
    if failed:
        msg += f"; not preloaded: {', '.join(failed)}"
    print(msg, file=sys.stderr, flush=True)
    child = zygote.serve(fingerprint)
    if child is None:
        return 0
    conn, req, fds, fp = child
    run_child(conn, req, fds, fp, zygote, engine)
    return 0


if __name__ == "__main__":
    sys.exit(main())
