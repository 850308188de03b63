"""The probe process: runs streaming probes on an event loop that nothing else shares.

Why a process of its own: inside a flow, the probes' chunk timestamps waited for Prefect's task
orchestration on the same event loop (and, in a thread, for the same interpreter lock), so TTFT
read 10-100 ms late at fleet scale. Here the loop does nothing but read sockets and stamp
chunks, like a bare ``probe_endpoint`` in a plain process. See llm_upkeep/measure.py for the
caller's side and docs/daily-health.md for the measurement that chose a process.

Protocol (JSON lines): stdin carries ``{"id", "endpoint", "prompt", "max_tokens", "chat"}``,
stdout answers ``{"id", "result"}`` (a ProbeResult) or ``{"id", "error"}``; the first line out is
``{"ready": true}``. End of stdin ends the process once its probes finish.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from typing import Any

from llm_upkeep.clients import make_http_client
from llm_upkeep.clients.errors import short_detail
from llm_upkeep.config import EndpointConfig
from llm_upkeep.probe import ProbeResult, probe_endpoint

# One request line is an endpoint's config plus a prompt; anything longer is not ours.
MAX_LINE_BYTES = 1 << 20
# Probes start one at a time, each at least START_INTERVAL_S after the previous one actually
# started, so that a fleet's probes do not all send at once and hold this loop busy while first
# tokens wait to be stamped; a probe's wait for its start is not in its clock. 500 endpoints start
# over 2.5 s at least; 50 over 0.25 s. And while the loop runs late (a timer fired more than
# LOOP_LAG_LIMIT_S after its time: chunks of the probes already running wait as long to be
# stamped), the next start waits on, in steps of START_INTERVAL_S, up to START_WAIT_MAX_S in all.
# Why both: what one probe costs this loop (connect, request, 16 chunks, Ollama's /api/ps, close:
# 6 to 8 ms of CPU on a slow 2-core machine) can exceed the interval. Start times fixed in advance
# (as they were) then piled up a backlog that later probes read as TTFT: at 200 endpoints 1.27 to
# 1.38 x a lone probe, at 500 2.29 x, with the servers on time to the millisecond. Timed from the
# previous start: 1.02-1.04 x (p90 1.07-1.11 x); watching the loop's lateness too: 1.01-1.02 x
# (p90 1.04-1.06 x). (benchmarks/probe_fanout.py --endpoints 200,500)
START_INTERVAL_S = 0.005
LOOP_LAG_LIMIT_S = 0.002
START_WAIT_MAX_S = 0.025


async def wait_for_start(since: float) -> float:
    """Wait until START_INTERVAL_S after the previous start and until this loop is on time again
    (at most START_WAIT_MAX_S in all); returns the start's loop time."""
    loop = asyncio.get_running_loop()
    now = loop.time()
    give_up = max(now, since) + START_WAIT_MAX_S
    target = max(now, since + START_INTERVAL_S)
    while True:
        await asyncio.sleep(target - loop.time())
        now = loop.time()
        if now - target <= LOOP_LAG_LIMIT_S or now >= give_up:
            return now
        target = min(now + START_INTERVAL_S, give_up)


class StartPacer:
    """Starts probes on one event loop one at a time, in the order they ask (``wait_for_start``).
    The probe process, the thread fallback and the inline path of ``llm-upkeep check`` each keep
    one: the inline and thread paths started every probe at once, and at 200 endpoints read TTFT
    2.25 x a lone probe on a slow 2-core machine."""

    def __init__(self) -> None:
        self._lock = asyncio.Lock()  # FIFO: the order of the requests is the order of the starts
        self._last = float("-inf")

    async def wait(self) -> None:
        async with self._lock:
            self._last = await wait_for_start(self._last)


async def paced_probe(
    pacer: StartPacer, clients: OriginClients, endpoint: EndpointConfig, *, prompt: str = "test",
    max_tokens: int = 16, chat: bool = True,
) -> ProbeResult:  # fmt: skip
    """``probe_endpoint`` on this loop's shared clients, started when the pacer says: the one way
    the probe process, the thread fallback and the inline path start a probe. The wait is before
    the probe's clock starts: never charged to TTFT."""
    await pacer.wait()
    return await probe_endpoint(endpoint, clients.for_url(endpoint.url), prompt=prompt, max_tokens=max_tokens,
                                chat=chat)  # fmt: skip


class OriginClients:
    """One small connection pool per server (scheme, host, port), sharing one TLS context.

    Why not one shared client: httpcore's pool scans every connection it holds on each request
    and each close, so one pool holding 500 servers' connections spent 35 ms of CPU per probe
    (8 million idle checks for 200 probes); probe 201 of 500 also waited for a free connection
    inside its TTFT clock. Measured bare at 500 endpoints (true TTFT 0.5 s): p50 9.0 s read."""

    def __init__(self) -> None:
        from llm_upkeep.clients.tls import shared_verify_context

        self._ctx = shared_verify_context()  # as each client would build it (SSL_CERT_FILE honoured)
        self._clients: dict[tuple[str, str, int | None], Any] = {}

    def for_url(self, url: str):
        import httpx

        u = httpx.URL(url)
        key = (u.scheme, u.host, u.port)
        c = self._clients.get(key)
        if c is None:
            c = self._clients[key] = make_http_client(max_connections=8, verify=self._ctx)
        return c

    async def aclose(self) -> None:
        for c in self._clients.values():
            await c.aclose()
        self._clients.clear()


async def run_request(pacer: StartPacer, clients: OriginClients, req: dict[str, Any]) -> dict[str, Any]:
    """One probe request -> one answer line; a bad request is an error line, never a crash (and
    takes no start)."""
    rid = req.get("id")
    try:
        for name, value in (req.get("env") or {}).items():  # the caller's API key, for this probe
            os.environ[str(name)] = str(value)
        ep = EndpointConfig.model_validate(req["endpoint"])
        res = await paced_probe(
            pacer, clients, ep, prompt=str(req.get("prompt", "test")), max_tokens=int(req.get("max_tokens", 16)),
            chat=bool(req.get("chat", True)),
        )  # fmt: skip
        return {"id": rid, "result": res.model_dump(mode="json")}
    except Exception as exc:  # probe_endpoint never raises for a server; this is a bad request
        return {"id": rid, "error": short_detail(f"{type(exc).__name__}: {exc}")}


async def warm_probe_path(clients: OriginClients) -> None:
    """Stream once from a local simulator in each dialect, so the first real probe does not pay
    for first-use work (lazy imports, code paths run for the first time: 10-110 ms measured on a
    loaded 2-core machine, where later probes read the true TTFT)."""
    from llm_upkeep.sim.llm_server import SimBehavior, SimServer

    try:
        with SimServer(SimBehavior(ttft_s=0.0, itl_s=0.0, tokens=3)) as sim:
            for api in ("ollama", "openai"):
                ep = EndpointConfig(name="warm-up", api=api, url=sim.url, model=sim.behavior.model, timeout_s=5.0)
                await probe_endpoint(ep, clients.for_url(ep.url), max_tokens=2)
    except Exception:  # a warm-up that fails costs accuracy only, never the probes
        return


async def serve(reader: asyncio.StreamReader, write) -> None:
    """Answer requests as they come, concurrently, until end of input and every probe is done.
    Each probe waits for its start (``StartPacer``) before its clock starts."""
    pending: set[asyncio.Task] = set()
    clients = OriginClients()
    pacer = StartPacer()

    async def one(r: dict) -> None:
        write(await run_request(pacer, clients, r))

    try:
        await warm_probe_path(clients)
        write({"ready": True})
        while True:
            try:
                line = await reader.readline()
            except ValueError:  # a line over the limit
                write({"id": None, "error": "request line too long"})
                continue
            if not line:
                break
            try:
                req = json.loads(line)
            except json.JSONDecodeError:
                write({"id": None, "error": "request is not JSON"})
                continue
            t = asyncio.create_task(one(req))
            pending.add(t)
            t.add_done_callback(pending.discard)
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
    finally:
        await clients.aclose()


async def main_async() -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=MAX_LINE_BYTES)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    out = sys.stdout.buffer

    def write(obj: dict[str, Any]) -> None:
        out.write(json.dumps(obj).encode() + b"\n")
        out.flush()

    await serve(reader, write)


def main() -> int:
    try:
        asyncio.run(main_async())
    except (KeyboardInterrupt, BrokenPipeError):
        return 0
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
