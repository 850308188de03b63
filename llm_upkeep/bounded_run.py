"""Run a command without holding everything it prints: keep only the last bytes of each stream.

``subprocess.run(capture_output=True)`` keeps all a command prints in memory until it exits; a
log reader or restart command that prints gigabytes (a runaway ``journalctl``, a script stuck
in a loop) then costs that much memory, and one that never stops is cut only by the timeout
after having filled it. ``run_bounded`` drains both pipes while the command runs (so it never
blocks on a full pipe) and keeps the last ``keep_bytes`` of each, counting what it dropped:
what the callers show is a tail anyway.
"""

from __future__ import annotations

import os
import selectors
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass

KEEP_BYTES = 1 << 20
"""Bytes kept of each stream by default: far more than the tails the callers show."""

_READ = 1 << 16


@dataclass
class BoundedResult:
    returncode: int
    stdout: bytes
    stderr: bytes
    dropped_stdout: int = 0  # bytes printed before the kept tail
    dropped_stderr: int = 0

    @property
    def truncated(self) -> bool:
        return bool(self.dropped_stdout or self.dropped_stderr)


def run_bounded(
    cmd: Sequence[str], *, timeout_s: float, keep_bytes: int = KEEP_BYTES, env: dict[str, str] | None = None
) -> BoundedResult:
    """Run ``cmd`` to its end, keeping the last ``keep_bytes`` of stdout and of stderr.

    Raises what subprocess.run raises: OSError when it cannot start, subprocess.TimeoutExpired
    (after killing it) when it runs past ``timeout_s``."""
    proc = subprocess.Popen(
        list(cmd), stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, env=env
    )
    assert proc.stdout is not None and proc.stderr is not None
    o, e = proc.stdout.fileno(), proc.stderr.fileno()
    bufs = {o: bytearray(), e: bytearray()}
    dropped = dict.fromkeys(bufs, 0)
    deadline = time.monotonic() + timeout_s
    sel = selectors.DefaultSelector()
    try:
        for f in (proc.stdout, proc.stderr):
            sel.register(f, selectors.EVENT_READ)
        open_fds = len(bufs)
        while open_fds:
            left = deadline - time.monotonic()
            if left <= 0:
                proc.kill()
                proc.wait()
                raise subprocess.TimeoutExpired(list(cmd), timeout_s)
            for key, _ in sel.select(timeout=min(left, 1.0)):
                fd = key.fd
                chunk = os.read(fd, _READ)
                if not chunk:
                    sel.unregister(key.fileobj)
                    open_fds -= 1
                    continue
                buf = bufs[fd]
                buf += chunk
                if len(buf) > 2 * keep_bytes:  # trim in large steps: amortised O(1) per byte
                    cut = len(buf) - keep_bytes
                    del buf[:cut]
                    dropped[fd] += cut
        left = max(0.0, deadline - time.monotonic())
        try:
            proc.wait(timeout=left)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise
    finally:
        sel.close()
        proc.stdout.close()
        proc.stderr.close()
        if proc.returncode is None:
            proc.kill()
            proc.wait()
    res = BoundedResult(proc.returncode, bytes(bufs[o][-keep_bytes:]), bytes(bufs[e][-keep_bytes:]))
    res.dropped_stdout = dropped[o] + max(0, len(bufs[o]) - keep_bytes)
    res.dropped_stderr = dropped[e] + max(0, len(bufs[e]) - keep_bytes)
    return res


def output_tail(res: BoundedResult, lines: int, max_line: int = 2000) -> str:
    """The last ``lines`` lines of stdout then stderr (as the callers always showed them), each
    at most ``max_line`` characters, with a first line saying how much was not kept."""
    out: list[str] = []
    for data, dropped in ((res.stdout, res.dropped_stdout), (res.stderr, res.dropped_stderr)):
        got = data.decode("utf-8", "replace").splitlines()
        if dropped and got:
            got = got[1:]  # the first kept one is probably cut
        out += [ln[:max_line] for ln in got]
    tail = out[-lines:]
    if res.truncated:
        n = res.dropped_stdout + res.dropped_stderr
        tail.insert(0, f"[output truncated: the first {n} bytes were not kept]")
    return "\n".join(tail)
