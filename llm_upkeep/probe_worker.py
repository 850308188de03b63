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


async def run_request(http, req: dict[str, Any]) -> dict[str, Any]:
    """One probe request -> one answer line; a bad request is an error line, never a crash."""
    rid = req.get("id")
    try:
        for name, value in (req.get("env") or {}).items():  # the caller's API key, for this probe
            os.environ[str(name)] = str(value)
        ep = EndpointConfig.model_validate(req["endpoint"])
        res = await probe_endpoint(
            ep, http, prompt=str(req.get("prompt", "test")), max_tokens=int(req.get("max_tokens", 16)),
            chat=bool(req.get("chat", True)),
        )  # fmt: skip
        return {"id": rid, "result": res.model_dump(mode="json")}
    except Exception as exc:  # probe_endpoint never raises for a server; this is a bad request
        return {"id": rid, "error": short_detail(f"{type(exc).__name__}: {exc}")}


async def warm_probe_path(http) -> None:
    """Stream once from a local simulator in each dialect, so the first real probe does not pay
    for first-use work (lazy imports, code paths run for the first time: 10-110 ms measured on a
    loaded 2-core machine, where later probes read the true TTFT)."""
    from llm_upkeep.sim.llm_server import SimBehavior, SimServer

    try:
        with SimServer(SimBehavior(ttft_s=0.0, itl_s=0.0, tokens=3)) as sim:
            for api in ("ollama", "openai"):
                ep = EndpointConfig(name="warm-up", api=api, url=sim.url, model=sim.behavior.model, timeout_s=5.0)
                await probe_endpoint(ep, http, max_tokens=2)
    except Exception:  # a warm-up that fails costs accuracy only, never the probes
        return


async def serve(reader: asyncio.StreamReader, write) -> None:
    """Answer requests as they come, concurrently, until end of input and every probe is done."""
    pending: set[asyncio.Task] = set()
    async with make_http_client() as http:
        await warm_probe_path(http)
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

            async def one(r=req) -> None:
                write(await run_request(http, r))

            t = asyncio.create_task(one())
            pending.add(t)
            t.add_done_callback(pending.discard)
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)


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
