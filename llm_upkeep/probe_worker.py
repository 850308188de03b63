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
from llm_upkeep.probe import probe_endpoint

# One request line is an endpoint's config plus a prompt; anything longer is not ours.
MAX_LINE_BYTES = 1 << 20
# Probes start at most one per START_INTERVAL_S, so that a fleet's probes do not all send at once
# and hold this loop busy while first tokens wait to be stamped; a probe's wait for its start is
# not in its clock. 500 endpoints start over 2.5 s; 50 over 0.25 s.
START_INTERVAL_S = 0.005


class OriginClients:
    """One small connection pool per server (scheme, host, port), sharing one TLS context.

    Why not one shared client: httpcore's pool scans every connection it holds on each request
    and each close, so one pool holding 500 servers' connections spent 35 ms of CPU per probe
    (8 million idle checks for 200 probes); probe 201 of 500 also waited for a free connection
    inside its TTFT clock. Measured bare at 500 endpoints (true TTFT 0.5 s): p50 9.0 s read."""

    def __init__(self) -> None:
        import httpx

        self._ctx = httpx.create_ssl_context(trust_env=True)  # as each client would (SSL_CERT_FILE honoured)
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


async def run_request(clients: OriginClients, req: dict[str, Any]) -> dict[str, Any]:
    """One probe request -> one answer line; a bad request is an error line, never a crash."""
    rid = req.get("id")
    try:
        for name, value in (req.get("env") or {}).items():  # the caller's API key, for this probe
            os.environ[str(name)] = str(value)
        ep = EndpointConfig.model_validate(req["endpoint"])
        res = await probe_endpoint(
            ep, clients.for_url(ep.url), prompt=str(req.get("prompt", "test")), max_tokens=int(req.get("max_tokens", 16)),
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
    """Answer requests as they come, concurrently, until end of input and every probe is done."""
    pending: set[asyncio.Task] = set()
    loop = asyncio.get_running_loop()
    next_start = 0.0
    clients = OriginClients()
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

            now = loop.time()
            start_at = max(now, next_start)
            next_start = start_at + START_INTERVAL_S

            async def one(r=req, wait=start_at - now) -> None:
                if wait > 0:
                    await asyncio.sleep(wait)  # before the probe's clock starts: never charged to TTFT
                write(await run_request(clients, r))

            t = asyncio.create_task(one())
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
