"""A local Slack receiver: records what slack-sdk posts, for tests and the demo.

Speaks the two shapes we use: incoming webhooks (``POST /services/T/B/X`` answering ``ok``)
and the Web API (``POST /api/chat.postMessage`` answering ``{"ok": true, "ts": ...}``).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs


class SlackSink:
    def __init__(
        self, host: str = "127.0.0.1", port: int = 0, *, on_message: Callable[[dict], None] | None = None
    ):
        self.messages: list[dict[str, Any]] = []
        self.fail_with: int | None = None  # HTTP status to answer with, to test failed delivery
        self.api_error: str | None = None  # Slack API error code (ok=false), e.g. "channel_not_found"
        self.on_message = on_message
        self._lock = threading.Lock()
        self._ts = 0
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output quiet
                return

            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(n).decode("utf-8", "replace")
                ctype = self.headers.get("Content-Type", "")
                if "json" in ctype:
                    body = json.loads(raw or "{}")
                else:
                    body = {k: v[0] for k, v in parse_qs(raw).items()}
                    for k in ("blocks", "attachments"):
                        if isinstance(body.get(k), str):
                            body[k] = json.loads(body[k])
                sink._handle(self, body)

        self._server = ThreadingHTTPServer((host, port), Handler)
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def webhook_url(self) -> str:
        return f"{self.base_url}/services/T000LOCAL/B000LOCAL/localsecretwebhookkey"

    @property
    def api_url(self) -> str:
        return f"{self.base_url}/api/"

    def start(self) -> SlackSink:
        self._thread = threading.Thread(target=self._server.serve_forever, name="slack-sink", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> SlackSink:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def _handle(self, h: BaseHTTPRequestHandler, body: dict) -> None:
        path = h.path.split("?")[0]
        if self.fail_with:
            self._reply(h, self.fail_with, "text/plain", b"internal_error")
            return
        if path.startswith("/services/"):
            self._record("webhook", path, body, h)
            self._reply(h, 200, "text/plain", b"ok")
            return
        if path.startswith("/api/"):
            method = path[len("/api/") :]
            auth = h.headers.get("Authorization", "")
            if not auth.startswith("Bearer "):
                self._reply_json(h, {"ok": False, "error": "not_authed"})
                return
            if self.api_error:
                self._reply_json(h, {"ok": False, "error": self.api_error})
                return
            if method == "chat.postMessage":
                ts = self._record("chat.postMessage", path, body, h)
                self._reply_json(h, {"ok": True, "channel": body.get("channel"), "ts": ts, "message": body})
                return
            if method == "auth.test":
                self._reply_json(h, {"ok": True, "team": "local", "user": "llm-upkeep"})
                return
            self._reply_json(h, {"ok": False, "error": "unknown_method"})
            return
        self._reply(h, 404, "text/plain", b"no_such_route")

    def _record(self, kind: str, path: str, body: dict, h: BaseHTTPRequestHandler) -> str:
        with self._lock:
            self._ts += 1
            ts = f"{int(time.time())}.{self._ts:06d}"
            msg = {"kind": kind, "path": path, "ts": ts, "received": time.time(), **body}
            msg["authorization"] = h.headers.get("Authorization")
            self.messages.append(msg)
        if self.on_message:
            self.on_message(msg)
        return ts

    @staticmethod
    def _reply(h: BaseHTTPRequestHandler, code: int, ctype: str, data: bytes) -> None:
        h.send_response(code)
        h.send_header("Content-Type", ctype)
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        h.wfile.write(data)

    def _reply_json(self, h: BaseHTTPRequestHandler, obj: dict) -> None:
        self._reply(h, 200, "application/json", json.dumps(obj).encode())


def format_message(msg: dict) -> str:
    """One readable line per received message, for the demo's console."""
    text = msg.get("text") or ""
    thread = f" (thread {msg['thread_ts']})" if msg.get("thread_ts") else ""
    chan = f" {msg['channel']}" if msg.get("channel") else ""
    return f"[slack{chan}{thread}] {text}"
