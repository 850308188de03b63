"""Timing windows for tests that check *what* is measured, not how fast this machine is.

A loaded machine (CI has 2 cores, shared with a Prefect server and the simulators) can only make
a stream later than the simulator's schedule, never earlier. So the window is lopsided: tight on
the early side, where an error means the wrong thing was measured (a role chunk counted as the
first token, total time called TTFT), and generous on the late side, where it means a busy CPU.
Each call site picks a ``late`` that still tells the right measurement from the wrong one.
"""

from __future__ import annotations

EARLY_S = 0.02


def on_schedule(measured: float | None, expected: float, *, late: float, early: float = EARLY_S) -> bool:
    return measured is not None and expected - early <= measured <= expected + late


def as_true_as_bare(measured: float | None, expected: float, bare: float, *, slack: float = 0.01) -> bool:
    """No further from the truth than a bare probe of the same server in the same run, plus slack.

    Why a bare reading and not a late bound: a busy machine delays a bare probe too, and a
    generous absolute bound (say +0.3 s) lets a measurement that waited for the flow's
    orchestration, or total time, pass for TTFT. The bare probe carries the machine's delay of
    the moment; what is left over is the error the code under test adds.
    """
    if measured is None:
        return False
    return expected - EARLY_S <= measured <= expected + max(0.0, bare - expected) + slack


def bare_stream(url: str, model: str, max_tokens: int, runs: int = 3) -> tuple[float, float]:
    """(ttft_s, e2e_s) of a streamed OpenAI chat answer, timed by a plain httpx client with none of
    the project's code: the reference a flow-level timing is compared with, in the same test, on
    the same machine. The least of a few runs, since a busy machine only ever adds time."""
    import json
    import time

    import httpx

    body = {"model": model, "stream": True, "max_tokens": max_tokens,
            "messages": [{"role": "user", "content": "test"}]}  # fmt: skip
    best_ttft = best_e2e = float("inf")
    with httpx.Client(timeout=30) as client:
        for _ in range(runs):
            ttft = None
            t0 = time.perf_counter()
            with client.stream("POST", f"{url}/v1/chat/completions", json=body) as r:
                for line in r.iter_lines():
                    if line == "data: [DONE]":
                        break
                    if not line.startswith("data: "):
                        continue
                    choices = json.loads(line[6:]).get("choices") or [{}]
                    if ttft is None and (choices[0].get("delta") or {}).get("content"):
                        ttft = time.perf_counter() - t0
            e2e = time.perf_counter() - t0
            assert ttft is not None, "no content chunk in the bare stream"
            best_ttft, best_e2e = min(best_ttft, ttft), min(best_e2e, e2e)
    return best_ttft, best_e2e


def nearer_first_token(measured: float, bare_ttft: float, bare_e2e: float) -> bool:
    """A TTFT read inside a flow may be late by the flow's overhead, but it must be nearer the bare
    first token than the bare end of the answer: a total request time fails this."""
    return bare_ttft - EARLY_S <= measured < bare_ttft + (bare_e2e - bare_ttft) / 2
