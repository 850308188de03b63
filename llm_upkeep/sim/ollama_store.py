"""An Ollama simulator backed by a real model store on disk, and a "registry" directory it pulls from.

Why: the plain simulator keeps models in memory, but verification, pins and rollbacks read the
store on disk. Here /api/pull copies real blobs (real sha256 names) and a manifest from a
registry directory (same layout as a store) into the store, /api/copy copies a manifest,
/api/delete removes one, so API and disk agree as they do in Ollama. Used by the tests of the
model lifecycle and by `llm-upkeep demo`, which runs the evaluate-model chain on it.

Fault knobs: a model can be marked broken (by manifest digest): generating with it fails with
Ollama's 500; `copy_failures` makes the next N /api/copy calls fail (a transient fault).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from llm_upkeep.models.store import (
    DEFAULT_REGISTRY,
    MANIFEST_MEDIA_TYPE,
    Manifest,
    list_models,
    manifest_path,
    read_manifest,
    write_manifest,
    write_model,
)
from llm_upkeep.sim.llm_server import SimBehavior, SimServer

TEMPLATE_MEDIA_TYPE = "application/vnd.ollama.image.template"
_PART = r"[A-Za-z0-9][A-Za-z0-9._-]*"
_MANIFEST_PATH = re.compile(rf"^/v2/({_PART})/({_PART})/manifests/({_PART})$")


def fake_weights(seed: int, n: int = 200_000) -> bytes:
    """n bytes of deterministic weights per seed (a GGUF magic, then a hash chain)."""
    out = bytearray()
    block = hashlib.sha256(f"weights{seed}".encode()).digest()
    while len(out) < n:
        block = hashlib.sha256(block).digest()
        out += block
    return b"GGUF" + bytes(out[: n - 4])


def publish_model(
    registry_dir: str | os.PathLike, name: str, weights: bytes, template: str = "{{ .Prompt }}"
) -> Manifest:
    """Put a model in a registry directory (weights, a template layer, a config and the manifest)."""
    return write_model(registry_dir, name, weights, extra_layers=[(TEMPLATE_MEDIA_TYPE, template.encode())])


def copy_blobs(manifest: bytes, source: Path, store: Path) -> None:
    """Copy every blob the manifest names from source into store (what a pull downloads)."""
    obj = json.loads(manifest)
    for e in [obj["config"], *obj["layers"]]:
        hx = e["digest"].split(":", 1)[1]
        dst = store / "blobs" / f"sha256-{hx}"
        if not dst.exists():
            dst.parent.mkdir(parents=True, exist_ok=True)
            tmp = dst.with_name(dst.name + ".partial")
            tmp.write_bytes((source / "blobs" / f"sha256-{hx}").read_bytes())
            os.replace(tmp, dst)


def install_model(registry_dir: str | os.PathLike, store: str | os.PathLike, name: str) -> Manifest:
    """What a finished `ollama pull name` leaves in the store: its blobs, then its manifest."""
    src = read_manifest(registry_dir, name)
    data = src.path.read_bytes()
    copy_blobs(data, Path(registry_dir), Path(store))
    return write_manifest(store, name, data)


def store_digests(models_dir: str | os.PathLike) -> dict[str, str]:
    """Every tag with a readable manifest -> its manifest's hex digest."""
    out: dict[str, str] = {}
    for n in list_models(models_dir):
        with contextlib.suppress(OSError):
            out[n.short] = hashlib.sha256(manifest_path(models_dir, n).read_bytes()).hexdigest()
    return out


def store_behavior(store: Path, registry_dir: Path, model: str, **kw: Any) -> SimBehavior:
    """A SimBehavior serving what the store holds (Ollama reads its store at start), able to pull
    what the registry directory holds; `model` must be in the store."""
    served = read_manifest(store, model)
    others = {n: d for n, d in store_digests(store).items() if n != served.name.short}
    return SimBehavior(model=model, digest=served.digest.split(":", 1)[1], models=list(others),
                       digests=dict(others), registry=store_digests(registry_dir), **kw)  # fmt: skip


class StoreSimServer(SimServer):
    """SimServer whose pulls, copies and deletes change a real Ollama store on disk."""

    def __init__(self, behavior: SimBehavior, store: Path, registry_dir: Path, **kw):
        super().__init__(behavior, **kw)
        self.store = Path(store)
        self.registry_dir = Path(registry_dir)
        self.broken: set[str] = set()  # manifest hex digests whose generation fails
        self.copy_failures = 0  # the next N /api/copy calls fail with a 500 (a transient fault)

    def _manifest_bytes(self, digest_hex: str) -> tuple[bytes, Path] | None:
        for root in (self.store, self.registry_dir):
            for n in list_models(root):
                p = manifest_path(root, n)
                data = p.read_bytes()
                if hashlib.sha256(data).hexdigest() == digest_hex:
                    return data, root
        return None

    def _install(self, name: str, digest: str) -> None:
        found = self._manifest_bytes(digest)
        if found is not None:
            data, root = found
            if root == self.registry_dir:  # a pull: download every blob it names
                copy_blobs(data, root, self.store)
            write_manifest(self.store, name, data)
        super()._install(name, digest)

    async def _ollama_copy(self, req, writer) -> bool:
        if self.copy_failures > 0:
            self.copy_failures -= 1
            return await self._json(
                writer, 500, {"error": "simulated: write manifest: no space left on device"}
            )
        return await super()._ollama_copy(req, writer)

    async def _ollama_delete(self, req, writer) -> bool:
        body = req.json if isinstance(req.json, dict) else {}
        name = body.get("model") or body.get("name")
        keep = await super()._ollama_delete(req, writer)
        if name and not self.behavior.has_model(name):
            with contextlib.suppress(FileNotFoundError, ValueError):
                manifest_path(self.store, name).unlink()
        return keep

    async def _fault_response(self, dialect: str, writer):
        if self.behavior.digest in self.broken:
            body = {"error": "llama runner process has terminated: error loading model: invalid tensor data"}
            return await self._json(writer, 500, body)
        return await super()._fault_response(dialect, writer)


class RegistryServer:
    """The registry directory over HTTP, as registry.ollama.ai serves manifests
    (GET /v2/<namespace>/<model>/manifests/<tag>), so an update check can ask it instead of the
    internet."""

    def __init__(self, registry_dir: str | os.PathLike, host: str = "127.0.0.1", port: int = 0):
        self.registry_dir = Path(registry_dir)
        self.host, self.port = host, port
        self.requests: list[str] = []
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def manifest(self, path: str) -> bytes | None:
        m = _MANIFEST_PATH.match(path)
        if not m:
            return None
        ns, model, tag = m.groups()
        p = self.registry_dir / "manifests" / DEFAULT_REGISTRY / ns / model / tag
        try:
            return p.read_bytes()
        except OSError:
            return None

    def start(self) -> RegistryServer:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - the http.server API
                server.requests.append(self.path)
                body = server.manifest(self.path.split("?", 1)[0])
                if body is None:
                    self._send(404, b'{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}',
                               "application/json")  # fmt: skip
                else:
                    digest = "sha256:" + hashlib.sha256(body).hexdigest()
                    self._send(200, body, MANIFEST_MEDIA_TYPE, {"Docker-Content-Digest": digest})

            def _send(
                self, status: int, body: bytes, ctype: str, headers: dict[str, str] | None = None
            ) -> None:
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet, like the others
                return

        self._httpd = ThreadingHTTPServer((self.host, self.port), Handler)
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="sim-registry", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None


__all__ = [
    "RegistryServer",
    "StoreSimServer",
    "copy_blobs",
    "fake_weights",
    "install_model",
    "publish_model",
    "store_behavior",
    "store_digests",
]
