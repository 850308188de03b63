"""Local receivers for the notification tests: an SMTP server (aiosmtpd) and a webhook server that
record what arrives."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from tests.prom_fixtures import free_port


class SmtpSink:
    """aiosmtpd on loopback; messages holds (envelope_from, recipients, raw message text)."""

    def __init__(self) -> None:
        from aiosmtpd.controller import Controller

        sink = self
        self.messages: list[tuple[str, list[str], str]] = []

        class Handler:
            async def handle_DATA(self, server, session, envelope):
                sink.messages.append((envelope.mail_from, list(envelope.rcpt_tos),
                                      envelope.content.decode("utf-8", "replace")))  # fmt: skip
                return "250 Message accepted for delivery"

        self.port = free_port()
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)

    def url(self, to: str = "oncall@example.com") -> str:
        return f"mailto://127.0.0.1:{self.port}?from=llm-upkeep@example.com&to={to}&mode=insecure"

    def body_texts(self) -> list[str]:
        import email

        out = []
        for _, _, raw in self.messages:
            msg = email.message_from_string(raw)
            parts = [p for p in msg.walk() if p.get_content_maintype() == "text"]
            out.append(msg["Subject"] + "\n" + "\n".join(p.get_payload(decode=True).decode() for p in parts))
        return out

    def __enter__(self) -> SmtpSink:
        self.controller.start()
        return self

    def __exit__(self, *exc) -> None:
        self.controller.stop()


class WebhookSink:
    """A JSON webhook receiver: posts holds the decoded bodies."""

    def __init__(self) -> None:
        self.posts: list[dict] = []
        sink = self

        class H(BaseHTTPRequestHandler):
            def log_message(self, *a):
                return

            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(n)
                try:
                    sink.posts.append(json.loads(raw))
                except ValueError:
                    sink.posts.append({"raw": raw.decode("utf-8", "replace")})
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.server.daemon_threads = True

    @property
    def url(self) -> str:
        return f"json://127.0.0.1:{self.server.server_address[1]}/hooks/llm"

    def __enter__(self) -> WebhookSink:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
