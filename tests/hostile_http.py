"""A loopback HTTP server that answers badly on purpose, for the bad-input campaign.

Plain helper (not a fixture plugin): ``HostileServer(respond)`` where ``respond(path, send)``
writes a raw HTTP answer through ``send(bytes) -> bool`` (False once the client has gone).
The server counts what it managed to send and notes when the client hung up, so a test can
show that a client stopped reading at its cap instead of taking 100 MB.
"""

from __future__ import annotations

import re
import socket
import socketserver
import threading
import time
from collections.abc import Callable, Iterator

Respond = Callable[[str, Callable[[bytes], bool]], None]


class HostileServer:
    def __init__(self, respond: Respond):
        self.respond = respond
        self.sent = 0
        self.hung_up = threading.Event()
        self.requests: list[str] = []
        owner = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                sock: socket.socket = self.request
                sock.settimeout(30)
                data = b""
                while b"\r\n\r\n" not in data:
                    got = sock.recv(65536)
                    if not got:
                        return
                    data += got
                head, _, rest = data.partition(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                length = next(
                    (int(x.split(":", 1)[1]) for x in lines if x.lower().startswith("content-length:")), 0
                )
                while len(rest) < length:
                    got = sock.recv(65536)
                    if not got:
                        break
                    rest += got
                path = lines[0].split(" ")[1]
                owner.requests.append(path)

                def send(b: bytes) -> bool:
                    try:
                        sock.sendall(b)
                    except OSError:
                        owner.hung_up.set()
                        return False
                    owner.sent += len(b)
                    return True

                owner.respond(path, send)

        class Server(socketserver.ThreadingTCPServer):
            daemon_threads = True
            allow_reuse_address = True

        self._srv = Server(("127.0.0.1", 0), Handler)
        self.port = self._srv.server_address[1]
        self.url = self.endpoint_url = f"http://127.0.0.1:{self.port}"
        threading.Thread(target=self._srv.serve_forever, daemon=True).start()

    def close(self) -> None:
        self._srv.shutdown()
        self._srv.server_close()

    def __enter__(self) -> HostileServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def head(status: str = "200 OK", ctype: str = "application/json", length: int | None = None) -> bytes:
    """Response head; without a length the body ends when the server closes (Connection: close)."""
    h = f"HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nConnection: close\r\n"
    if length is not None:
        h += f"Content-Length: {length}\r\n"
    return (h + "\r\n").encode()


def flood(send: Callable[[bytes], bool], total: int, piece: bytes = b"x" * 65536) -> None:
    """Send ``total`` bytes of ``piece`` (never built in memory), stopping when the client leaves."""
    left = total
    while left > 0:
        chunk = piece[: min(len(piece), left)]
        if not send(chunk):
            return
        left -= len(chunk)


def trickle(send: Callable[[bytes], bool], lines: Iterator[bytes], every_s: float = 0.001) -> None:
    """Send lines one by one, ``every_s`` apart, until the iterator ends or the client leaves."""
    for line in lines:
        if not send(line):
            return
        time.sleep(every_s)


HUNDRED_MB = 100 * 1024 * 1024


def shut(*socks: socket.socket) -> None:
    """Shut both directions of each socket down (the peers see the connection end)."""
    for s in socks:
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


class SlowProxy:
    """TCP proxy to ``127.0.0.1:upstream_port`` that holds every chunk of every answer for
    ``delay_s`` before passing it on: a store that answers each request just inside the
    client's read timeout."""

    def __init__(self, upstream_port: int, delay_s: float):
        self.delay_s = delay_s
        self._lsock = socket.create_server(("127.0.0.1", 0))
        self.port = self._lsock.getsockname()[1]
        self.url = self.endpoint_url = f"http://127.0.0.1:{self.port}"
        self._upstream = upstream_port
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._lsock.accept()
            except OSError:
                return
            try:
                up = socket.create_connection(("127.0.0.1", self._upstream))
            except OSError:
                client.close()
                continue
            threading.Thread(target=self._pump, args=(client, up, 0.0), daemon=True).start()
            threading.Thread(target=self._pump, args=(up, client, self.delay_s), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket, delay_s: float) -> None:
        try:
            while data := src.recv(65536):
                if delay_s:
                    time.sleep(delay_s)
                dst.sendall(data)
        except OSError:
            pass
        finally:
            shut(src, dst)

    def close(self) -> None:
        self._closed = True
        self._lsock.close()


_REQ = re.compile(rb"(PUT|POST|GET|HEAD|DELETE) (/\S*) HTTP/1\.1\r\n")


class CuttingProxy:
    """TCP proxy to moto that counts client-to-server bytes, records request lines and, once
    ``cut_after`` bytes went up, drops every connection and refuses new ones until heal()."""

    def __init__(self, upstream_port: int, cut_after: int | None = None):
        self._lsock = socket.create_server(("127.0.0.1", 0))
        self.port = self._lsock.getsockname()[1]
        self.endpoint_url = f"http://127.0.0.1:{self.port}"
        self._upstream = upstream_port
        self._lock = threading.Lock()
        self._socks: set[socket.socket] = set()
        self.cut_after = cut_after
        self.cut = False
        self.sent = 0
        self.requests: list[tuple[str, str]] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def heal(self) -> None:
        with self._lock:
            self.cut, self.cut_after, self.sent, self.requests = False, None, 0, []

    def close(self) -> None:
        self._lsock.close()
        self._drop()

    def _drop(self) -> None:
        with self._lock:
            socks, self._socks = self._socks, set()
        shut(*socks)
        for s in socks:
            s.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._lsock.accept()
            except OSError:
                return
            try:
                if self.cut:
                    raise ConnectionRefusedError
                up = socket.create_connection(("127.0.0.1", self._upstream))
            except OSError:
                client.close()
                continue
            with self._lock:
                self._socks.update((client, up))
            threading.Thread(target=self._pump, args=(client, up, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(up, client, False), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, upward: bool) -> None:
        tail = b""
        try:
            while data := src.recv(65536):
                if upward:
                    with self._lock:
                        if self.cut_after is not None and self.sent + len(data) > self.cut_after:
                            self.cut = True
                        else:
                            self.sent += len(data)
                            buf = tail + data
                            for m in _REQ.finditer(buf):
                                if m.end() > len(tail):
                                    self.requests.append((m.group(1).decode(), m.group(2).decode()))
                            tail = buf[-300:]
                    if self.cut:
                        self._drop()
                        return
                dst.sendall(data)
        except OSError:
            pass
        finally:
            shut(src, dst)

    def part_numbers(self) -> list[int]:
        return sorted(
            int(m.group(1)) for _m, path in self.requests if (m := re.search(r"[?&]partNumber=(\d+)", path))
        )

    def created_uploads(self) -> int:
        return sum(1 for m, path in self.requests if m == "POST" and re.search(r"[?&]uploads(=|&|$)", path))
