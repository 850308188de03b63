"""The launcher <-> zygote protocol: length-prefixed JSON messages, file descriptors beside them.

Stdlib only: the launcher imports this with ``python -I -S`` (no site-packages) to start fast.
"""

from __future__ import annotations

import array
import json
import socket
import struct

SOCKET_ENV = "LLM_UPKEEP_WARM_SOCKET"  # set by the warm worker; its runs' launchers find the zygote here
ENGINE_ENV = "LLM_UPKEEP_WARM_ENGINE"  # the module a run executes; prefect.engine (tests run a stand-in)
DEFAULT_ENGINE = "prefect.engine"
MAX_MESSAGE = 4 * 1024 * 1024  # a run's environment is a few KiB; refuse anything absurd
_HEADER = struct.Struct("!I")


class WireError(Exception):
    """The peer closed the connection or sent something that is not a message."""


def send_message(sock: socket.socket, payload: dict, fds: list[int] | None = None) -> None:
    data = json.dumps(payload).encode()
    if len(data) > MAX_MESSAGE:
        raise WireError(f"message of {len(data)} bytes is over {MAX_MESSAGE}")
    frame = _HEADER.pack(len(data)) + data
    if fds:
        anc = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds).tobytes())]
        sent = sock.sendmsg([frame], anc)
        if sent < len(frame):
            sock.sendall(frame[sent:])
    else:
        sock.sendall(frame)


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(min(n - len(buf), 1 << 16))
        if not chunk:
            raise WireError("connection closed")
        buf += chunk
    return bytes(buf)


def recv_message(sock: socket.socket, max_fds: int = 0) -> tuple[dict, list[int]]:
    """One message and the descriptors sent with its first bytes (at most max_fds)."""
    fds: list[int] = []
    if max_fds:
        size = socket.CMSG_LEN(max_fds * array.array("i").itemsize)
        head, anc, _flags, _addr = sock.recvmsg(_HEADER.size, size)
        for level, kind, data in anc:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                arr = array.array("i")
                arr.frombytes(data[: len(data) - (len(data) % arr.itemsize)])
                fds.extend(arr)
        if not head:
            raise WireError("connection closed")
        if len(head) < _HEADER.size:
            head += _recv_exact(sock, _HEADER.size - len(head))
    else:
        head = _recv_exact(sock, _HEADER.size)
    (length,) = _HEADER.unpack(head)
    if length > MAX_MESSAGE:
        for fd in fds:
            _close(fd)
        raise WireError(f"message of {length} bytes is over {MAX_MESSAGE}")
    try:
        payload = json.loads(_recv_exact(sock, length))
    except (ValueError, WireError):
        for fd in fds:
            _close(fd)
        raise WireError("not a message") from None
    if not isinstance(payload, dict):
        raise WireError("not a message")
    return payload, fds


def _close(fd: int) -> None:
    import os

    try:
        os.close(fd)
    except OSError:
        pass
