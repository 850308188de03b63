"""Find the LLM servers on this host by asking each candidate port what it is.

Candidates: the known ports of Ollama (11434), vLLM (8000), llama.cpp (8080), TGI (8080/3000),
SGLang (30000), plus every TCP socket listening on this host (psutil), each asked on a loopback
address. A server is recognized by a route only it answers: Ollama ``/api/version``, TGI
``/info``, SGLang ``/get_model_info``, llama.cpp ``/props``, vLLM ``/version``; anything else
answering ``/v1/models`` is a generic OpenAI-compatible server. Every request has a short timeout
and a size limit; a port that is not HTTP is simply not a server.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field

import httpx
import psutil

KNOWN_PORTS = (11434, 8000, 8080, 30000, 3000, 5000, 8001)
MAX_BODY = 1 << 20
_LOOPBACK = {"127.0.0.1", "::1", "0.0.0.0", "::", "localhost"}


@dataclass
class FoundServer:
    kind: str  # ollama | vllm | llamacpp | tgi | sglang | openai
    api: str  # the endpoint dialect llm-upkeep speaks to it: ollama | openai
    url: str
    port: int
    version: str | None = None
    models: list[str] = field(default_factory=list)
    digests: dict[str, str] = field(default_factory=dict)  # Ollama: model -> manifest digest
    notes: list[str] = field(default_factory=list)

    @property
    def model(self) -> str | None:
        return self.models[0] if self.models else None


async def _get_json(http: httpx.AsyncClient, url: str, timeout_s: float):
    """The JSON body of a 200 answer, or None (error status, not JSON, too large, no answer)."""
    try:
        async with asyncio.timeout(timeout_s):
            async with http.stream("GET", url, timeout=httpx.Timeout(timeout_s)) as r:
                if r.status_code != 200:
                    return None
                buf = bytearray()
                async for chunk in r.aiter_bytes():
                    buf += chunk
                    if len(buf) > MAX_BODY:
                        return None
        return json.loads(buf)
    except (httpx.HTTPError, TimeoutError, ValueError, OSError):
        return None


async def _openai_models(http, base: str, timeout_s: float) -> tuple[list[str], list[dict]]:
    obj = await _get_json(http, base + "/v1/models", timeout_s)
    data = obj.get("data") if isinstance(obj, dict) else None
    rows = (
        [m for m in data if isinstance(m, dict) and isinstance(m.get("id"), str)]
        if isinstance(data, list)
        else []
    )
    return [m["id"] for m in rows], rows


async def identify(
    http: httpx.AsyncClient, host: str, port: int, timeout_s: float = 2.0
) -> FoundServer | None:
    """What serves on host:port, or None when it is not an LLM server we know."""
    h = f"[{host}]" if ":" in host else host
    base = f"http://{h}:{port}"
    v = await _get_json(http, base + "/api/version", timeout_s)
    if isinstance(v, dict) and isinstance(v.get("version"), str):
        found = FoundServer("ollama", "ollama", base, port, version=v["version"])
        tags = await _get_json(http, base + "/api/tags", timeout_s)
        listed = tags.get("models") if isinstance(tags, dict) else None
        for m in listed if isinstance(listed, list) else []:
            if isinstance(m, dict) and isinstance(m.get("name"), str):
                found.models.append(m["name"])
                if isinstance(m.get("digest"), str):
                    found.digests[m["name"]] = m["digest"]
        return found
    info = await _get_json(http, base + "/info", timeout_s)
    if isinstance(info, dict) and isinstance(info.get("model_id"), str):
        return FoundServer("tgi", "openai", base, port, version=str(info.get("version") or "") or None,
                           models=[info["model_id"]])  # fmt: skip
    sg = await _get_json(http, base + "/get_model_info", timeout_s)
    if isinstance(sg, dict) and isinstance(sg.get("model_path"), str):
        models, _ = await _openai_models(http, base, timeout_s)
        return FoundServer("sglang", "openai", base, port, models=models or [sg["model_path"]])
    props = await _get_json(http, base + "/props", timeout_s)
    if isinstance(props, dict) and ("default_generation_settings" in props or "model_path" in props):
        models, _ = await _openai_models(http, base, timeout_s)
        return FoundServer("llamacpp", "openai", base, port, version=str(props.get("build_info") or "") or None,
                           models=models)  # fmt: skip
    ver = await _get_json(http, base + "/version", timeout_s)
    models, rows = await _openai_models(http, base, timeout_s)
    if isinstance(ver, dict) and isinstance(ver.get("version"), str):
        return FoundServer("vllm", "openai", base, port, version=ver["version"], models=models)
    if rows:
        # llama-cpp-python's server (no /props) marks its models owned_by "me".
        kind = "llamacpp" if any(r.get("owned_by") == "me" for r in rows) else "openai"
        found = FoundServer(kind, "openai", base, port, models=models)
        if kind == "llamacpp":
            found.notes.append(
                "llama-cpp-python server: no /metrics (llama.cpp's llama-server --metrics has one)"
            )
        return found
    return None


def listening_ports() -> set[int]:
    """TCP ports listening on a loopback or wildcard address of this host (reachable via loopback)."""
    out: set[int] = set()
    try:
        conns = psutil.net_connections(kind="tcp")
    except (psutil.Error, OSError):
        return out
    for c in conns:
        if c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.ip in _LOOPBACK:
            out.add(c.laddr.port)
    return out


async def discover_servers(
    addresses: tuple[str, ...] = ("127.0.0.1",),
    ports: tuple[int, ...] = KNOWN_PORTS,
    *,
    listening: bool = True,
    timeout_s: float = 2.0,
    concurrency: int = 16,
) -> list[FoundServer]:
    """Every recognized server on addresses x (ports + listening ports), ordered by port."""
    candidates = sorted(set(ports) | (listening_ports() if listening else set()))
    sem = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(follow_redirects=False, trust_env=False) as http:

        async def one(addr: str, port: int):
            async with sem:
                return await identify(http, addr, port, timeout_s)

        got = await asyncio.gather(*[one(a, p) for a in addresses for p in candidates])
    seen: set[int] = set()
    out = []
    for f in got:
        if f is not None and f.port not in seen:  # one server may answer on 127.0.0.1 and ::1
            seen.add(f.port)
            out.append(f)
    return out
