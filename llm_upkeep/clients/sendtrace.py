"""When a streamed request's body was written: the benchmark client's own send delay.

Why: the benchmark stamps a request's send before httpx builds and writes it. With many streams
in one process, the later sends of a burst wait for the earlier ones, and that queue is counted
in their TTFT although the server has not seen the request yet (measured at 64 streams on two
processes: 31-36 ms from the stamp to the body written for the first wave, 2-3.5 ms afterwards,
nearly all of the TTFT the client adds; docs/metrics.md). httpcore reports each step of a request
to a ``trace`` extension; the runner (bench/runner.py send_one) sets ``SENT_AT`` to an empty list
for one request, and the stream appends the time the body was written. Nothing is traced when
``SENT_AT`` is unset (every other caller).
"""

from __future__ import annotations

import time
from contextvars import ContextVar

SENT_AT: ContextVar[list[float] | None] = ContextVar("llm_upkeep_sent_at", default=None)
BODY_WRITTEN = ("http11.send_request_body.complete", "http2.send_request_body.complete")


async def _trace(name: str, info: dict) -> None:
    if name in BODY_WRITTEN:
        box = SENT_AT.get()
        if box is not None and not box:
            box.append(time.perf_counter())


def trace_extensions() -> dict:
    """httpx request extensions: the trace hook while a caller wants the send time, else none."""
    return {"trace": _trace} if SENT_AT.get() is not None else {}
