"""Weekly-review fixtures: generated weeks of real-format logs with planted incidents, and a local
registry server speaking Ollama's manifest API and a Hugging Face-style model-info API.

Formats follow the servers: Ollama (``time=... level=... msg=...`` and ``[GIN]`` request lines),
vLLM (``INFO 11-21 03:00:01 [file.py:N] ...`` and uvicorn access lines), syslog kernel lines with
``NVRM: Xid``, and JSONL request records.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import math
import os
import random
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote

import pytest

WEEK_END = datetime(2026, 11, 30, tzinfo=UTC)  # a Monday 00:00 UTC: the review week is Nov 23-29

# ---------------------------------------------------------------- log lines


def gin(ts: datetime, status: int, rnd: random.Random, path: str = "/api/chat") -> str:
    lat = f"{rnd.uniform(0.2, 9):.6f}s"
    ip = f"10.0.{rnd.randint(0, 3)}.{rnd.randint(2, 250)}"
    return f'[GIN] {ts:%Y/%m/%d - %H:%M:%S} | {status} | {lat:>14} | {ip:>15} | POST     "{path}"\n'


def ollama_line(ts: datetime, level: str, msg: str, src: str = "server.go:740", **kv: str) -> str:
    extra = "".join(f' {k}="{v}"' for k, v in kv.items())
    return f'time={ts:%Y-%m-%dT%H:%M:%S}.{ts.microsecond // 1000:03d}Z level={level} source={src} msg="{msg}"{extra}\n'


def vllm_line(ts: datetime, level: str, where: str, msg: str) -> str:
    return f"{level} {ts:%m-%d %H:%M:%S} [{where}] {msg}\n"


def vllm_access(rnd: random.Random, status: int = 200) -> str:
    text = {200: "OK", 400: "Bad Request", 500: "Internal Server Error", 503: "Service Unavailable"}[status]
    return (
        f"INFO:     10.0.1.{rnd.randint(2, 250)}:{rnd.randint(30000, 65000)} - "
        f'"POST /v1/chat/completions HTTP/1.1" {status} {text}\n'
    )


def kernel_line(ts: datetime, uptime: float, msg: str, host: str = "gpu-host") -> str:
    return f"{ts:%b} {ts.day:>2} {ts:%H:%M:%S} {host} kernel: [{uptime:12.6f}] {msg}\n"


def jsonl_line(ts: datetime, rnd: random.Random, status: int = 200, error: str | None = None) -> str:
    rec = {
        "ts": ts.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
        "request_id": str(uuid.UUID(int=rnd.getrandbits(128))),
        "client": f"10.0.2.{rnd.randint(2, 250)}",
        "model": "llama3:8b",
        "status": status,
        "latency_ms": rnd.randint(150, 9000),
        "prompt_tokens": rnd.randint(20, 2000),
        "completion_tokens": rnd.randint(1, 800),
    }
    if error:
        rec["error"] = error
    return json.dumps(rec) + "\n"


# ---------------------------------------------------------------- traffic


def hourly_rate(hour_of_day: int, base: float) -> float:
    """Daytime peak around 14:00 UTC, night trough around 02:00."""
    return base * (0.35 + 0.65 * (1 + math.cos(2 * math.pi * (hour_of_day - 14) / 24)) / 2)


def _times_in_hour(h0: datetime, n: int, rnd: random.Random) -> list[datetime]:
    return sorted(h0 + timedelta(seconds=rnd.uniform(0, 3599.999)) for _ in range(n))


def _count(rate: float, rnd: random.Random) -> int:
    return max(0, round(rnd.gauss(rate, math.sqrt(rate))))


@dataclass
class Planted:
    """What a generated week contains on purpose, for the tests to look for."""

    root: Path
    sources: list[dict] = field(default_factory=list)
    oom_burst_at: datetime | None = None
    oom_burst_lines: list[str] = field(default_factory=list)
    timeout_message: str | None = None
    timeout_count: int = 0
    timeout_first_line: str | None = None
    spike_hour: datetime | None = None
    spike_source: str | None = None
    xid_line: str | None = None
    xid_at: datetime | None = None


def _write(path: Path, lines: list[tuple[datetime, str]], compress: bool = False) -> None:
    lines.sort(key=lambda x: x[0])
    data = "".join(t for _, t in lines).encode()
    path.parent.mkdir(parents=True, exist_ok=True)
    if compress:
        with gzip.open(path, "wb", compresslevel=3) as f:
            f.write(data)
    else:
        path.write_bytes(data)
    last = lines[-1][0].timestamp() if lines else WEEK_END.timestamp()
    os.utime(path, (last, last))


def write_logs(
    root: Path,
    *,
    incidents: bool = True,
    week_end: datetime = WEEK_END,
    weeks_before: int = 3,
    base_rate: float = 60.0,
    seed: int = 7,
) -> Planted:
    """A review week plus `weeks_before` baseline weeks, for four sources; incidents optional.

    Both weeks carry what a healthy server logs too: startup lines that mention timeouts and KV
    cache memory at INFO level, 4xx answers, vLLM stats lines, two isolated timeouts.
    """
    rnd = random.Random(seed)
    root = Path(root)
    start = week_end - timedelta(weeks=weeks_before + 1)
    week_start = week_end - timedelta(days=7)
    p = Planted(root=root)
    ollama_old: list[tuple[datetime, str]] = []
    ollama_new: list[tuple[datetime, str]] = []
    vllm: list[tuple[datetime, str]] = []
    kern_old: list[tuple[datetime, str]] = []
    kern_new: list[tuple[datetime, str]] = []
    audit: list[tuple[datetime, str]] = []

    def ollama(ts, text):
        (ollama_new if ts >= week_start else ollama_old).append((ts, text))

    def kern(ts, text):
        (kern_new if ts >= week_start else kern_old).append((ts, text))

    # startups: healthy INFO lines that mention "timeout" and "KV cache memory"
    for boot in (start + timedelta(minutes=1), week_start + timedelta(days=2, hours=4, minutes=30)):
        ollama(boot, ollama_line(boot, "INFO", "server config", "routes.go:1231",
                                 env="map[CUDA_VISIBLE_DEVICES: OLLAMA_KEEP_ALIVE:5m0s OLLAMA_LOAD_TIMEOUT:5m0s]"))  # fmt: skip
        ollama(
            boot, ollama_line(boot, "INFO", "Listening on 127.0.0.1:11434 (version 0.5.7)", "routes.go:1310")
        )
        ollama(boot, ollama_line(boot, "INFO", "inference compute", "types.go:131", library="cuda",
                                 name="NVIDIA H100 80GB HBM3", total="79.1 GiB", available="78.6 GiB"))  # fmt: skip
        vllm.append((boot, vllm_line(boot, "INFO", "api_server.py:1090", "vLLM API server version 0.8.5")))
        vllm.append(
            (boot, vllm_line(boot, "INFO", "gpu_worker.py:227", "Available KV cache memory: 58.21 GiB"))
        )
        vllm.append((boot, vllm_line(boot, "INFO", "launcher.py:28", "Available routes are: /v1/chat/completions, "
                                     "timeout_keep_alive=5")))  # fmt: skip

    hours = int((week_end - start).total_seconds() // 3600)
    for i in range(hours):
        h0 = start + timedelta(hours=i)
        rate = hourly_rate(h0.hour, base_rate)
        for ts in _times_in_hour(h0, _count(rate, rnd), rnd):
            ollama(ts, gin(ts, 400 if rnd.random() < 0.01 else 200, rnd))
        vt = _times_in_hour(h0, _count(rate * 0.8, rnd), rnd)
        stats = [h0 + timedelta(minutes=m, seconds=3) for m in range(0, 60, 10)]
        for ts in stats:
            vllm.append((ts, vllm_line(ts, "INFO", "loggers.py:116", f"Engine 000: Avg prompt throughput: "
                                       f"{rnd.uniform(10, 900):.1f} tokens/s, Avg generation throughput: "
                                       f"{rnd.uniform(10, 300):.1f} tokens/s, Running: {rnd.randint(0, 8)} reqs, "
                                       f"Waiting: 0 reqs, GPU KV cache usage: {rnd.uniform(1, 40):.1f}%, "
                                       f"Prefix cache hit rate: {rnd.uniform(0, 60):.1f}%")))  # fmt: skip
        for ts in vt:
            vllm.append((ts, vllm_access(rnd)))
        for ts in _times_in_hour(h0, _count(rate * 0.5, rnd), rnd):
            audit.append((ts, jsonl_line(ts, rnd)))
        if h0.hour == 4 and h0.minute == 0:
            ts = h0 + timedelta(minutes=17)
            kern(
                ts,
                kernel_line(
                    ts, i * 3600.0 + 1000, "nvidia-modeset: Loading NVIDIA Kernel Mode Setting Driver"
                ),
            )

    # two isolated timeouts in every week: counted, never a finding
    for d in (1, 4):
        ts = week_start + timedelta(days=d, hours=11, minutes=7)
        ollama(ts, ollama_line(ts, "WARN", "client connection closed before response", "routes.go:1480",
                               error="read tcp 127.0.0.1:11434->127.0.0.1:52144: i/o timeout"))  # fmt: skip

    if incidents:
        # repeated timeout: the same failure 24x over two days (different ids and durations)
        p.timeout_message = "timed out waiting for llama runner to respond"
        for k in range(24):
            ts = week_start + timedelta(
                hours=9 + 2 * k, minutes=rnd.randint(0, 59), seconds=rnd.randint(0, 59)
            )
            line = ollama_line(ts, "ERROR", "llama runner request failed", "server.go:612",
                               error=f"{p.timeout_message} after {rnd.randint(30, 90)}s",
                               request_id=str(uuid.UUID(int=rnd.getrandbits(128))))  # fmt: skip
            ollama(ts, line)
            if p.timeout_first_line is None:
                p.timeout_first_line = line.strip()
        p.timeout_count = 24
        # OOM burst in vLLM: six errors within four minutes, Thursday 14:02
        p.oom_burst_at = week_start + timedelta(days=3, hours=14, minutes=2)
        for k in range(6):
            ts = p.oom_burst_at + timedelta(seconds=40 * k + 3)
            if k % 2:
                cid = uuid.UUID(int=rnd.getrandbits(128)).hex
                msg = (f"Sequence group chatcmpl-{cid} is preempted by PreemptionMode.RECOMPUTE mode because there "
                       "is not enough KV cache space.")  # fmt: skip
                line = vllm_line(ts, "WARNING", "scheduler.py:1560", msg)
            else:
                line = vllm_line(ts, "ERROR", "engine.py:160", "torch.OutOfMemoryError: CUDA out of memory. Tried to "
                                 f"allocate {rnd.randint(1, 8)}.00 GiB. GPU 0 has a total capacity of 79.10 GiB")  # fmt: skip
            vllm.append((ts, line))
            vllm.append((ts + timedelta(milliseconds=5), vllm_access(rnd, 500)))
            p.oom_burst_lines.append(line.strip())
        # traffic spike: Wednesday 03:00-04:00 UTC, eight times the usual requests
        p.spike_hour = week_start + timedelta(days=2, hours=3)
        p.spike_source = "ollama"
        for ts in _times_in_hour(p.spike_hour, round(hourly_rate(3, base_rate) * 8), rnd):
            ollama(ts, gin(ts, 200, rnd, "/api/generate"))
        # XID 79 on Friday 02:14
        p.xid_at = week_start + timedelta(days=4, hours=2, minutes=14, seconds=9)
        p.xid_line = kernel_line(p.xid_at, 812345.123456,
                                 "NVRM: Xid (PCI:0000:3b:00): 79, pid='<unknown>', name=<unknown>, "
                                 "GPU has fallen off the bus.").strip()  # fmt: skip
        kern(p.xid_at, p.xid_line + "\n")
        kern(p.xid_at, kernel_line(p.xid_at, 812345.123470, "NVRM: GPU at PCI:0000:3b:00: "
                                   "GPU-3b6a3a5c-1f0e-4c1e-9a8b-0d7f6e5d4c3b"))  # fmt: skip

    _write(root / "ollama" / "server-1.log.gz", ollama_old, compress=True)
    _write(root / "ollama" / "server.log", ollama_new)
    _write(root / "vllm" / "vllm.log", vllm)
    _write(root / "kernel" / "kern.log.1.gz", kern_old, compress=True)
    _write(root / "kernel" / "kern.log", kern_new)
    _write(root / "audit" / "requests.jsonl", audit)
    p.sources = [
        {"name": "ollama", "kind": "ollama", "paths": [str(root / "ollama" / "server*.log*")]},
        {"name": "vllm", "kind": "vllm", "paths": [str(root / "vllm" / "vllm.log")]},
        {"name": "kernel", "kind": "kernel", "paths": [str(root / "kernel" / "kern.log*")]},
        {"name": "audit", "kind": "jsonl", "paths": [str(root / "audit" / "*.jsonl")]},
    ]
    return p


# ---------------------------------------------------------------- GPU history


def planted_gpu_history(state_dir: Path, *, hot_gpu: int | None = 1, hot_hours: int = 3, hot_c: float = 87.0,
                        week_end: datetime = WEEK_END, slowdown: float = 92.0) -> datetime | None:  # fmt: skip
    """Hourly samples for two GPUs over the review week; `hot_gpu` runs at hot_c for hot_hours."""
    from llm_upkeep import history
    from llm_upkeep.telemetry import GpuReading, GpuSnapshot

    rnd = random.Random(3)
    start = week_end - timedelta(days=7)
    hot_from = start + timedelta(days=2, hours=13)
    for i in range(7 * 24):
        ts = start + timedelta(hours=i, minutes=5)
        gpus = []
        for idx in (0, 1):
            temp = 55 + 12 * math.sin(2 * math.pi * (ts.hour - 8) / 24) + rnd.uniform(-2, 2)
            reasons: list[str] = []
            if idx == hot_gpu and hot_from <= ts < hot_from + timedelta(hours=hot_hours):
                temp = hot_c
                reasons = ["sw_thermal_slowdown"]
            gpus.append(
                GpuReading(
                    index=idx,
                    name="NVIDIA H100 80GB HBM3",
                    uuid=f"GPU-{idx:08d}",
                    temperature_c=round(temp, 1),
                    slowdown_c=slowdown,
                    shutdown_c=slowdown + 5,
                    power_w=300.0,
                    power_limit_w=700.0,
                    energy_mj=1_000_000 * i,
                    throttle_reasons=reasons,
                )  # fmt: skip
            )
        snap = GpuSnapshot(
            status="ok", taken_at=ts, driver_version="550.54.15", cuda_version="12.4", gpus=gpus
        )
        history.append_gpu_samples(state_dir, snap)
    return hot_from if hot_gpu is not None else None


# ---------------------------------------------------------------- registry server


def ollama_manifest(model_bytes: int, seed: str) -> bytes:
    """A manifest shaped like the registry's (config + model/template/params layers)."""

    def d(s: str) -> str:
        return "sha256:" + hashlib.sha256(s.encode()).hexdigest()

    doc = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {
            "mediaType": "application/vnd.docker.container.image.v1+json",
            "digest": d(seed + "c"),
            "size": 485,
        },
        "layers": [
            {"mediaType": "application/vnd.ollama.image.model", "digest": d(seed + "m"), "size": model_bytes},
            {"mediaType": "application/vnd.ollama.image.template", "digest": d(seed + "t"), "size": 1429},
            {"mediaType": "application/vnd.ollama.image.params", "digest": d(seed + "p"), "size": 96},
        ],
    }
    return json.dumps(doc, separators=(",", ":")).encode()


class RegistryServer:
    """127.0.0.1 registry: ``GET /v2/<ns>/<model>/manifests/<tag>`` (Docker-Content-Digest header) and
    ``GET /api/models/<repo>/revision/<rev>`` ({"sha": ...}); tags and revisions can be moved."""

    def __init__(self) -> None:
        self.manifests: dict[tuple[str, str, str], bytes] = {}
        self.revisions: dict[tuple[str, str], dict] = {}
        self.repos: list[str] = []  # more repos the model search lists (Hugging Face siblings)
        self.requests: list[tuple[str, str, dict]] = []
        self.send_digest_header = True
        self.delay_s = 0.0
        self.fail_status: int | None = None
        srv = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                return

            def _send(self, code: int, body: bytes, headers: dict[str, str], head: bool = False):
                self.send_response(code)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if not head:
                    self.wfile.write(body)

            def _handle(self, head: bool):
                import time

                srv.requests.append(("HEAD" if head else "GET", self.path, dict(self.headers)))
                if srv.delay_s:
                    time.sleep(srv.delay_s)
                if srv.fail_status:
                    return self._send(srv.fail_status, b'{"errors":[{"code":"UNAVAILABLE"}]}', {}, head)
                path = self.path.split("?")[0]
                parts = path.strip("/").split("/")
                if len(parts) == 5 and parts[0] == "v2" and parts[3:] == ["tags", "list"]:  # distribution API
                    tags = sorted(t for (ns, m, t) in srv.manifests if (ns, m) == (parts[1], parts[2]))
                    body = json.dumps({"name": f"{parts[1]}/{parts[2]}", "tags": tags}).encode()
                    return self._send(200 if tags else 404, body, {"Content-Type": "application/json"}, head)
                if path == "/api/models":  # Hugging Face model search: ?author=ORG&search=TEXT
                    q = parse_qs(self.path.split("?", 1)[1] if "?" in self.path else "")
                    org, text = q.get("author", [""])[0], q.get("search", [""])[0].lower()
                    repos = sorted({r for (r, _rev) in srv.revisions} | set(srv.repos))
                    rows = [{"id": r, "modelId": r} for r in repos
                            if r.startswith(org + "/") and text in r.split("/", 1)[1].lower()]  # fmt: skip
                    return self._send(200, json.dumps(rows).encode(), {"Content-Type": "application/json"}, head)
                if len(parts) == 5 and parts[0] == "v2" and parts[3] == "manifests":
                    body = srv.manifests.get((parts[1], parts[2], parts[4]))
                    if body is None:
                        err = b'{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}'
                        return self._send(404, err, {"Content-Type": "application/json"}, head)
                    headers = {"Content-Type": "application/vnd.docker.distribution.manifest.v2+json"}
                    if srv.send_digest_header:
                        headers["Docker-Content-Digest"] = "sha256:" + hashlib.sha256(body).hexdigest()
                    return self._send(200, body, headers, head)
                if path.startswith("/api/models/") and "/revision/" in path:
                    repo, rev = path[len("/api/models/") :].split("/revision/", 1)
                    info = srv.revisions.get((repo, unquote(rev)))
                    if info is None:
                        return self._send(
                            404, b'{"error":"Revision Not Found"}', {"Content-Type": "application/json"}
                        )
                    body = json.dumps(
                        {"_id": "x", "id": repo, "modelId": repo, "private": False, **info}
                    ).encode()
                    return self._send(200, body, {"Content-Type": "application/json"}, head)
                return self._send(404, b"{}", {"Content-Type": "application/json"}, head)

            def do_GET(self):
                self._handle(False)

            def do_HEAD(self):
                self._handle(True)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="registry", daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def set_tag(self, namespace: str, model: str, tag: str, manifest: bytes) -> str:
        self.manifests[(namespace, model, tag)] = manifest
        return "sha256:" + hashlib.sha256(manifest).hexdigest()

    def set_revision(
        self, repo: str, rev: str, sha: str, last_modified: str = "2026-11-20T10:00:00.000Z"
    ) -> None:
        self.revisions[(repo, rev)] = {"sha": sha, "lastModified": last_modified}

    def start(self) -> RegistryServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def registry() -> Iterator[RegistryServer]:
    srv = RegistryServer().start()
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture(scope="session")
def planted_week(tmp_path_factory) -> Planted:
    return write_logs(tmp_path_factory.mktemp("week-incidents"), incidents=True)


@pytest.fixture(scope="session")
def clean_week(tmp_path_factory) -> Planted:
    return write_logs(tmp_path_factory.mktemp("week-clean"), incidents=False)
