"""The one measurement path for every probe the flows take: daily health, the runbook's probes,
the post-promotion probe and liveness.

Why not just ``await probe_endpoint`` in the flow: a chunk's arrival is stamped when the event
loop gets round to it, and inside a flow that loop also runs Prefect's orchestration of every
task around the probe. At 10 endpoints that made TTFT read about 100 ms late (4.8 times the
error of bare probes). So the probes run in a process of their own (llm_upkeep/probe_worker.py),
whose loop does nothing else, started once per process and reused; each endpoint's Prefect task
only sends the request and awaits the result, so it keeps its own state, retries and
classification in the UI.

``LLM_UPKEEP_PROBE_ISOLATION`` picks the path: ``process`` (default), ``thread`` (a dedicated
thread with its own loop: no GIL isolation, the fallback when no process can start) or
``inline`` (the caller's loop; what the flows did before, kept for comparison in
benchmarks/probe_accuracy.py). The figures that chose ``process`` are in docs/daily-health.md.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import contextlib
import itertools
import json
import logging
import os
import subprocess
import sys
import threading
from collections import deque
from pathlib import Path
from typing import Any

from llm_upkeep.config import EndpointConfig
from llm_upkeep.probe import PS_TIMEOUT_S, ProbeResult, probe_endpoint
from llm_upkeep.redact import redact

log = logging.getLogger(__name__)

ENV_ISOLATION = "LLM_UPKEEP_PROBE_ISOLATION"
ISOLATIONS = ("process", "thread", "inline")
# A probe ends by its own deadline (timeout_s) plus Ollama's /api/ps read; past this margin on
# top, the worker is considered stuck and the probe is reported as a timeout.
STUCK_MARGIN_S = 10.0


class WorkerGone(RuntimeError):
    """The probe process ended (or never started) before it answered."""


def _secret_env(endpoint: EndpointConfig) -> dict[str, str]:
    """The API key as this process resolves it now, for the probe process's own environment
    (sent over the pipe: never on a command line, never in the environment it was started with)."""
    if not endpoint.api_key_env:
        return {}
    key = endpoint.api_key()
    return {endpoint.api_key_env: key} if key else {}


class _ProcessBackend:
    """The probe process and a reader thread that hands its answers to waiting futures."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._waiting: dict[int, concurrent.futures.Future] = {}
        self._stderr: deque[str] = deque(maxlen=20)
        self.ready = threading.Event()
        root = str(Path(__file__).resolve().parent.parent)
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "llm_upkeep.probe_worker"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, env=env, cwd=root, close_fds=True,
        )  # fmt: skip
        threading.Thread(target=self._read, name="probe-worker-reader", daemon=True).start()
        threading.Thread(target=self._drain_stderr, name="probe-worker-stderr", daemon=True).start()

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None and self.pid == os.getpid()

    @property
    def queued(self) -> int:
        """Probes sent and not yet answered (the process starts them paced)."""
        return len(self._waiting)

    def submit(self, endpoint: EndpointConfig, prompt: str, max_tokens: int, chat: bool) -> concurrent.futures.Future:
        fut: concurrent.futures.Future = concurrent.futures.Future()
        req = {"endpoint": endpoint.model_dump(mode="json"), "prompt": prompt, "max_tokens": max_tokens, "chat": chat,
               "env": _secret_env(endpoint)}  # fmt: skip
        with self._lock:
            rid = next(self._ids)
            self._waiting[rid] = fut
            try:
                self.proc.stdin.write(json.dumps({"id": rid, **req}).encode() + b"\n")
                self.proc.stdin.flush()
            except (OSError, ValueError) as exc:
                self._waiting.pop(rid, None)
                fut.set_exception(WorkerGone(f"cannot reach the probe process: {exc}"))
        return fut

    def _read(self) -> None:
        for line in self.proc.stdout:
            try:
                msg = json.loads(line)
            except json.JSONDecodeError:
                continue
            if msg.get("ready"):
                self.ready.set()
                continue
            with self._lock:
                fut = self._waiting.pop(msg.get("id"), None)
            if fut is None or fut.done():
                continue
            if "result" in msg:
                fut.set_result(ProbeResult.model_validate(msg["result"]))
            else:
                fut.set_exception(WorkerGone(f"probe process refused the request: {msg.get('error')}"))
        self.proc.wait()
        why = redact(" | ".join(self._stderr)[-600:]) or f"exit status {self.proc.returncode}"
        with self._lock:
            waiting, self._waiting = self._waiting, {}
        for fut in waiting.values():
            if not fut.done():
                fut.set_exception(WorkerGone(f"probe process ended: {why}"))

    def _drain_stderr(self) -> None:
        for raw in self.proc.stderr:
            self._stderr.append(raw.decode(errors="replace").rstrip())

    def close(self, timeout_s: float = 3.0) -> None:
        with contextlib.suppress(OSError, ValueError):
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout_s)


class _ThreadBackend:
    """A dedicated thread with its own event loop and HTTP client (isolated from the caller's
    loop, not from its interpreter lock)."""

    def __init__(self) -> None:
        from llm_upkeep.probe_worker import OriginClients, StartPacer

        self.pid = os.getpid()
        self.loop = asyncio.new_event_loop()
        self.http = None
        self._open = 0
        self._count_lock = threading.Lock()
        started = threading.Event()

        def run() -> None:
            asyncio.set_event_loop(self.loop)
            self.http = OriginClients()
            self.pacer = StartPacer()
            started.set()
            self.loop.run_forever()

        self.thread = threading.Thread(target=run, name="probe-loop", daemon=True)
        self.thread.start()
        started.wait(10)

    @property
    def alive(self) -> bool:
        return self.thread.is_alive() and self.pid == os.getpid()

    @property
    def queued(self) -> int:
        """Probes submitted and not yet finished (their starts are paced, as in the process)."""
        return self._open

    def submit(self, endpoint: EndpointConfig, prompt: str, max_tokens: int, chat: bool) -> concurrent.futures.Future:
        from llm_upkeep.probe_worker import paced_probe

        coro = paced_probe(self.pacer, self.http, endpoint, prompt=prompt, max_tokens=max_tokens, chat=chat)
        with self._count_lock:
            self._open += 1
        fut = asyncio.run_coroutine_threadsafe(coro, self.loop)
        fut.add_done_callback(self._finished)
        return fut

    def _finished(self, _fut: concurrent.futures.Future) -> None:
        with self._count_lock:
            self._open -= 1

    def close(self, timeout_s: float = 3.0) -> None:
        if not self.loop.is_running():
            return
        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(self.http.aclose(), self.loop).result(timeout_s)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout_s)


_backends: dict[str, Any] = {}
_backend_lock = threading.Lock()
_broken: set[str] = set()


def isolation() -> str:
    """The configured path; an unknown value falls back to the default with a warning."""
    v = (os.environ.get(ENV_ISOLATION) or "process").strip().lower()
    if v not in ISOLATIONS:
        log.warning("%s=%r is not one of %s; using process", ENV_ISOLATION, v, ", ".join(ISOLATIONS))
        return "process"
    return v


def _backend(kind: str):
    with _backend_lock:
        b = _backends.get(kind)
        if b is not None and b.alive:
            return b
        if kind in _broken:
            return None
        try:
            b = _ProcessBackend() if kind == "process" else _ThreadBackend()
        except OSError as exc:
            log.warning("cannot start the %s probe path (%s); probing on a dedicated thread", kind, exc)
            _broken.add(kind)
            return None
        _backends[kind] = b
        return b


def start_probe_worker() -> None:
    """Start the probe process now (it imports for about 0.3 s) so the first probe does not wait.
    Cheap when it already runs; does nothing for the thread and inline paths."""
    if isolation() == "process":
        _backend("process")


def close_probe_workers() -> None:
    """Stop the probe process and thread (also registered at exit)."""
    with _backend_lock:
        backends = list(_backends.values())
        _backends.clear()
    for b in backends:
        if b.pid == os.getpid():
            b.close()


atexit.register(close_probe_workers)


def _timeout_result(endpoint: EndpointConfig, detail: str) -> ProbeResult:
    return ProbeResult(
        endpoint=endpoint.name, api=endpoint.api, model=endpoint.model, ok=False, error_kind="timeout",
        error_detail=detail,
    )  # fmt: skip


def stuck_limit_s(endpoint: EndpointConfig, queued: int = 0) -> float:
    """How long a probe may take before the probe process is considered stuck: the endpoint's own
    deadline, Ollama's /api/ps read, a margin, and the paced start of the probes queued before it
    (at most probe_worker.START_WAIT_MAX_S each: 2,000 endpoints at once wait up to 50 s to start
    on a machine too slow for one start per 5 ms; 10 s where it keeps up)."""
    from llm_upkeep.probe_worker import START_WAIT_MAX_S

    return endpoint.timeout_s + min(PS_TIMEOUT_S, endpoint.timeout_s) + STUCK_MARGIN_S + START_WAIT_MAX_S * queued


async def measure_probe(
    endpoint: EndpointConfig, *, prompt: str = "test", max_tokens: int = 16, chat: bool = True,
    path: str | None = None,
) -> ProbeResult:  # fmt: skip
    """``probe_endpoint`` on the isolated path; same result, same classification, never raises
    for a server fault. Safe to call from any event loop or thread, concurrently.

    path: force ``inline`` where the caller's loop does nothing else (``llm-upkeep check``), which
    spares the 0.3 s start of the probe process; default: $LLM_UPKEEP_PROBE_ISOLATION."""
    kind = path or isolation()
    if kind == "inline":
        from llm_upkeep.clients import make_http_client

        async with make_http_client() as http:
            return await probe_endpoint(endpoint, http, prompt=prompt, max_tokens=max_tokens, chat=chat)
    backend = _backend(kind)
    if backend is None and kind == "process":
        backend = _backend("thread")
    limit = stuck_limit_s(endpoint, getattr(backend, "queued", 0))
    try:
        fut = backend.submit(endpoint, prompt, max_tokens, chat)
        return await asyncio.wait_for(asyncio.wrap_future(fut), limit)
    except TimeoutError:
        return _timeout_result(endpoint, f"the probe did not finish within {limit:g} s")
    except WorkerGone as exc:
        # The measurement path failed, not the server: say so once, and probe on a thread.
        log.warning("%s; probing %s on a dedicated thread instead", exc, endpoint.name)
        if kind == "process" and not backend.ready.is_set():
            with _backend_lock:
                _broken.add("process")  # it cannot start here; a process that ran may be restarted
        fut = _backend("thread").submit(endpoint, prompt, max_tokens, chat)
        return await asyncio.wait_for(asyncio.wrap_future(fut), limit)


async def measure_probes(
    endpoints: list[EndpointConfig], *, prompt: str = "test", max_tokens: int = 16, chat: bool = True,
    path: str | None = None,
) -> list[ProbeResult]:  # fmt: skip
    """Every endpoint at once on the isolated path, results in the same order."""
    if (path or isolation()) == "inline":  # the probe process's clients, on the caller's loop
        from llm_upkeep.probe_worker import OriginClients, StartPacer, paced_probe, warm_probe_path

        clients, pacer = OriginClients(), StartPacer()
        try:
            await warm_probe_path(clients)
            return list(await asyncio.gather(*[
                paced_probe(pacer, clients, e, prompt=prompt, max_tokens=max_tokens, chat=chat) for e in endpoints
            ]))  # fmt: skip
        finally:
            await clients.aclose()
    return list(await asyncio.gather(
        *[measure_probe(e, prompt=prompt, max_tokens=max_tokens, chat=chat, path=path) for e in endpoints]
    ))  # fmt: skip


# Probe failures worth retrying: the server may come back in seconds. A hang is not retried
# (it would only burn another full timeout), nor is a 4xx (asking again will not help).
TRANSIENT_KINDS = frozenset({"connection_refused", "connect_timeout", "http_5xx"})


async def measure_probe_retried(
    endpoint: EndpointConfig, *, prompt: str, max_tokens: int, retries: int, retry_delay_s: float,
    sleep=asyncio.sleep,
) -> ProbeResult:  # fmt: skip
    """measure_probe, retried on its own when the failure is transient (connection refused or timed
    out, 5xx), never on a 4xx, a hang or a malformed answer; waits retry_delay_s * 2**i between
    tries. The last result is returned classified (a failure is a result, not an exception).

    Why here and not as Prefect task retries: one task run per endpoint cost the Prefect server
    and the flow about 80 ms of CPU each; at 500 endpoints that saturated two cores for 19 s and
    made the probes on them read TTFT ten times late. A host's endpoints now share one task."""
    result = await measure_probe(endpoint, prompt=prompt, max_tokens=max_tokens)
    for i in range(max(0, retries)):
        if result.ok or result.error_kind not in TRANSIENT_KINDS:
            break
        await sleep(retry_delay_s * 2**i)
        result = await measure_probe(endpoint, prompt=prompt, max_tokens=max_tokens)
    return result

