"""Read one endpoint's /metrics over HTTP: its own time budget and size limit, a classified
result for every failure (a server without metrics is "absent", not an error)."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Literal

import httpx
from pydantic import BaseModel, Field

from llm_upkeep.config import EndpointConfig
from llm_upkeep.redact import redact
from llm_upkeep.servermetrics.parse import MetricsParseError, ServerMetrics, parse_exposition


class MetricsReading(BaseModel):
    """The outcome of one scrape."""

    endpoint: str = Field(description="Endpoint name.")
    status: Literal["ok", "absent", "error"] = Field(
        description="ok: parsed; absent: the server has no /metrics (Ollama, a llama.cpp without "
        "--metrics); error: it has one and it could not be read."
    )
    detail: str = Field(default="", description="Why absent or error; what was read otherwise.")
    metrics: ServerMetrics | None = Field(default=None, description="The normalized reading when ok.")
    at: datetime = Field(default_factory=lambda: datetime.now(UTC), description="When it was read (UTC).")
    duration_s: float | None = Field(default=None, description="How long the scrape took.")


async def _read_capped(resp: httpx.Response, max_bytes: int) -> bytes | None:
    buf = bytearray()
    async for chunk in resp.aiter_bytes():
        buf += chunk
        if len(buf) > max_bytes:
            return None
    return bytes(buf)


async def scrape_metrics(
    endpoint: EndpointConfig, http: httpx.AsyncClient, *, timeout_s: float = 5.0, max_bytes: int = 4 << 20
) -> MetricsReading:
    """GET {url}/metrics and parse it; never raises for the server's faults."""
    if endpoint.api == "ollama":
        return MetricsReading(
            endpoint=endpoint.name, status="absent", detail="Ollama exports no Prometheus /metrics"
        )
    headers = {"Accept": "text/plain"}
    key = endpoint.api_key()
    if key:
        headers["Authorization"] = f"Bearer {key}"
    t0 = time.monotonic()
    out = MetricsReading(endpoint=endpoint.name, status="error")
    try:
        async with asyncio.timeout(timeout_s):
            req = http.build_request(
                "GET", endpoint.url + "/metrics", headers=headers, timeout=httpx.Timeout(timeout_s)
            )
            resp = await http.send(req, stream=True)
            try:
                if resp.status_code in (404, 405):
                    out.status, out.detail = (
                        "absent",
                        f"HTTP {resp.status_code}: this server exports no /metrics",
                    )
                elif resp.status_code != 200:
                    out.detail = f"HTTP {resp.status_code} from /metrics"
                else:
                    body = await _read_capped(resp, max_bytes)
                    if body is None:
                        out.detail = f"/metrics larger than {max_bytes} bytes"
                    else:
                        out.metrics = parse_exposition(body.decode("utf-8", "replace"))
                        out.status = "ok"
                        out.detail = (
                            f"{out.metrics.dialect or 'unknown'} dialect, {len(out.metrics.samples)} series"
                        )
            finally:
                await resp.aclose()
    except TimeoutError:
        out.detail = f"timeout: /metrics did not answer within {timeout_s:g} s"
    except MetricsParseError as exc:
        out.detail = redact(str(exc))[:300]
    except httpx.HTTPError as exc:
        out.detail = redact(f"{type(exc).__name__}: {exc}")[:300]
    out.duration_s = round(time.monotonic() - t0, 4)
    return out
