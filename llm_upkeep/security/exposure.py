"""Exposure: who can reach each LLM server, and what it answers without credentials.

Two sources of evidence:

* the kernel's socket tables (``psutil.net_connections``): is the server's port bound beyond loopback?
* harmless HTTP probes sent *without* credentials. Each probe is built so that no server can act on it:

  - inference: ``POST /api/generate`` (Ollama) or ``POST /v1/chat/completions`` (OpenAI-style) with an
    empty JSON object. No model and no prompt, so the handler can only reject it (400/422); an auth
    layer in front answers 401/403 first. Nothing is generated.
  - Ollama management: ``POST /api/create``, ``POST /api/push``, ``POST /api/pull`` and
    ``DELETE /api/delete``, each with ``{}``: no model name, so every Ollama version rejects them
    before touching a model ("model is required" / "invalid model name"). A JSON error from the
    handler proves the route answers anyone; 401/403 proves something guards it; the router's
    "404 page not found" means the route is not there (e.g. filtered by a proxy).
  - routes outside ``/v1`` that vLLM's ``--api-key`` (and llama.cpp's public list) do not cover:
    GETs of ``/metrics``, ``/version``, ``/props``, ``/slots``, ``/is_sleeping``, and POSTs of ``{}`` to
    ``/invocations``, ``/completion``, ``/tokenize``, ``/detokenize``, ``/pooling``, ``/score``,
    ``/rerank``; validation rejects the empty body before any model work.

  Routes that act without a body (vLLM dev-mode ``/sleep``, ``/reset_prefix_cache``, llama.cpp slot
  actions) are never sent anything; ``GET /is_sleeping`` shows whether that dev-mode family is on.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import socket
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import httpx
import psutil

from llm_upkeep.clients.base import read_capped
from llm_upkeep.clients.errors import LLMError
from llm_upkeep.config import EndpointConfig
from llm_upkeep.redact import redact
from llm_upkeep.security.findings import Finding

OLLAMA_DANGEROUS = [
    ("POST", "/api/create"),
    ("POST", "/api/push"),
    ("POST", "/api/pull"),
    ("DELETE", "/api/delete"),
]

# (method, path, kind): kind decides severity when the route answers while /v1 wants a key.
OPENAI_UNCOVERED = [
    ("POST", "/invocations", "inference"),
    ("POST", "/completion", "inference"),
    ("GET", "/is_sleeping", "devmode"),
    ("POST", "/tokenize", "compute"),
    ("POST", "/detokenize", "compute"),
    ("POST", "/pooling", "compute"),
    ("POST", "/score", "compute"),
    ("POST", "/rerank", "compute"),
    ("GET", "/slots", "prompts"),
    ("GET", "/metrics", "info"),
    ("GET", "/version", "info"),
    ("GET", "/props", "info"),
]

VERSION_MAX_BYTES = 64 * 1024
"""A version answer is a few bytes; more is not read."""


# ---------------------------------------------------------------- sockets


@dataclass
class ListeningSocket:
    ip: str
    port: int
    pid: int | None = None
    process: str | None = None

    @property
    def loopback(self) -> bool:
        return is_loopback(self.ip)

    def describe(self) -> str:
        host = f"[{self.ip}]" if ":" in self.ip else self.ip
        who = f" pid {self.pid}" if self.pid else ""
        who += f" ({self.process})" if self.process else ""
        return f"tcp {host}:{self.port} LISTEN{who}"


def is_loopback(ip: str) -> bool:
    try:
        addr = ipaddress.ip_address(ip.split("%")[0])
    except ValueError:
        return False
    mapped = getattr(addr, "ipv4_mapped", None)
    return addr.is_loopback or bool(mapped and mapped.is_loopback)


def list_listening_sockets(ports: set[int] | None = None) -> list[ListeningSocket]:
    """TCP sockets in LISTEN state from the kernel's tables, optionally only these ports."""
    out: list[ListeningSocket] = []
    for c in psutil.net_connections(kind="inet"):
        if c.type != socket.SOCK_STREAM or c.status != psutil.CONN_LISTEN or not c.laddr:
            continue
        if ports is not None and c.laddr.port not in ports:
            continue
        name = None
        if c.pid:
            try:
                name = psutil.Process(c.pid).name()
            except (psutil.Error, OSError):
                name = None
        out.append(ListeningSocket(ip=c.laddr.ip, port=c.laddr.port, pid=c.pid, process=name))
    return sorted(out, key=lambda s: (s.port, s.ip))


def local_addresses() -> set[str]:
    addrs = {"localhost"}
    for entries in psutil.net_if_addrs().values():
        for a in entries:
            if a.family in (socket.AF_INET, socket.AF_INET6):
                addrs.add(a.address.split("%")[0])
    return addrs


def url_host_port(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return (parts.hostname or ""), port


def endpoint_is_local(endpoint: EndpointConfig, local: set[str] | None = None) -> bool:
    host, _ = url_host_port(endpoint.url)
    if is_loopback(host) or host == "localhost":
        return True
    return host in (local if local is not None else local_addresses())


# ---------------------------------------------------------------- probes


@dataclass
class ProbeAnswer:
    method: str
    path: str
    status: int | None
    verdict: str  # reachable | auth-required | absent | unreachable | unknown
    excerpt: str = ""
    kind: str = ""

    def describe(self) -> str:
        st = self.status if self.status is not None else "no answer"
        ex = f" {self.excerpt}" if self.excerpt else ""
        return f"{self.method} {self.path} without credentials -> {st}{ex} ({self.verdict})"


@dataclass
class EndpointExposure:
    endpoint: str
    api: str
    url: str
    port: int
    local: bool
    sockets: list[ListeningSocket] = field(default_factory=list)
    inference: ProbeAnswer | None = None
    listing: ProbeAnswer | None = None
    routes: list[ProbeAnswer] = field(default_factory=list)
    product: str | None = None
    version: str | None = None
    version_source: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def exposed(self) -> bool | None:
        """True: reachable beyond this host; False: loopback only; None: bind address not visible."""
        if not self.local:
            return True
        if not self.sockets:
            return None
        return any(not s.loopback for s in self.sockets)


def _excerpt(resp: httpx.Response) -> str:
    text = resp.text[:160].replace("\n", " ").strip()
    return redact(text)


def classify_answer(status: int, body: str) -> str:
    """Did the route's own handler answer (reachable), an auth layer (auth-required), or no route (absent)?"""
    if status in (401, 403, 407):
        return "auth-required"
    if status == 405:
        return "absent"
    if status == 404:
        # A handler's own 404 names the model it could not find; routers answer generically.
        try:
            data = json.loads(body)
        except ValueError:
            return "absent"
        err = data.get("error") if isinstance(data, dict) else None
        if isinstance(err, str) and "model" in err.lower():
            return "reachable"
        msg = data.get("message") if isinstance(data, dict) else None
        if isinstance(msg, str) and "model" in msg.lower() and data.get("object") == "error":
            return "reachable"
        return "absent"
    if 200 <= status < 300 or status in (400, 422, 500):
        return "reachable"
    return "unknown"


async def send_probe(
    http: httpx.AsyncClient, base: str, method: str, path: str, timeout: float, *,
    body: dict | None = None, headers: dict | None = None, kind: str = "",
) -> ProbeAnswer:  # fmt: skip
    """One request with its own timeout; never follows redirects, never raises."""
    kw: dict = {"timeout": httpx.Timeout(timeout), "headers": headers or {}}
    if body is not None:
        kw["json"] = body
    try:
        resp = await http.request(method, base + path, **kw)
    except httpx.HTTPError as exc:
        return ProbeAnswer(method, path, None, "unreachable", redact(type(exc).__name__), kind)
    return ProbeAnswer(method, path, resp.status_code, classify_answer(resp.status_code, resp.text),
                       _excerpt(resp), kind)  # fmt: skip


async def _read_version(
    http: httpx.AsyncClient, ep: EndpointConfig, timeout: float
) -> tuple[str | None, str | None, str | None]:
    """(product, version, source): Ollama /api/version, vLLM /version, llama.cpp /props build_info."""
    headers = {}
    key = ep.api_key()
    if key:
        headers["Authorization"] = f"Bearer {key}"

    async def get_json(path: str):
        req = http.build_request("GET", ep.url + path, headers=headers, timeout=httpx.Timeout(timeout))
        try:
            async with asyncio.timeout(timeout):
                r = await http.send(req, stream=True)
                try:
                    if r.status_code != 200:
                        return None
                    body = await read_capped(r, VERSION_MAX_BYTES, ep.name)  # a version is a few bytes
                finally:
                    await r.aclose()
        except (httpx.HTTPError, TimeoutError, LLMError):
            return None
        try:
            return json.loads(body)
        except (ValueError, RecursionError):
            return None

    if ep.api == "ollama":
        d = await get_json("/api/version")
        if isinstance(d, dict) and d.get("version"):
            return "ollama", str(d["version"]), "GET /api/version"
        return "ollama", None, None
    d = await get_json("/version")
    if isinstance(d, dict) and d.get("version"):
        return "vllm", str(d["version"]), "GET /version"
    d = await get_json("/props")
    if isinstance(d, dict) and d.get("build_info"):
        return "llamacpp", str(d["build_info"]), "GET /props"
    return None, None, None


async def probe_endpoint_exposure(
    ep: EndpointConfig,
    http: httpx.AsyncClient,
    *,
    timeout: float = 5.0,
    dangerous: bool = True,
    sockets: list[ListeningSocket] | None = None,
    local: set[str] | None = None,
) -> EndpointExposure:
    """Everything we can observe about one endpoint without changing anything."""
    host, port = url_host_port(ep.url)
    is_local = endpoint_is_local(ep, local)
    exp = EndpointExposure(endpoint=ep.name, api=ep.api, url=ep.url, port=port, local=is_local)
    if is_local:
        all_socks = sockets if sockets is not None else list_listening_sockets({port})
        exp.sockets = [s for s in all_socks if s.port == port]
        if not exp.sockets:
            exp.notes.append(
                f"{ep.name}: no listening socket for port {port} visible here (other network namespace, "
                "container or another host); bind address not checked"
            )
    else:
        exp.notes.append(f"{ep.name}: URL host {host} is not a local address: reached over the network")

    if ep.api == "ollama":
        exp.inference = await send_probe(http, ep.url, "POST", "/api/generate", timeout, body={})
        exp.listing = await send_probe(http, ep.url, "GET", "/api/tags", timeout)
        if dangerous:
            exp.routes = list(await asyncio.gather(*[
                send_probe(http, ep.url, m, p, timeout, body={}, kind="management") for m, p in OLLAMA_DANGEROUS
            ]))  # fmt: skip
    else:
        exp.inference = await send_probe(http, ep.url, "POST", "/v1/chat/completions", timeout, body={})
        exp.listing = await send_probe(http, ep.url, "GET", "/v1/models", timeout)
        if dangerous:
            exp.routes = list(await asyncio.gather(*[
                send_probe(http, ep.url, m, p, timeout, body={} if m == "POST" else None, kind=k)
                for m, p, k in OPENAI_UNCOVERED
            ]))  # fmt: skip
    exp.product, exp.version, exp.version_source = await _read_version(http, ep, timeout)
    return exp


# ---------------------------------------------------------------- assessment


def _sev(exposed: bool | None, when_exposed: str, when_local: str | None) -> str | None:
    return when_exposed if exposed else when_local


def assess_exposure(exp: EndpointExposure, ep: EndpointConfig) -> list[Finding]:
    """Turn observations into findings; severities scale with how far the server is reachable."""
    out: list[Finding] = []
    exposed = exp.exposed
    reach = (
        "bound beyond loopback" if exposed and exp.local
        else "reached over the network" if exposed
        else "loopback only" if exposed is False
        else "bind address not visible"
    )  # fmt: skip
    sock_ev = [s.describe() for s in exp.sockets]
    inf = exp.inference
    open_inference = inf is not None and inf.verdict == "reachable"
    auth_on = inf is not None and inf.verdict == "auth-required"

    wide = [s for s in exp.sockets if not s.loopback]
    if wide:
        out.append(Finding(
            id=f"exposure.bind:{ep.name}", category="exposure",
            severity="high" if open_inference else "low",
            title=f"{ep.name}: port {exp.port} is bound beyond loopback ({', '.join(s.ip for s in wide)})",
            target=ep.name, evidence=sock_ev,
            fix=(
                "Bind the server to 127.0.0.1 (Ollama: OLLAMA_HOST=127.0.0.1:11434; vLLM/llama.cpp: "
                "--host 127.0.0.1) and put an authenticating reverse proxy in front for remote clients; "
                "otherwise restrict the port in the firewall to the clients that need it."
            ),
        ))  # fmt: skip

    if open_inference:
        sev = _sev(exposed, "high", "low")
        out.append(Finding(
            id=f"exposure.no-auth:{ep.name}", category="exposure", severity=sev,
            title=f"{ep.name}: the inference API answers without credentials ({reach})",
            target=ep.name, evidence=[inf.describe()] + sock_ev,
            fix=(
                "Require credentials: vLLM --api-key / llama.cpp --api-key, or for Ollama (which has no "
                "authentication) an authenticating reverse proxy; keep the server itself on loopback."
            ),
        ))  # fmt: skip
    if open_inference and ep.api_key_env:
        out.append(Finding(
            id=f"exposure.key-not-enforced:{ep.name}", category="exposure",
            severity=_sev(exposed, "high", "medium"),
            title=f"{ep.name}: an API key is configured ({ep.api_key_env}) but the server does not require it",
            target=ep.name, evidence=[inf.describe()],
            fix="Start the server with the key (vLLM/llama.cpp --api-key, or the proxy's auth) and restart it.",
        ))  # fmt: skip

    reachable = [r for r in exp.routes if r.verdict == "reachable"]
    if ep.api == "ollama" and reachable:
        sev = _sev(exposed, "critical", "low")
        out.append(Finding(
            id=f"exposure.dangerous-routes:{ep.name}", category="exposure", severity=sev,
            title=f"{ep.name}: Ollama model-management routes answer without credentials ({reach})",
            target=ep.name,
            evidence=[r.describe() for r in reachable] + sock_ev,
            fix=(
                "Anyone who reaches the port can pull, create, push (exfiltrate) and delete models. Keep "
                "Ollama on 127.0.0.1 and expose only /api/chat, /api/generate (and /v1) through a reverse "
                "proxy that authenticates and blocks /api/create, /api/push, /api/pull, /api/delete, /api/copy "
                "and /api/blobs."
            ),
        ))  # fmt: skip
    if ep.api == "openai" and auth_on and reachable:
        ranks = {"inference": ("high", "low"), "devmode": ("high", "low"), "prompts": ("medium", None),
                 "compute": ("medium", None), "info": ("low", None)}  # fmt: skip
        order = ["low", "medium", "high"]
        sevs = [s for r in reachable if (s := _sev(exposed, *ranks.get(r.kind, ("low", None))))]
        if sevs:
            sev = max(sevs, key=order.index)
            out.append(Finding(
                id=f"exposure.uncovered-routes:{ep.name}", category="exposure", severity=sev,
                title=f"{ep.name}: /v1 requires a key, but {len(reachable)} route(s) outside /v1 answer without one",
                target=ep.name, evidence=[inf.describe()] + [r.describe() for r in reachable],
                fix=(
                    "vLLM's --api-key only guards /v1/*; llama.cpp leaves /health, /models, /props public. Put "
                    "an authenticating proxy in front that forwards only /v1/* (and /health for probes), and "
                    "unset VLLM_SERVER_DEV_MODE."
                ),
            ))  # fmt: skip
    return out


def assess_unconfigured_ports(
    ports: set[int], sockets: list[ListeningSocket], known: set[int]
) -> list[Finding]:
    """Extra LLM ports (no endpoint configured) listening beyond loopback."""
    out = []
    for port in sorted(ports - known):
        wide = [s for s in sockets if s.port == port and not s.loopback]
        if wide:
            out.append(Finding(
                id=f"exposure.bind:port-{port}", category="exposure", severity="medium",
                title=f"port {port} (listed in security.extra_ports) is bound beyond loopback",
                target=f"port {port}", evidence=[s.describe() for s in wide],
                fix="Bind it to 127.0.0.1 or restrict it in the firewall; add it as an endpoint so its "
                "authentication is probed too.",
            ))  # fmt: skip
    return out
